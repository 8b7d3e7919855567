// Creating registered objects from pipeline entries: either a bare name (`loss: mse`) or a
// mapping with a `type` (`optimizer: {type: nadam, lr: 5e-4}`). The entry is validated against
// the type's Spec (every problem located) before the factory runs.
#pragma once
#include <memory>
#include <set>
#include <string>

#include "loom/export.hpp"
#include "loom/params.hpp"
#include "loom/registry.hpp"

namespace loom {

// The registry of the running process (all plugins loaded by the runtime).
LOOM_API Registry& global_registry();

// Validates `entry` (a name or a {type: ...} mapping; `reserved` keys are left to the caller)
// and returns the type and its validated parameters. Throws a located Error.
LOOM_API const TypeInfo& resolve_entry(const Registry& registry, Kind kind, const Params& entry,
                                       const std::set<std::string>& reserved, Params* params);

template <class Base>
std::unique_ptr<Base> create_from(const Registry& registry, const Params& entry,
                                  const std::set<std::string>& reserved = {}) {
  Params p;
  const TypeInfo& t = resolve_entry(registry, Base::kind, entry, reserved, &p);
  return std::unique_ptr<Base>(static_cast<Base*>(t.make(p)));
}

}  // namespace loom
