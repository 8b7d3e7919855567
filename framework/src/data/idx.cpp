#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "loom/error.hpp"
#include "loom/io.hpp"

namespace loom {
namespace {

struct GzFile {
  gzFile f = nullptr;
  std::string path;
  explicit GzFile(const std::string& p) : path(p) {
    f = gzopen(p.c_str(), "rb");
    if (!f) throw Error(p + ": cannot open (" + std::strerror(errno) + ")");
    gzbuffer(f, 1 << 16);
  }
  ~GzFile() {
    if (f) gzclose(f);
  }
  // Reads up to n bytes; returns the count read.
  int64_t read(void* dst, int64_t n) {
    int64_t done = 0;
    while (done < n) {
      int chunk = int(std::min<int64_t>(n - done, 1 << 30));
      int got = gzread(f, static_cast<char*>(dst) + done, unsigned(chunk));
      if (got < 0) {
        int err = 0;
        const char* msg = gzerror(f, &err);
        throw Error(path + ": corrupt compressed data (" + (msg ? msg : "zlib error") + ")");
      }
      if (got == 0) break;
      done += got;
    }
    return done;
  }
};

uint32_t be32(const unsigned char* b) {
  return (uint32_t(b[0]) << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
}

struct Header {
  int type = 0;
  Shape dims;
};

Header read_header(GzFile& f) {
  unsigned char magic[4];
  if (f.read(magic, 4) != 4) throw Error(f.path + ": not an IDX file (too short for a header)");
  if (magic[0] != 0 || magic[1] != 0) throw Error(f.path + ": not an IDX file (bad magic number)");
  Header h;
  h.type = magic[2];
  int rank = magic[3];
  if (h.type != 0x08)
    throw Error(f.path + ": unsupported IDX element type 0x" + std::to_string(h.type) +
                " (only unsigned bytes)");
  if (rank < 1 || rank > 4) throw Error(f.path + ": unsupported IDX rank " + std::to_string(rank));
  for (int i = 0; i < rank; ++i) {
    unsigned char b[4];
    if (f.read(b, 4) != 4) throw Error(f.path + ": truncated IDX header");
    h.dims.push_back(int64_t(be32(b)));
  }
  return h;
}

// Up to n bytes, in chunks that start at 64 KiB and double (at most 16 MiB): memory grows with
// what the file holds, not with what its header claims.
std::vector<unsigned char> read_bounded(GzFile& f, int64_t n) {
  std::vector<unsigned char> raw;
  while (int64_t(raw.size()) < n) {
    size_t old = raw.size();
    int64_t chunk = std::clamp<int64_t>(int64_t(old), int64_t(1) << 16, int64_t(1) << 24);
    int64_t want = std::min<int64_t>(n - int64_t(old), chunk);
    raw.resize(old + size_t(want));
    int64_t got = f.read(raw.data() + old, want);
    raw.resize(old + size_t(got));
    if (got < want) break;
  }
  return raw;
}

// The labels of `count` images (from `images`), checked against that count.
std::vector<unsigned char> read_labels(const std::string& labels, int64_t count,
                                       const std::string& images) {
  GzFile f(labels);
  Header h = read_header(f);
  if (h.dims.size() != 1) throw Error(labels + ": an IDX label file has one dimension");
  if (h.dims[0] != count)
    throw Error(labels + ": holds " + std::to_string(h.dims[0]) + " labels for " +
                std::to_string(count) + " images in " + images);
  std::vector<unsigned char> raw = read_bounded(f, count);
  if (int64_t(raw.size()) != count)
    throw Error(labels + ": truncated IDX label file: " + std::to_string(raw.size()) +
                " labels for " + std::to_string(count) + " images");
  return raw;
}

}  // namespace

SourceInfo idx_info(const std::string& images, const std::string& labels) {
  SourceInfo info;
  {
    GzFile f(images);
    Header h = read_header(f);
    if (h.dims.size() < 2) throw Error(images + ": an IDX image file needs at least 2 dimensions");
    info.count = h.dims[0];
  }
  info.num_classes = 0;
  if (!labels.empty())
    for (unsigned char l : read_labels(labels, info.count, images))
      info.num_classes = std::max(info.num_classes, int(l) + 1);
  return info;
}

Shape idx_sample_shape(const std::string& images) {
  GzFile f(images);
  Header h = read_header(f);
  Shape s(h.dims.begin() + 1, h.dims.end());
  if (s.size() == 2) s.insert(s.begin(), 1);  // (H, W) -> (1, H, W)
  return s;
}

Dataset read_idx(const std::string& images, const std::string& labels) {
  Dataset d;
  {
    GzFile f(images);
    Header h = read_header(f);
    if (h.dims.size() < 2) throw Error(images + ": an IDX image file needs at least 2 dimensions");
    d.count = h.dims[0];
    d.sample_shape.assign(h.dims.begin() + 1, h.dims.end());
    if (d.sample_shape.size() == 2) d.sample_shape.insert(d.sample_shape.begin(), 1);
    // The header's sizes are checked against the data actually there before anything of their
    // size is allocated: the bytes are read in bounded chunks (a .gz file's length says nothing
    // of what it inflates to).
    int64_t n = 1;
    for (size_t k = 0; k < h.dims.size(); ++k) {
      if (h.dims[k] == 0)
        throw Error(images + ": the IDX header gives dimension " + std::to_string(k + 1) +
                    " a size of 0; the file holds no images");
      if (n > (int64_t(1) << 40) / h.dims[k])
        throw Error(images + ": the IDX header promises more than 2^40 bytes of images");
      n *= h.dims[k];
    }
    std::vector<unsigned char> raw = read_bounded(f, n);
    int64_t got = int64_t(raw.size());
    if (got != n)
      throw Error(images + ": truncated IDX file: the header promises " + std::to_string(d.count) +
                  " images (" + std::to_string(n) + " bytes) but the file holds " +
                  std::to_string(got) + " bytes");
    d.x.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) d.x[i] = float(raw[i]);
  }
  d.lo = 0.f;
  d.hi = 255.f;
  d.origin = images;
  if (!labels.empty()) {
    std::vector<unsigned char> raw = read_labels(labels, d.count, images);
    d.labels.assign(raw.begin(), raw.end());
    int mx = 0;
    for (auto l : d.labels) mx = std::max(mx, int(l));
    d.num_classes = mx + 1;
  }
  return d;
}

void write_idx(const std::string& images, const std::string& labels, const Dataset& d) {
  auto be = [](std::ofstream& o, uint32_t v) {
    unsigned char b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
    o.write(reinterpret_cast<char*>(b), 4);
  };
  write_atomically(images, [&](const std::string& tmp) {
    std::ofstream o(tmp, std::ios::binary);
    Shape s = d.sample_shape;
    if (s.size() == 3 && s[0] == 1) s.erase(s.begin());
    unsigned char magic[4] = {0, 0, 8, uint8_t(s.size() + 1)};
    o.write(reinterpret_cast<char*>(magic), 4);
    be(o, uint32_t(d.count));
    for (auto v : s) be(o, uint32_t(v));
    std::vector<unsigned char> buf(d.x.size());
    float scale = 255.f / (d.hi - d.lo);
    for (size_t i = 0; i < d.x.size(); ++i) {
      float v = (d.x[i] - d.lo) * scale;
      buf[i] = uint8_t(std::min(255.f, std::max(0.f, v + 0.5f)));
    }
    o.write(reinterpret_cast<char*>(buf.data()), std::streamsize(buf.size()));
    o.flush();
    if (!o) throw Error(write_failed(images));
  });
  if (!labels.empty() && d.has_labels()) {
    write_atomically(labels, [&](const std::string& tmp) {
      std::ofstream o(tmp, std::ios::binary);
      unsigned char magic[4] = {0, 0, 8, 1};
      o.write(reinterpret_cast<char*>(magic), 4);
      be(o, uint32_t(d.count));
      for (auto l : d.labels) o.put(char(uint8_t(l)));
      o.flush();
      if (!o) throw Error(write_failed(labels));
    });
  }
}

}  // namespace loom
