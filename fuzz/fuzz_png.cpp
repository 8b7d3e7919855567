// PNG reader (libpng, every colour type and bit depth it may meet).
#include "harness.hpp"
#include "loom/io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom_fuzz;
  static const std::string file = scratch("image.png");
  put(file, data, size);
  refuse_only_with_errors([&] { loom::read_png(file); });
  return 0;
}
