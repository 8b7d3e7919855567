// The file readers against crafted files: every PNG colour type and bit depth (values checked
// against what was encoded), interlacing, and headers that would size allocations; safetensors
// headers whose fields are wrong one at a time; NPY headers too long to be real. Each refusal
// names the file and the field.
#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "loom/error.hpp"
#include "loom/io.hpp"
#include "output/safetensors.hpp"
#include "support/cli.hpp"

using namespace loom;
using loom::test::temp_dir;

namespace {

std::string bytes_be32(uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }

std::string chunk(const std::string& type, const std::string& data) {
  std::string c = type + data;
  uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(c.data()), uInt(c.size())));
  return bytes_be32(uint32_t(data.size())) + c + bytes_be32(crc);
}

// A PNG from raw scanlines (each row: its filter byte 0, then the pixels as packed bytes).
std::string png(uint32_t w, uint32_t h, int depth, int color, const std::vector<std::string>& rows,
                int interlace = 0, const std::string& extra = "") {
  std::string ihdr =
      bytes_be32(w) + bytes_be32(h) + char(depth) + char(color) + '\0' + '\0' + char(interlace);
  std::string raw;
  for (auto& r : rows) raw += '\0' + r;
  uLongf n = compressBound(uLong(raw.size()));
  std::string z(n, '\0');
  compress(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(raw.data()),
           uLong(raw.size()));
  z.resize(n);
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + extra + chunk("IDAT", z) +
         chunk("IEND", "");
}

std::string write(const std::string& name, const std::string& bytes) {
  static const std::string dir = temp_dir("readers");
  std::string p = dir + "/" + name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<float> values(const Tensor& t) { return {t.data(), t.data() + t.size()}; }

}  // namespace

TEST(PngReader, EveryColourTypeAndDepth) {
  // 8-bit gray.
  Tensor t = read_png(write("g8.png", png(2, 1, 8, 0, {std::string("\x05\xfa", 2)})));
  EXPECT_EQ(t.shape(), (Shape{1, 1, 2}));
  EXPECT_EQ(values(t), (std::vector<float>{5, 250}));
  // 1-bit gray: 1 -> 255.
  t = read_png(write("g1.png", png(3, 1, 1, 0, {std::string("\xa0", 1)})));
  EXPECT_EQ(values(t), (std::vector<float>{255, 0, 255}));
  // 16-bit gray keeps the high byte.
  t = read_png(write("g16.png", png(1, 1, 16, 0, {std::string("\x12\x34", 2)})));
  EXPECT_EQ(values(t), (std::vector<float>{0x12}));
  // Gray + alpha: the alpha is dropped.
  t = read_png(write("ga.png", png(1, 1, 8, 4, {std::string("\x40\x80", 2)})));
  EXPECT_EQ(t.shape(), (Shape{1, 1, 1}));
  EXPECT_EQ(values(t), (std::vector<float>{0x40}));
  // RGBA -> RGB, planar.
  t = read_png(
      write("rgba.png", png(2, 1, 8, 6, {std::string("\x01\x02\x03\xff\x04\x05\x06\x00", 8)})));
  EXPECT_EQ(t.shape(), (Shape{3, 1, 2}));
  EXPECT_EQ(values(t), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  // Palette -> RGB.
  std::string plte = chunk("PLTE", std::string("\x0a\x0b\x0c\x14\x15\x16", 6));
  t = read_png(write("pal.png", png(2, 1, 8, 3, {std::string("\x01\x00", 2)}, 0, plte)));
  EXPECT_EQ(values(t), (std::vector<float>{20, 10, 21, 11, 22, 12}));
}

TEST(PngReader, InterlacedImagesAreReadWhole) {
  // Adam7 on a 3x3 gray image whose pixel (x, y) is 10 y + x. Its passes: 1 holds (0,0); 2 and
  // 3 are empty; 4 holds (2,0); 5 (0,2) (2,2); 6 (1,0), then (1,2); 7 the row y = 1.
  std::vector<std::string> passes = {std::string(1, '\0'), "\x02", "\x14\x16", "\x01", "\x15",
                                     "\x0a\x0b\x0c"};
  Tensor t = read_png(write("adam7.png", png(3, 3, 8, 0, passes, 1)));
  EXPECT_EQ(t.shape(), (Shape{1, 3, 3}));
  EXPECT_EQ(values(t), (std::vector<float>{0, 1, 2, 10, 11, 12, 20, 21, 22}));
}

TEST(PngReader, HugeOrBrokenFilesAreRefusedByName) {
  std::string p = write("huge.png", png(20000, 20000, 8, 0, {std::string("\x00", 1)}));
  std::string e = error_of([&] { read_png(p); });
  EXPECT_NE(e.find(p + ": "), std::string::npos) << e;
  EXPECT_NE(e.find("16384"), std::string::npos) << e;
  std::string good = png(4, 4, 8, 0, std::vector<std::string>(4, std::string(4, '\x01')));
  std::string cut = write("cut.png", good.substr(0, good.size() - 20));
  e = error_of([&] { read_png(cut); });
  EXPECT_NE(e.find(cut + ": corrupt PNG data ("), std::string::npos) << e;
  e = error_of([&] { read_png(write("text.png", "not a png at all")); });
  EXPECT_NE(e.find("text.png: not a PNG file"), std::string::npos) << e;
}

namespace {

std::string safetensors(const nlohmann::json& header, const std::string& data) {
  std::string h = header.dump();
  uint64_t n = h.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + h + data;
}

}  // namespace

TEST(SafetensorsReader, EveryHeaderFieldIsChecked) {
  std::string eight(8, '\0');
  auto t = [](const char* dtype, nlohmann::json shape, nlohmann::json off) {
    return nlohmann::json{{"dtype", dtype}, {"shape", shape}, {"data_offsets", off}};
  };
  struct Case {
    const char* name;
    nlohmann::json header;
    const char* message;
  };
  std::vector<Case> cases = {
      {"dtype", {{"a", t("F16", {4}, {0, 8})}}, "tensor 'a' has dtype \"F16\"; Loom reads F32"},
      {"negative", {{"a", t("F32", {-2}, {0, 8})}}, "its shape holds -2, which is not a size"},
      {"offsets", {{"a", t("F32", {4}, {0, 16})}}, "its data_offsets [0,16] are not [begin, end]"},
      {"mismatch", {{"a", t("F32", {1}, {0, 8})}}, "hold 8 bytes but its shape (1,) needs 4"},
      {"overlap",
       {{"a", t("F32", {1}, {0, 4})}, {"b", t("F32", {1}, {2, 6})}},
       "bytes overlap those of tensor 'a'"},
      {"entry", {{"a", 3}}, "tensor 'a' is not {dtype, shape, data_offsets}"},
      {"metadata", {{"__metadata__", {{"k", 1}}}}, "__metadata__ entry 'k' is not a string"},
  };
  for (auto& c : cases) {
    std::string p = write(std::string(c.name) + ".safetensors", safetensors(c.header, eight));
    std::string e = error_of([&] { load_safetensors(p); });
    EXPECT_NE(e.find(p + ": "), std::string::npos) << c.name << ": " << e;
    EXPECT_NE(e.find(c.message), std::string::npos) << c.name << ": " << e;
  }
  // Two tensors side by side load.
  std::string ok = write("ok.safetensors",
                         safetensors({{"a", t("F32", {1}, {0, 4})}, {"b", t("F32", {1}, {4, 8})}},
                                     std::string("\0\0\x80\x3f\0\0\0\x40", 8)));
  TensorFile f = load_safetensors(ok);
  EXPECT_EQ(f.tensors.at("a")[0], 1.f);
  EXPECT_EQ(f.tensors.at("b")[0], 2.f);
}

TEST(NpyReader, HeadersThatNoWriterMakesAreRefused) {
  std::string head = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
  std::string pad(70000, ' ');
  std::string big = std::string("\x93NUMPY\x02\x00", 8);
  uint32_t n = uint32_t(head.size() + pad.size());
  big += std::string(reinterpret_cast<const char*>(&n), 4) + head + pad + std::string(4, '\0');
  std::string p = write("long.npy", big);
  std::string e = error_of([&] { read_npy(p); });
  EXPECT_NE(e.find(p + ": the NPY header claims 70057 bytes"), std::string::npos) << e;
  std::string fortran = "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }\n";
  uint16_t m = uint16_t(fortran.size());
  p = write("f.npy", std::string("\x93NUMPY\x01\x00", 8) +
                         std::string(reinterpret_cast<const char*>(&m), 2) + fortran +
                         std::string(4, '\0'));
  e = error_of([&] { read_npy(p); });
  EXPECT_NE(e.find("Fortran-ordered NPY arrays are not supported"), std::string::npos) << e;
  std::string plain = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }\n";
  uint16_t k = uint16_t(plain.size());
  p = write("shape.npy", std::string("\x93NUMPY\x01\x00", 8) +
                             std::string(reinterpret_cast<const char*>(&k), 2) + plain);
  EXPECT_EQ(npy_shape(p), (Shape{3, 2}));
}
