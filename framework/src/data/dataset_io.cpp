// Dataset files by extension: .npy, IDX (plain or .gz when reading) and PNG folders. Writers
// stream: samples go to temporary files (or a temporary folder) as they arrive, counts are
// patched into the headers at close, and only then are the files renamed into place.
#include "loom/dataset_io.hpp"

#include <png.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "core/distributed.hpp"
#include "loom/error.hpp"
#include "loom/io.hpp"

namespace fs = std::filesystem;

namespace loom {
namespace {

enum class Format { Npy, Idx, PngFolder };

bool is_idx_name(const std::string& p) {
  return p.find("idx3-ubyte") != std::string::npos || p.find("idx1-ubyte") != std::string::npos ||
         p.ends_with(".idx") || p.ends_with(".idx.gz");
}

Format format_of(const std::string& path, bool reading) {
  if (path.ends_with(".npy")) return Format::Npy;
  if (is_idx_name(path)) return Format::Idx;
  if (path.ends_with("/") || fs::path(path).extension().empty() ||
      (reading && fs::is_directory(path)))
    return Format::PngFolder;
  throw Error(
      path + ": unknown dataset format '" + fs::path(path).extension().string() +
      "' (use .npy, an IDX name such as train-images-idx3-ubyte, or a folder of PNGs: DIR/)");
}

std::string idx_labels_path(const std::string& images) {
  auto p = images.find("-images-idx3-ubyte");
  if (p != std::string::npos)
    return images.substr(0, p) + "-labels-idx1-ubyte" + images.substr(p + 18);
  p = images.find("-idx3-ubyte");
  if (p != std::string::npos)
    return images.substr(0, p) + "-labels-idx1-ubyte" + images.substr(p + 11);
  if (images.ends_with(".idx.gz")) return images.substr(0, images.size() - 7) + ".labels.idx.gz";
  return fs::path(images).replace_extension(".labels.idx").string();
}

std::string npy_labels_path(const std::string& path) {
  return path.substr(0, path.size() - 4) + ".labels.npy";
}

std::string tmp_name(const std::string& path) {
  remove_stale_temps(path);
  return path + ".tmp." + std::to_string(::getpid());
}

std::string strip_slash(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

uint8_t to_byte(float v, float lo, float scale) {
  float b = (v - lo) * scale + 0.5f;
  return uint8_t(std::min(255.f, std::max(0.f, b)));
}

// A file written under a temporary name and renamed into place by commit(); removed when the
// owner is destroyed without a commit.
class TempFile {
 public:
  explicit TempFile(std::string final_path)
      : final_(std::move(final_path)), tmp_(tmp_name(final_)) {
    fs::path p(final_);
    if (p.has_parent_path()) fs::create_directories(p.parent_path());
    out_.open(tmp_, std::ios::binary | std::ios::trunc);
    if (!out_) throw Error(final_ + ": cannot write (" + std::strerror(errno) + ")");
  }
  ~TempFile() {
    if (!committed_) {
      out_.close();
      std::error_code ec;
      fs::remove(tmp_, ec);
    }
  }
  std::ofstream& out() { return out_; }
  void check() {
    if (!out_) throw Error(write_failed(final_));
  }
  // Flushes, syncs, closes; the rename is separate so that several files can be renamed last.
  void finish() {
    out_.flush();
    check();
    out_.close();
    if (FILE* f = std::fopen(tmp_.c_str(), "rb")) {
      ::fsync(fileno(f));
      std::fclose(f);
    }
  }
  void commit() {
    std::error_code ec;
    fs::rename(tmp_, final_, ec);
    if (ec) throw Error(final_ + ": cannot write (" + ec.message() + ")");
    committed_ = true;
  }
  const std::string& path() const { return final_; }

 private:
  std::string final_, tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

void put_be32(std::ostream& o, uint32_t v) {
  unsigned char b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
  o.write(reinterpret_cast<char*>(b), 4);
}

class IdxWriter : public DatasetWriter {
 public:
  IdxWriter(const std::string& path, const Shape& shape, float lo, float hi, bool labelled)
      : shape_(shape), per_(numel(shape)), lo_(lo), scale_(255.f / (hi - lo)) {
    if (path.ends_with(".gz"))
      throw Error(path +
                  ": writing compressed IDX is not supported (write the plain file, then gzip it)");
    Shape s = shape;
    if (s.size() == 3 && s[0] == 1) s.erase(s.begin());
    if (s.empty() || s.size() > 3)
      throw Error(path + ": IDX holds samples of rank 1 to 3, got " + to_string(shape));
    images_ = std::make_unique<TempFile>(path);
    unsigned char magic[4] = {0, 0, 8, uint8_t(s.size() + 1)};
    images_->out().write(reinterpret_cast<char*>(magic), 4);
    put_be32(images_->out(), 0);  // count, patched at close
    for (auto v : s) put_be32(images_->out(), uint32_t(v));
    if (labelled) {
      labels_ = std::make_unique<TempFile>(idx_labels_path(path));
      unsigned char lm[4] = {0, 0, 8, 1};
      labels_->out().write(reinterpret_cast<char*>(lm), 4);
      put_be32(labels_->out(), 0);
    }
    buf_.resize(size_t(per_));
  }
  void write(const float* s, int32_t label) override {
    for (int64_t i = 0; i < per_; ++i) buf_[size_t(i)] = char(to_byte(s[i], lo_, scale_));
    images_->out().write(buf_.data(), std::streamsize(per_));
    if (labels_) {
      if (label < 0 || label > 255)
        throw Error(labels_->path() + ": IDX labels are bytes (0..255), got " +
                    std::to_string(label));
      labels_->out().put(char(uint8_t(label)));
    }
    ++count_;
    if ((count_ & 1023) == 0) images_->check();
  }
  void close() override {
    for (TempFile* f : {images_.get(), labels_.get()}) {
      if (!f) continue;
      f->out().seekp(4);
      put_be32(f->out(), uint32_t(count_));
      f->finish();
    }
    images_->commit();
    if (labels_) labels_->commit();
  }
  std::string describe() const override {
    return images_->path() + (labels_ ? " + " + labels_->path() : std::string());
  }

 private:
  Shape shape_;
  int64_t per_;
  float lo_, scale_;
  std::unique_ptr<TempFile> images_, labels_;
  std::vector<char> buf_;
  int64_t count_ = 0;
};

// NPY with a fixed-size header, rewritten with the final shape at close.
class NpyStream {
 public:
  NpyStream(const std::string& path, std::string descr, Shape sample_shape)
      : file_(path), descr_(std::move(descr)), shape_(std::move(sample_shape)) {
    std::string h = header(0);
    file_.out().write(h.data(), std::streamsize(h.size()));
  }
  std::ofstream& out() { return file_.out(); }
  void check() { file_.check(); }
  void finish(int64_t count) {
    file_.out().seekp(0);
    std::string h = header(count);
    file_.out().write(h.data(), std::streamsize(h.size()));
    file_.finish();
  }
  void commit() { file_.commit(); }
  const std::string& path() const { return file_.path(); }

 private:
  static constexpr size_t kHeader = 128;  // room for any shape
  std::string header(int64_t count) const {
    std::string dims = std::to_string(count) + ",";
    for (size_t i = 0; i < shape_.size(); ++i) {
      dims.append(" ").append(std::to_string(shape_[i]));
      if (i + 1 < shape_.size()) dims.append(",");
    }
    std::string h =
        "{'descr': '" + descr_ + "', 'fortran_order': False, 'shape': (" + dims + "), }";
    // The same length whatever the count: sized for a 20-digit count.
    size_t longest = h.size() + 20 - std::to_string(count).size();
    size_t total = std::max(kHeader, (10 + longest + 1 + 63) / 64 * 64);
    while (10 + h.size() + 1 < total) h += ' ';
    h += '\n';
    std::string out("\x93NUMPY\x01\x00", 8);
    out.push_back(char(h.size() & 0xff));
    out.push_back(char(h.size() >> 8));
    return out + h;
  }
  TempFile file_;
  std::string descr_;
  Shape shape_;
};

class NpyWriter : public DatasetWriter {
 public:
  NpyWriter(const std::string& path, const Shape& shape, bool labelled) : per_(numel(shape)) {
    if (shape.size() > 6)
      throw Error(path + ": sample shape " + to_string(shape) + " has too many axes");
    x_ = std::make_unique<NpyStream>(path, "<f4", shape);
    if (labelled) labels_ = std::make_unique<NpyStream>(npy_labels_path(path), "<i4", Shape{});
  }
  void write(const float* s, int32_t label) override {
    x_->out().write(reinterpret_cast<const char*>(s), std::streamsize(per_ * sizeof(float)));
    if (labels_) labels_->out().write(reinterpret_cast<const char*>(&label), sizeof(label));
    ++count_;
    if ((count_ & 1023) == 0) x_->check();
  }
  void close() override {
    x_->finish(count_);
    if (labels_) labels_->finish(count_);
    x_->commit();
    if (labels_) labels_->commit();
  }
  std::string describe() const override {
    return x_->path() + (labels_ ? " + " + labels_->path() : std::string());
  }

 private:
  int64_t per_;
  std::unique_ptr<NpyStream> x_, labels_;
  int64_t count_ = 0;
};

bool is_digits(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

// A folder this writer may replace: PNG files, possibly in numbered class sub-folders.
// A PNG dataset folder Loom writes holds this file, so that writing the same path again replaces
// only a folder Loom wrote (never a folder of the user's own pictures).
constexpr const char* kPngDatasetMarker = ".loom_dataset";

bool replaceable_png_folder(const fs::path& dir) {
  return fs::is_empty(dir) || fs::is_regular_file(dir / kPngDatasetMarker);
}

class PngFolderWriter : public DatasetWriter {
 public:
  PngFolderWriter(const std::string& path, const Shape& shape, float lo, float hi, bool labelled)
      : final_(strip_slash(path)),
        tmp_(tmp_name(final_)),
        labelled_(labelled),
        lo_(lo),
        scale_(255.f / (hi - lo)) {
    Shape s = shape;
    if (s.size() == 2) s.insert(s.begin(), 1);
    if (s.size() != 3 || (s[0] != 1 && s[0] != 3))
      throw Error(path + ": PNG folders hold (1, H, W) or (3, H, W) images, got " +
                  to_string(shape));
    c_ = s[0];
    h_ = s[1];
    w_ = s[2];
    if (fs::exists(final_) && (!fs::is_directory(final_) || !replaceable_png_folder(final_)))
      throw Error(path + ": already exists and Loom did not write it (it has no " +
                  kPngDatasetMarker +
                  " file); Loom replaces only dataset folders it wrote: remove it or choose "
                  "another path");
    std::error_code ec;
    fs::remove_all(tmp_, ec);
    fs::create_directories(tmp_);
    std::ofstream(fs::path(tmp_) / kPngDatasetMarker) << "a PNG dataset written by loom\n";
    pix_.resize(size_t(c_ * h_ * w_));
  }
  ~PngFolderWriter() override {
    if (!committed_) {
      std::error_code ec;
      fs::remove_all(tmp_, ec);
    }
  }
  void write(const float* s, int32_t label) override {
    int64_t hw = h_ * w_;
    for (int64_t ch = 0; ch < c_; ++ch)
      for (int64_t i = 0; i < hw; ++i)
        pix_[size_t(i * c_ + ch)] = to_byte(s[ch * hw + i], lo_, scale_);
    fs::path dir(tmp_);
    if (labelled_) {
      if (label < 0) throw Error(final_ + ": negative label " + std::to_string(label));
      dir /= std::to_string(label);
      if (made_.insert(label).second) fs::create_directories(dir);
    }
    char name[32];
    std::snprintf(name, sizeof(name), "%06lld.png", (long long)count_);
    encode_png((dir / name).string(), pix_.data(), w_, h_, c_,
               1);  // fast compression: many small files
    ++count_;
  }
  void close() override {
    std::error_code ec;
    std::string old;
    if (fs::exists(final_)) {
      old = final_ + ".old." + std::to_string(::getpid());
      fs::rename(final_, old, ec);
      if (ec) throw Error(final_ + ": cannot replace (" + ec.message() + ")");
    }
    fs::rename(tmp_, final_, ec);
    if (ec) throw Error(final_ + ": cannot write (" + ec.message() + ")");
    committed_ = true;
    if (!old.empty()) fs::remove_all(old, ec);
  }
  std::string describe() const override {
    return final_ + "/ (" + std::to_string(count_) + " PNGs" +
           (labelled_ ? " in class folders)" : ")");
  }

 private:
  std::string final_, tmp_;
  bool labelled_;
  float lo_, scale_;
  int64_t c_ = 1, h_ = 0, w_ = 0, count_ = 0;
  std::vector<unsigned char> pix_;
  std::set<int32_t> made_;
  bool committed_ = false;
};

Dataset read_png_folder(const std::string& path) {
  std::string dir = strip_slash(path);
  if (!fs::is_directory(dir)) throw Error(path + ": no such folder");
  struct Entry {
    std::string name, cls;
    fs::path file;
  };
  std::vector<Entry> files;
  std::vector<std::string> classes;
  for (auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory()) {
      classes.push_back(e.path().filename().string());
    } else if (e.path().extension() == ".png" || e.path().extension() == ".PNG") {
      files.push_back({e.path().filename().string(), "", e.path()});
    }
  }
  if (!classes.empty() && !files.empty())
    throw Error(path + ": mixes PNG files (e.g. " + files[0].name +
                ") and class sub-folders (e.g. " + classes[0] +
                "/); put every PNG in a class folder or none");
  std::sort(classes.begin(), classes.end());
  bool numeric = std::all_of(classes.begin(), classes.end(), is_digits);
  for (auto& c : classes)
    if (numeric && (c.size() > 5 || std::stol(c) >= 100000))
      throw Error(path + ": the class folder '" + c +
                  "' is a number too large for a class index (below 100000)");
  std::map<std::string, int32_t> label_of;
  for (size_t i = 0; i < classes.size(); ++i)
    label_of[classes[i]] = numeric ? int32_t(std::stol(classes[i])) : int32_t(i);
  for (auto& c : classes)
    for (auto& e : fs::directory_iterator(fs::path(dir) / c))
      if (e.is_regular_file() && (e.path().extension() == ".png" || e.path().extension() == ".PNG"))
        files.push_back({e.path().filename().string(), c, e.path()});
  if (files.empty())
    throw Error(path + ": empty dataset folder (no .png files" +
                (classes.empty() ? "" : " in its class sub-folders") + ")");
  // Sample order: by file name (numbered names by value), then class: the order a writer used.
  auto key = [](const std::string& n) {
    std::string stem = fs::path(n).stem().string();
    return std::make_tuple(is_digits(stem) ? 0 : 1, is_digits(stem) ? stem.size() : 0, stem);
  };
  std::sort(files.begin(), files.end(), [&](const Entry& a, const Entry& b) {
    auto ka = key(a.name), kb = key(b.name);
    return ka != kb ? ka < kb : a.cls < b.cls;
  });
  Dataset d;
  d.lo = 0.f;
  d.hi = 255.f;
  d.origin = path;
  for (auto& f : files) {
    Tensor t = read_png(f.file.string());
    if (d.count == 0) {
      d.sample_shape = t.shape();
      d.x.reserve(size_t(t.size()) * files.size());
    } else if (t.shape() != d.sample_shape) {
      throw Error(f.file.string() + ": image size " + to_string(t.shape()) + " differs from " +
                  to_string(d.sample_shape) + " of " + files[0].file.string() +
                  " (every PNG of a dataset folder must have the same size and channels)");
    }
    d.x.insert(d.x.end(), t.data(), t.data() + t.size());
    if (!classes.empty()) d.labels.push_back(label_of[f.cls]);
    ++d.count;
  }
  for (auto v : d.labels) d.num_classes = std::max(d.num_classes, v + 1);
  return d;
}

}  // namespace

DatasetWriter::~DatasetWriter() = default;

std::unique_ptr<DatasetWriter> DatasetWriter::open(const std::string& path, const Shape& shape,
                                                   float lo, float hi, bool labelled) {
  if (!(hi > lo))
    throw Error(path + ": empty value range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "]");
  // Of the ranks of a data-parallel run, rank 0 alone writes.
  if (!distributed::writer()) {
    struct Nowhere : DatasetWriter {
      explicit Nowhere(std::string p) : path(std::move(p)) {}
      void write(const float*, int32_t) override {}
      void close() override {}
      std::string describe() const override { return path; }
      std::string path;
    };
    return std::make_unique<Nowhere>(path);
  }
  switch (format_of(path, false)) {
    case Format::Npy:
      return std::make_unique<NpyWriter>(path, shape, labelled);
    case Format::Idx:
      return std::make_unique<IdxWriter>(path, shape, lo, hi, labelled);
    case Format::PngFolder:
      return std::make_unique<PngFolderWriter>(path, shape, lo, hi, labelled);
  }
  return nullptr;
}

void write_dataset(const std::string& path, const Dataset& d) {
  auto w = DatasetWriter::open(path, d.sample_shape, d.lo, d.hi, d.has_labels());
  for (int64_t i = 0; i < d.count; ++i)
    w->write(d.sample(i), d.has_labels() ? d.labels[size_t(i)] : 0);
  w->close();
}

void set_labels(Dataset& d, const Tensor& l, const std::string& file) {
  if (l.size() != d.count)
    throw Error(file + ": holds " + std::to_string(l.size()) + " labels for " +
                std::to_string(d.count) + " samples" +
                (d.origin.empty() ? std::string() : " in " + d.origin));
  // Class indices: whole numbers from 0, bounded (the class count sizes one-hot rows).
  constexpr float kMaxClasses = 100000;
  d.labels.clear();
  d.labels.reserve(size_t(l.size()));
  for (int64_t i = 0; i < l.size(); ++i) {
    float v = l[i];
    if (!(v >= 0 && v < kMaxClasses && v == std::floor(v))) {
      char text[64];
      std::snprintf(text, sizeof text, "%g", double(v));
      throw Error(file + ": label " + std::to_string(i) + " is " + text +
                  "; labels are class indices 0, 1, 2, ... (below 100000)");
    }
    d.labels.push_back(int32_t(v));
  }
  d.num_classes = 0;
  for (auto v : d.labels) d.num_classes = std::max(d.num_classes, v + 1);
}

Dataset read_dataset(const std::string& path) {
  if (!fs::exists(strip_slash(path))) throw Error(path + ": no such file or folder");
  switch (format_of(path, true)) {
    case Format::Npy: {
      Tensor t = read_npy(path);
      Dataset d;
      d.count = t.dim(0);
      d.sample_shape.assign(t.shape().begin() + 1, t.shape().end());
      d.x.assign(t.data(), t.data() + t.size());
      d.origin = path;
      std::string lp = npy_labels_path(path);
      if (fs::exists(lp)) set_labels(d, read_npy(lp), lp);
      return d;
    }
    case Format::Idx: {
      std::string labels = idx_labels_path(path);
      return read_idx(path, fs::exists(labels) ? labels : "");
    }
    case Format::PngFolder:
      return read_png_folder(path);
  }
  return {};
}

}  // namespace loom
