// IDX reader (plain or gzip): the first byte chooses what the rest is.
//   even: an image file, read alone;
//   odd:  a label file, read beside a fixed valid file of 3 images.
#include "harness.hpp"
#include "loom/io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  using namespace loom_fuzz;
  static const std::string images = scratch("a-images-idx3-ubyte");
  static const std::string labels = scratch("a-labels-idx1-ubyte");
  if (data[0] % 2 == 0) {
    put(images, data + 1, size - 1);
    refuse_only_with_errors([&] { loom::idx_sample_shape(images); });
    refuse_only_with_errors([&] { loom::read_idx(images); });
  } else {
    static const uint8_t three[] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2,  0,  0,
                                    0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    put(images, three, sizeof three);
    put(labels, data + 1, size - 1);
    refuse_only_with_errors([&] { loom::read_idx(images, labels); });
  }
  return 0;
}
