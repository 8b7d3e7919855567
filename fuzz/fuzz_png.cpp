// PNG reader (libpng, every colour type and bit depth it may meet). Each chunk's CRC is set
// right before the file is read, so that mutations reach the decoder instead of stopping at
// the checksum.
#include <zlib.h>

#include <vector>

#include "harness.hpp"
#include "loom/io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom_fuzz;
  static const std::string file = scratch("image.png");
  std::vector<uint8_t> png(data, data + size);
  for (size_t at = 8; at + 12 <= png.size();) {
    uint32_t len =
        (uint32_t(png[at]) << 24) | (png[at + 1] << 16) | (png[at + 2] << 8) | png[at + 3];
    if (len > png.size() - at - 12) break;
    uint32_t crc = uint32_t(crc32(0, png.data() + at + 4, uInt(len + 4)));
    for (int k = 0; k < 4; ++k) png[at + 8 + len + k] = uint8_t(crc >> (24 - 8 * k));
    at += 12 + len;
  }
  put(file, png.data(), png.size());
  refuse_only_with_errors([&] { loom::read_png(file); });
  return 0;
}
