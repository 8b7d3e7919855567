// The kinds of registered types.
#pragma once
#include <vector>

#include "loom/export.hpp"

namespace loom {

enum class Kind { Layer, Loss, Optimizer, Initializer, Source, Recipe, Augmenter, Sampler };
LOOM_API const char* kind_name(Kind k);
LOOM_API const std::vector<Kind>& all_kinds();

}  // namespace loom
