#include <png.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/distributed.hpp"
#include "loom/error.hpp"
#include "loom/io.hpp"
#include "output/scatter.hpp"

namespace loom {

std::string write_failed(const std::string& path) {
  return path + ": cannot write (" + std::strerror(errno ? errno : EIO) + ")";
}

void remove_stale_temps(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path p(path);
  fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  std::string prefix = p.filename().string() + ".tmp.";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    std::string rest = name.substr(prefix.size());
    size_t digits = rest.find_first_not_of("0123456789");
    std::string pid_text = rest.substr(0, digits);
    if (pid_text.empty() || pid_text.size() > 9 ||
        (digits != std::string::npos && rest[digits] != '.'))
      continue;
    pid_t pid = pid_t(std::stol(pid_text));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH)
      continue;  // alive, or not ours to judge
    std::error_code rm;
    fs::remove_all(it->path(), rm);
  }
}

void write_atomically(const std::string& path,
                      const std::function<void(const std::string&)>& write) {
  namespace fs = std::filesystem;
  // Of the ranks of a data-parallel run, rank 0 alone writes (every file goes through here or
  // through a DatasetWriter).
  if (!distributed::writer()) return;
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  remove_stale_temps(path);
  // Unique per write: two stages (or threads) may write the same file at once; each gets its own
  // temp file and the last rename wins with a complete file.
  static std::atomic<uint64_t> serial{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(++serial);
  try {
    write(tmp);
    // Flush file contents to disk before the rename makes them visible.
    if (FILE* f = std::fopen(tmp.c_str(), "rb")) {
      ::fsync(fileno(f));
      std::fclose(f);
    }
    fs::rename(tmp, path);
  } catch (const std::filesystem::filesystem_error& e) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw Error(path + ": cannot write (" + e.code().message() + ")");
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

// libpng reports errors by longjmp: keep that in a function with no C++ objects.
static bool png_encode_rows(FILE* f, const unsigned char* pix, int64_t W, int64_t H, int64_t c,
                            int level) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_init_io(png, f);
  if (level >= 0) png_set_compression_level(png, level);
  png_set_IHDR(png, info, png_uint_32(W), png_uint_32(H), 8,
               c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int64_t y = 0; y < H; ++y) png_write_row(png, const_cast<unsigned char*>(pix) + y * W * c);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

void encode_png(const std::string& file, const unsigned char* pix, int64_t W, int64_t H, int64_t c,
                int level, const std::string& name) {
  const std::string shown = name.empty() ? file : name;
  FILE* f = std::fopen(file.c_str(), "wb");
  if (!f) throw Error(shown + ": cannot write (" + std::strerror(errno) + ")");
  bool ok = png_encode_rows(f, pix, W, H, c, level);
  if (std::fclose(f) != 0 && ok) throw Error(write_failed(shown));
  if (!ok) throw Error(shown + ": PNG encoding failed");
}

namespace {

// Writes 8-bit pixels (H rows of W x channels bytes; 1 channel: gray, 3: RGB) as a PNG.
void write_png_pixels(const std::string& path, const std::vector<unsigned char>& pix, int64_t W,
                      int64_t H, int64_t c) {
  write_atomically(path,
                   [&](const std::string& tmp) { encode_png(tmp, pix.data(), W, H, c, -1, path); });
}

}  // namespace

void write_png_rgb(const std::string& path, const std::vector<uint8_t>& rgb, int64_t width,
                   int64_t height) {
  if (int64_t(rgb.size()) != width * height * 3)
    throw Error(path + ": RGB raster of " + std::to_string(rgb.size()) + " bytes is not " +
                std::to_string(width) + " x " + std::to_string(height) + " x 3");
  write_png_pixels(path, rgb, width, height, 3);
}

namespace {

// libpng reports errors through this callback, which keeps the message and jumps back to
// read_png's setjmp (no C++ frame lies between: only libpng's own).
struct PngReadError {
  char message[160] = "";
};

[[noreturn]] void png_fail(png_structp png, png_const_charp msg) {
  auto* e = static_cast<PngReadError*>(png_get_error_ptr(png));
  std::snprintf(e->message, sizeof e->message, "%s", msg);
  png_longjmp(png, 1);
}

void png_quiet(png_structp, png_const_charp) {}

}  // namespace

// Reads 1-, 2-, 4-, 8- and 16-bit gray, gray + alpha, palette, RGB and RGBA images, interlaced
// or not, as gray or RGB (16 bits scaled to 8, alpha dropped). The size in the header is
// bounded before anything of that size is allocated.
Tensor read_png(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  unsigned char sig[8];
  if (std::fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8)) {
    std::fclose(f);
    throw Error(path + ": not a PNG file");
  }
  constexpr int64_t kMaxSide = 16384;
  PngReadError err;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_fail, png_quiet);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    std::fclose(f);
    throw Error(path + ": cannot read (out of memory)");
  }
  // Made before setjmp and not reassigned after it (their contents live on the heap): a jump
  // back from libpng skips no destructor and leaves nothing indeterminate.
  struct Buffers {
    std::vector<unsigned char> rows;
    std::vector<png_bytep> ptrs;
  };
  const auto buf = std::make_unique<Buffers>();
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    std::fclose(f);
    throw Error(path + ": corrupt PNG data" +
                (err.message[0] ? std::string(" (") + err.message + ")" : std::string()));
  }
  png_init_io(png, f);
  png_set_sig_bytes(png, 8);
  png_read_info(png, info);
  if (png_get_image_width(png, info) > uint32_t(kMaxSide) ||
      png_get_image_height(png, info) > uint32_t(kMaxSide)) {
    char why[120];  // no std::string: png_error jumps back over this frame
    std::snprintf(why, sizeof why, "the image is %u x %u pixels; Loom reads at most %lld x %lld",
                  png_get_image_width(png, info), png_get_image_height(png, info),
                  (long long)kMaxSide, (long long)kMaxSide);
    png_error(png, why);
  }
  png_set_strip_16(png);
  png_set_strip_alpha(png);
  png_set_expand(png);
  png_set_packing(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const int64_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  const int64_t c = png_get_channels(png, info);
  if (w < 1 || h < 1 || w > kMaxSide || h > kMaxSide || (c != 1 && c != 3) ||
      int64_t(png_get_rowbytes(png, info)) != w * c) {
    png_destroy_read_struct(&png, &info, nullptr);
    std::fclose(f);
    throw Error(path + ": a PNG of " + std::to_string(w) + " x " + std::to_string(h) + " pixels, " +
                std::to_string(c) +
                " channels after conversion; Loom reads gray or RGB images "
                "of at most " +
                std::to_string(kMaxSide) + " x " + std::to_string(kMaxSide));
  }
  auto& rows = buf->rows;
  rows.resize(static_cast<size_t>(w * h * c));
  buf->ptrs.resize(static_cast<size_t>(h));
  for (int64_t y = 0; y < h; ++y) buf->ptrs[y] = rows.data() + y * w * c;
  png_read_image(png, buf->ptrs.data());
  png_destroy_read_struct(&png, &info, nullptr);
  std::fclose(f);
  Tensor t({c, h, w});
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) t[(ch * h + y) * w + x] = rows[size_t((y * w + x) * c + ch)];
  return t;
}

}  // namespace loom
