// Pipeline files as YAML: the parser, the bounds on depth, size and aliases, duplicate keys,
// top-level keys; and the same bytes as a --set override value.
#include "config/pipeline.hpp"
#include "harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom_fuzz;
  static const std::string file = scratch("pipeline.yaml");
  put(file, data, size);
  refuse_only_with_errors([&] { loom::load_pipeline(file, {}); });
  std::string value(reinterpret_cast<const char*>(data), size);
  static const std::string base = scratch("base.yaml");
  static const bool written = [&] {
    static const uint8_t text[] = "name: base\nseed: 1\n";
    put(base, text, sizeof text - 1);
    return true;
  }();
  (void)written;
  refuse_only_with_errors([&] { loom::load_pipeline(base, {"models.m=" + value}); });
  return 0;
}
