// safetensors reader (checkpoints and trained weights): header length, JSON, dtypes, shapes,
// offsets.
#include "harness.hpp"
#include "output/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom_fuzz;
  static const std::string file = scratch("weights.safetensors");
  put(file, data, size);
  refuse_only_with_errors([&] { loom::load_safetensors(file); });
  return 0;
}
