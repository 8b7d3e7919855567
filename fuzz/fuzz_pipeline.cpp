// Pipeline text -> `loom validate`: every check before a run (types, parameters, shapes, data
// headers, stages), with the plugins of the build.
#include "harness.hpp"
#include "stage/runtime.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom_fuzz;
  static const std::string file = scratch("pipeline.yaml");
  std::string text(reinterpret_cast<const char*>(data), size);
  // A pipeline names plugin libraries to load: native code, trusted by design, not input to a
  // reader (and a mutation could name any library on the machine).
  if (text.find("plugin") != std::string::npos) return 0;
  put(file, data, size);
  refuse_only_with_errors([&] {
    loom::RunOptions ro;
    ro.quiet = true;
    ro.memory_budget = int64_t(1) << 30;  // below the harness's allocation limit of 2 GiB
    loom::Runtime rt(file, ro);
    rt.summary();
  });
  return 0;
}
