// Offline augmentation: dataset files (streaming writers, round trips, malformed inputs),
// `loom augment` (determinism across threads, copies and labels, preview, errors) and the
// `augment` recipe in a pipeline.
#include "loom/augment.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "loom/dataset_io.hpp"
#include "loom/error.hpp"
#include "loom/io.hpp"
#include "support/cli.hpp"

namespace fs = std::filesystem;
using namespace loom;
using namespace loom::test;

namespace {

const char* kChain =
    "[{type: horizontal_flip}, {type: rotate, degrees: 15}, {type: translate, fraction: 0.1}, "
    "{type: gaussian_noise, std: 0.05}, {type: cutout, p: 0.5}]";

// The first n Fashion-MNIST training images with labels, values in [0, 255].
Dataset fashion(int64_t n) {
  Dataset all = read_idx("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz",
                         "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz");
  Dataset d;
  d.sample_shape = all.sample_shape;
  d.count = n;
  d.x.assign(all.x.begin(), all.x.begin() + n * numel(all.sample_shape));
  d.labels.assign(all.labels.begin(), all.labels.begin() + n);
  d.num_classes = all.num_classes;
  d.lo = 0;
  d.hi = 255;
  d.origin = "fashion";
  return d;
}

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Files under `dir` (recursive), for checking that nothing was left behind.
std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::recursive_directory_iterator(dir))
    out.push_back(fs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

// Values of `a` mapped to 0..255 against `b` read back from a byte format.
void expect_quantised_equal(const Dataset& a, const Dataset& b) {
  ASSERT_EQ(a.count, b.count);
  ASSERT_EQ(a.x.size(), b.x.size());
  float k = 255.f / (a.hi - a.lo);
  for (size_t i = 0; i < a.x.size(); ++i)
    ASSERT_NEAR((a.x[i] - a.lo) * k, b.x[i], 0.5001f) << "value " << i;
  EXPECT_EQ(a.labels, b.labels);
}

TEST(AugmentFiles, EveryFormatRoundTrips) {
  std::string dir = temp_dir("aug-roundtrip");
  Dataset d = fashion(60);
  // A [0, 1] float copy with labels, and an RGB one without.
  Dataset unit = d;
  for (auto& v : unit.x) v /= 255.f;
  unit.hi = 1;
  Dataset rgb;
  rgb.sample_shape = {3, 5, 4};
  rgb.count = 7;
  rgb.lo = -1;
  rgb.hi = 1;
  for (int64_t i = 0; i < rgb.count * 60; ++i) rgb.x.push_back(std::sin(float(i)) * 0.99f);
  for (const Dataset* src : {&d, &unit, &rgb}) {
    for (std::string name : {"a.npy", "train-images-idx3-ubyte", "b.idx", "png/", "png2"}) {
      std::string path = dir + "/" + std::to_string(src == &rgb) + name;
      if (src == &rgb && name.find("idx") != std::string::npos)
        continue;  // IDX stays grey: tested below
      write_dataset(path, *src);
      Dataset back = read_dataset(path);
      SCOPED_TRACE(path);
      EXPECT_EQ(numel(back.sample_shape), numel(src->sample_shape));
      if (name.ends_with(".npy")) {
        EXPECT_EQ(back.x, src->x);
        EXPECT_EQ(back.labels, src->labels);
      } else {
        EXPECT_EQ(back.sample_shape, src->sample_shape);
        expect_quantised_equal(*src, back);
      }
    }
  }
  // A streamed .npy with a long sample shape: the header patched at close keeps its length.
  {
    Shape deep{1, 1, 1, 1, 1, 3};
    auto w = DatasetWriter::open(dir + "/deep.npy", deep, 0, 1, false);
    for (int64_t i = 0; i < 1000; ++i) {
      float v[3] = {float(i), 1.f, 2.f};
      w->write(v, 0);
    }
    w->close();
    Dataset back = read_dataset(dir + "/deep.npy");
    EXPECT_EQ(back.count, 1000);
    EXPECT_EQ(back.sample_shape, deep);
    EXPECT_EQ(back.x[3 * 999], 999.f);
  }
  // IDX of RGB samples keeps (3, 5, 4).
  write_dataset(dir + "/rgb.idx", rgb);
  Dataset back = read_dataset(dir + "/rgb.idx");
  EXPECT_EQ(back.sample_shape, (Shape{3, 5, 4}));
  expect_quantised_equal(rgb, back);
  // Labelled PNG folders: class sub-folders, numbered files.
  EXPECT_TRUE(fs::exists(dir + "/0png/" + std::to_string(d.labels[0]) + "/000000.png"));
  fs::remove_all(dir);
}

TEST(AugmentFiles, InterruptedWriterLeavesNothing) {
  std::string dir = temp_dir("aug-interrupt");
  Dataset d = fashion(10);
  for (std::string name : {"x.npy", "train-images-idx3-ubyte", "pngs/"}) {
    {
      auto w = DatasetWriter::open(dir + "/" + name, d.sample_shape, 0, 255, true);
      for (int64_t i = 0; i < 5; ++i) w->write(d.sample(i), d.labels[size_t(i)]);
      // destroyed without close()
    }
    EXPECT_TRUE(listing(dir).empty()) << name << " left files behind";
  }
  // A failure in the middle of augmentation: nothing under the final names either.
  struct Failing : DatasetWriter {
    int n = 0;
    void write(const float*, int32_t) override {
      if (++n == 30) throw Error("disk on fire");
    }
    void close() override {}
    std::string describe() const override { return "failing"; }
  } failing;
  {
    auto w = DatasetWriter::open(dir + "/train-images-idx3-ubyte", d.sample_shape, 0, 255, true);
    EXPECT_THROW(augment_dataset(d, 0, d.count, {},
                                 [] {
                                   AugmentOptions o;
                                   o.copies = 4;
                                   return o;
                                 }(),
                                 {w.get(), &failing}),
                 Error);
  }
  EXPECT_TRUE(listing(dir).empty());
  fs::remove_all(dir);
}

// What a killed writer left (path.tmp.<pid of a dead process>) goes at the next write of the
// same path; a live process's temp file is left alone.
TEST(AugmentFiles, TempFilesOfKilledWritersAreRemoved) {
  std::string dir = temp_dir("aug-stale");
  Dataset d = fashion(4);
  pid_t dead = ::fork();
  if (dead == 0) _exit(0);
  ::waitpid(dead, nullptr, 0);
  std::string stale = dir + "/x.npy.tmp." + std::to_string(dead);
  std::string stale_dir = dir + "/pngs.tmp." + std::to_string(dead) + ".3";
  std::string alive = dir + "/x.npy.tmp.1";  // init: alive, and not ours
  std::ofstream(stale) << "60 MB of a killed augment";
  fs::create_directories(stale_dir + "/0");
  std::ofstream(alive) << "someone else's";
  write_dataset(dir + "/x.npy", d);
  write_dataset(dir + "/pngs/", d);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_FALSE(fs::exists(stale_dir));
  EXPECT_TRUE(fs::exists(alive));
  fs::remove_all(dir);
}

// Writing a PNG dataset to a folder replaces only a folder Loom wrote: a folder of the user's
// own pictures is refused and kept.
TEST(AugmentFiles, PngFolderOfTheUsersOwnIsNotReplaced) {
  std::string dir = temp_dir("aug-own");
  Dataset d = fashion(4);
  write_dataset(dir + "/ours/", d);
  write_dataset(dir + "/ours/", d);  // Loom's own: replaced
  EXPECT_EQ(read_dataset(dir + "/ours/").count, 4);
  fs::create_directories(dir + "/mine");
  fs::copy_file(dir + "/ours/" + std::to_string(d.labels[0]) + "/000000.png",
                dir + "/mine/holiday.png");
  try {
    write_dataset(dir + "/mine/", d);
    FAIL() << "replaced the user's folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already exists and Loom did not write it"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(fs::exists(dir + "/mine/holiday.png"));
  fs::remove_all(dir);
}

TEST(AugmentFiles, MalformedInputsGiveClearErrors) {
  std::string dir = temp_dir("aug-malformed");
  Dataset d = fashion(20);
  // Truncated IDX.
  write_dataset(dir + "/t-images-idx3-ubyte", d);
  fs::resize_file(dir + "/t-images-idx3-ubyte", 16 + 784 * 5 + 100);
  try {
    read_dataset(dir + "/t-images-idx3-ubyte");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t-images-idx3-ubyte: truncated"), std::string::npos)
        << e.what();
  }
  // A PNG of another size in a folder.
  write_dataset(dir + "/pngs/", d);
  Dataset small;
  small.sample_shape = {1, 10, 12};
  small.count = 1;
  small.x.assign(120, 0.5f);
  write_dataset(dir + "/odd/", small);
  fs::copy_file(dir + "/odd/000000.png",
                dir + "/pngs/" + std::to_string(d.labels[3]) + "/000003b.png");
  try {
    read_dataset(dir + "/pngs/");
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("000003b.png"), std::string::npos) << m;
    EXPECT_NE(m.find("(1, 10, 12)"), std::string::npos) << m;
    EXPECT_NE(m.find("(1, 28, 28)"), std::string::npos) << m;
  }
  // An empty folder, and a missing path.
  fs::create_directories(dir + "/empty");
  EXPECT_THROW(
      {
        try {
          read_dataset(dir + "/empty/");
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("empty dataset folder"), std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(read_dataset(dir + "/nothing.npy"), Error);
  // Compressed IDX finds its compressed labels beside.
  Dataset gz = read_dataset("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
  EXPECT_EQ(gz.count, 10000);
  EXPECT_EQ(gz.labels.size(), 10000u);
  // The CLI reports them as `error: ...` with exit code 1.
  CliResult r =
      run_loom({"augment", dir + "/empty/", "--out", dir + "/o.npy", "--transform", kChain});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error: " + dir + "/empty/: empty dataset folder"), std::string::npos)
      << r.err;
  r = run_loom(
      {"augment", dir + "/t-images-idx3-ubyte", "--out", dir + "/o.npy", "--transform", kChain});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/o.npy"));
  fs::remove_all(dir);
}

class AugmentCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = temp_dir("aug-cli");
    data = fashion(300);
    input = dir + "/in-images-idx3-ubyte";
    write_dataset(input, data);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string dir, input;
  Dataset data;
};

TEST_F(AugmentCli, SameBytesWithOneAndTwoThreads) {
  for (std::string ext : {"-images-idx3-ubyte", ".npy"}) {
    std::vector<std::string> files;
    for (std::string t : {"1", "2"}) {
      std::string out = dir + "/t" + t + ext;
      CliResult r = run_loom({"augment", input, "--out", out, "--threads", t, "--copies", "3",
                              "--seed", "11", "--transform", kChain});
      ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
      EXPECT_NE(r.out.find("wrote 900 images"), std::string::npos) << r.out;
      files.push_back(out);
    }
    EXPECT_EQ(bytes_of(files[0]), bytes_of(files[1])) << ext;
    std::string l0 = ext == ".npy" ? dir + "/t1.labels.npy" : dir + "/t1-labels-idx1-ubyte";
    std::string l1 = ext == ".npy" ? dir + "/t2.labels.npy" : dir + "/t2-labels-idx1-ubyte";
    EXPECT_EQ(bytes_of(l0), bytes_of(l1));
    EXPECT_FALSE(bytes_of(l0).empty());
  }
  // Another seed, other bytes.
  CliResult r = run_loom({"augment", input, "--out", dir + "/s.npy", "--seed", "12", "--copies",
                          "3", "--transform", kChain});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(bytes_of(dir + "/s.npy"), bytes_of(dir + "/t1.npy"));
}

TEST_F(AugmentCli, CopiesKeepOriginalsAndLabels) {
  std::string out = dir + "/o-images-idx3-ubyte";
  CliResult r = run_loom(
      {"augment", input, "--out", out, "--copies", "2", "--keep-originals", "--transform", kChain});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  Dataset back = read_dataset(out);
  ASSERT_EQ(back.count, 900);
  ASSERT_EQ(back.labels.size(), 900u);
  int64_t per = numel(data.sample_shape), changed = 0;
  for (int64_t i = 0; i < data.count; ++i) {
    for (int64_t j = 0; j < 3; ++j)
      EXPECT_EQ(back.labels[size_t(3 * i + j)], data.labels[size_t(i)]);
    // The original comes first, byte for byte.
    ASSERT_TRUE(std::equal(data.sample(i), data.sample(i) + per, back.sample(3 * i)))
        << "sample " << i;
    changed += !std::equal(data.sample(i), data.sample(i) + per, back.sample(3 * i + 1));
  }
  EXPECT_GT(changed, 250);
  // Without originals: K outputs per sample.
  r = run_loom({"augment", input, "--out", dir + "/k.npy", "--copies", "4", "--transform",
                "[horizontal_flip]"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Dataset k = read_dataset(dir + "/k.npy");
  EXPECT_EQ(k.count, 1200);
  EXPECT_EQ(k.labels[4 * 17 + 3], data.labels[17]);
  // PNG folder output, from a transform file.
  std::ofstream(dir + "/chain.yaml") << "transform:\n  - {type: rotate, degrees: 10}\n";
  r = run_loom({"augment", input, "--out", dir + "/pngs/", "--transform", dir + "/chain.yaml",
                "--subset", "40"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Dataset p = read_dataset(dir + "/pngs/");
  EXPECT_EQ(p.count, 40);
  EXPECT_EQ(p.labels, std::vector<int32_t>(data.labels.begin(), data.labels.begin() + 40));
}

TEST_F(AugmentCli, BadTransformsAreClearErrors) {
  CliResult r = run_loom({"augment", input, "--out", dir + "/o.npy", "--transform",
                          "[{type: horizontal_flip}, {type: rotat, degrees: 15}]"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown augmenter 'rotat'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did you mean 'rotate'"), std::string::npos) << r.err;
  r = run_loom({"augment", input, "--out", dir + "/o.npy", "--transform", "[{type: mixup}]"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("'mixup' is batch-level"), std::string::npos) << r.err;
  r = run_loom(
      {"augment", input, "--out", dir + "/o.npy", "--transform", "[{type: rotate, degres: 15}]"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("degres"), std::string::npos) << r.err;
  r = run_loom({"augment", input, "--out", dir + "/o.npy"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--transform is needed"), std::string::npos) << r.err;
  r = run_loom({"augment", input, "--out", dir + "/o.jpeg", "--transform", kChain});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown dataset format"), std::string::npos) << r.err;
  EXPECT_EQ(listing(dir).size(), 2u) << "only the input and its labels";
}

TEST_F(AugmentCli, CtrlCLeavesNothingBehind) {
  // A long job (1.2 million elastic warps) interrupted after a few seconds.
  std::string gz = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
  for (std::string out : {dir + "/big-images-idx3-ubyte", dir + "/big/"}) {
    CliResult r =
        run_loom({"augment", gz, "--out", out, "--copies", "20", "--transform", "[elastic]"},
                 "timeout --preserve-status -s INT 3");
    EXPECT_EQ(r.exit_code, 1) << r.err << r.out;
    EXPECT_NE(r.err.find("error: interrupted after"), std::string::npos) << r.err;
    EXPECT_EQ(listing(dir).size(), 2u) << "only the input and its labels";
  }
}

TEST_F(AugmentCli, PreviewWritesAGrid) {
  CliResult r = run_loom(
      {"augment", input, "--out", dir + "/preview.png", "--preview", "--transform", kChain});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  Tensor png = read_png(dir + "/preview.png");
  // 8 rows; 7 columns: original, 5 augmenters, the chain; 2-pixel gaps; above them a band of
  // headers, turned upright (the names are wider than a column).
  EXPECT_EQ(png.dim(0), 1);
  EXPECT_EQ(png.dim(2), 7 * 30 + 2);
  EXPECT_GT(png.dim(1), 8 * 30 + 2 + 40);
}

// With no font installed (fontconfig finds none), Cairo draws the headers with its own built-in
// font: the preview is still written, with the same size and ink in the header band.
TEST_F(AugmentCli, PreviewWithoutAnyFontStillHasHeaders) {
  fs::create_directories(dir + "/fonts");
  std::ofstream(dir + "/fonts.conf")
      << "<?xml version=\"1.0\"?>\n<fontconfig><dir>" << dir << "/fonts</dir><cachedir>" << dir
      << "/fc-cache</cachedir></fontconfig>\n";
  std::string with_fonts = dir + "/with.png", without = dir + "/without.png";
  ASSERT_EQ(run_loom({"augment", input, "--out", with_fonts, "--preview", "--transform", kChain})
                .exit_code,
            0);
  CliResult r = run_loom({"augment", input, "--out", without, "--preview", "--transform", kChain},
                         "FONTCONFIG_FILE=" + dir + "/fonts.conf");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  Tensor a = read_png(with_fonts), b = read_png(without);
  EXPECT_EQ(b.dim(2), a.dim(2));
  int64_t top = b.dim(1) - (8 * 30 + 2), dark = 0;
  ASSERT_GT(top, 20);
  for (int64_t i = 0; i < top * b.dim(2); ++i) dark += b[i] < 128;
  EXPECT_GT(dark, 100) << "the headers are drawn";
  bool same = a.shape() == b.shape() && std::equal(a.data(), a.data() + a.size(), b.data());
  EXPECT_FALSE(same) << "in another font than DejaVu Sans";
}

TEST_F(AugmentCli, FromAPipeline) {
  std::string out = dir + "/from-pipeline/";
  CliResult r = run_loom({"augment", source_path("pipelines/augment_fashion.yaml"), "--out", out,
                          "--subset", "50", "--copies", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("stage augment"), std::string::npos) << r.out;
  Dataset p = read_dataset(out);
  EXPECT_EQ(p.count, 50);
  EXPECT_EQ(p.labels, std::vector<int32_t>(data.labels.begin(), data.labels.begin() + 50));
}

TEST(AugmentStage, WritesAndPublishesForLaterStages) {
  std::string dir = temp_dir("aug-stage");
  std::ofstream(dir + "/p.yaml") << R"(name: aug_then_train
seed: 3
datasets:
  fashion:
    source: idx
    scale: [0, 1]
    splits: {train: {take: 55000}}
models:
  ae:
    input: [1, 28, 28]
    layers:
      - {type: flatten}
      - {type: dense, units: 16, activation: relu}
      - {type: dense, units: 784}
      - {type: reshape, shape: [1, 28, 28]}
stages:
  augment:
    recipe: augment
    data: fashion.train
    transform: [horizontal_flip, {type: rotate, degrees: 10}]
    copies: 2
    keep_originals: true
    write: aug/x.npy
    publish: augmented
  train:
    recipe: autoencoder
    model: ae
    data: augmented
    loss: mse
    optimizer: nadam
    batch_size: 32
    epochs: 1
)";
  CliResult r = run_loom({"run", dir + "/p.yaml", "--out", dir + "/run", "--subset", "100"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  Dataset d = read_dataset(dir + "/run/aug/x.npy");
  EXPECT_EQ(d.count, 300);
  EXPECT_EQ(d.labels.size(), 300u);
  bool trained = false;
  for (auto& m : read_metrics(dir + "/run/metrics.jsonl"))
    trained |= m.task == "train" && m.split == "train";
  EXPECT_TRUE(trained) << r.out;
  // An unknown augmenter in the stage is reported before anything runs, located.
  std::string text = read_text(dir + "/p.yaml");
  text.replace(text.find("horizontal_flip"), 15, "horizontal_flop");
  std::ofstream(dir + "/bad.yaml") << text;
  r = run_loom({"validate", dir + "/bad.yaml"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bad.yaml:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did you mean 'horizontal_flip'"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

}  // namespace
