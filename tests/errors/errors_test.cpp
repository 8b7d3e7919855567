// Golden tests of error messages: each broken pipeline in tests/errors/cases/ names its
// expected messages in `# expect:` lines. `loom run` must print each (located at file:line:col),
// exit non-zero, never crash or print C++ internals, and write nothing.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <vector>

#include "support/cli.hpp"

namespace fs = std::filesystem;
using namespace loom::test;

namespace {

std::vector<std::string> cases() {
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(source_path("tests/errors/cases")))
    if (e.path().extension() == ".yaml") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

void expect_clean_failure(const CliResult& r, const std::string& out_dir) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.exit_code, 128) << "crashed: " << r.err;
  for (const char* bad :
       {"terminate called", "std::", "what():", "Aborted", "Segmentation", "YAML::"})
    EXPECT_EQ(r.err.find(bad), std::string::npos)
        << "internal detail '" << bad << "' in: " << r.err;
  EXPECT_FALSE(fs::exists(out_dir)) << "the failed run wrote " << out_dir;
}

class BrokenPipeline : public ::testing::TestWithParam<std::string> {};

TEST_P(BrokenPipeline, ReportsLocatedErrorAndWritesNothing) {
  // Run from the cases folder so the printed path is the bare file name.
  std::string file = GetParam() + ".yaml";
  std::string text = read_text(source_path("tests/errors/cases/" + file));
  std::vector<std::string> expected;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("# expect: ", 0) == 0) expected.push_back(line.substr(10));
  ASSERT_FALSE(expected.empty()) << file << " has no '# expect:' line";
  std::string out = temp_dir("err") + "/run";
  std::string cd = "cd " + source_path("tests/errors/cases") + " &&";
  for (const char* cmd : {"run", "validate"}) {
    std::vector<std::string> args{cmd, file};
    if (std::string(cmd) == "run") args.insert(args.end(), {"--out", out});
    CliResult r = run_loom(args, cd);
    for (auto& e : expected)
      EXPECT_NE(r.err.find(e), std::string::npos) << cmd << ": expected\n  " << e << "\nin\n"
                                                  << r.err;
    expect_clean_failure(r, out);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, BrokenPipeline, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param; });

std::string write_pipeline(const std::string& dir, const std::string& images) {
  std::string p = dir + "/p.yaml";
  std::ofstream(p) << "name: t\ndatasets:\n  d: {source: idx, images: " << images
                   << ", labels: ''}\nmodels:\n  m: {input: [28, 28], layers: [{type: flatten}, "
                      "{type: dense, units: 784}, "
                      "{type: reshape, shape: [28, 28]}]}\nstages:\n  train: {recipe: autoencoder, "
                      "model: m, data: d}\n";
  return p;
}

TEST(DataErrors, TruncatedIdxNamesFileAndReason) {
  std::string dir = temp_dir("trunc");
  // A gzipped IDX header promising 100 images of 28x28, followed by only 10 of them.
  std::string images = dir + "/images-idx3-ubyte.gz";
  gzFile f = gzopen(images.c_str(), "wb");
  unsigned char header[16] = {0, 0, 8, 3, 0, 0, 0, 100, 0, 0, 0, 28, 0, 0, 0, 28};
  gzwrite(f, header, 16);
  std::vector<unsigned char> pixels(10 * 784, 7);
  gzwrite(f, pixels.data(), unsigned(pixels.size()));
  gzclose(f);
  std::string out = dir + "/run";
  CliResult r = run_loom({"run", write_pipeline(dir, images), "--out", out});
  EXPECT_NE(r.err.find(images + ": truncated IDX file: the header promises 100 images (78400 "
                                "bytes) but the file holds 7840 bytes"),
            std::string::npos)
      << r.err;
  expect_clean_failure(r, out);
}

TEST(DataErrors, NotAnIdxFile) {
  std::string dir = temp_dir("notidx");
  std::string images = dir + "/images.idx";
  std::ofstream(images) << "hello, this is text";
  std::string out = dir + "/run";
  CliResult r = run_loom({"run", write_pipeline(dir, images), "--out", out});
  EXPECT_NE(r.err.find(images + ": not an IDX file"), std::string::npos) << r.err;
  expect_clean_failure(r, out);
}

// Forged headers: sizes that the file does not hold are refused, naming the file, before
// anything of their size is allocated (the run would otherwise die of memory or a library's
// message). Each case goes through `loom predict`, which reads the file whole.
TEST(DataErrors, ForgedHeadersAreCheckedAgainstTheFile) {
  std::string dir = temp_dir("forged");
  auto idx = [&](const std::string& name, std::vector<unsigned char> header, bool gz) {
    std::string path = dir + "/" + name;
    std::vector<unsigned char> pixels(784, 9);
    if (gz) {
      gzFile f = gzopen(path.c_str(), "wb");
      gzwrite(f, header.data(), unsigned(header.size()));
      gzwrite(f, pixels.data(), unsigned(pixels.size()));
      gzclose(f);
    } else {
      std::ofstream o(path, std::ios::binary);
      o.write(reinterpret_cast<const char*>(header.data()), std::streamsize(header.size()));
      o.write(reinterpret_cast<const char*>(pixels.data()), std::streamsize(pixels.size()));
    }
    return path;
  };
  auto npy = [&](const std::string& name, const std::string& header_text, uint32_t claimed_len) {
    std::string path = dir + "/" + name;
    std::ofstream o(path, std::ios::binary);
    o.write("\x93NUMPY\x02\x00", 8);
    unsigned char len[4] = {(unsigned char)(claimed_len & 0xff), (unsigned char)(claimed_len >> 8),
                            (unsigned char)(claimed_len >> 16), (unsigned char)(claimed_len >> 24)};
    o.write(reinterpret_cast<const char*>(len), 4);
    o << header_text;
    std::vector<float> data(784, 0.5f);
    o.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size() * 4));
    return path;
  };
  std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (SHAPE), }\n";
  auto with = [&](const std::string& shape) {
    std::string t = h;
    t.replace(t.find("SHAPE"), 5, shape);
    return t;
  };
  struct Case {
    std::string path, expect;
  };
  std::vector<Case> cases = {
      {idx("huge-idx3-ubyte", {0, 0, 8, 3, 1, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28}, false),
       "truncated IDX file: the header promises 16777216 images"},
      {idx("huge-idx3-ubyte.gz", {0, 0, 8, 3, 1, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28}, true),
       "truncated IDX file: the header promises 16777216 images"},
      {idx("wide-idx3-ubyte",
           {0, 0, 8, 3, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, false),
       "more than 2^40 bytes"},
      {idx("zero-idx3-ubyte", {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 28}, false),
       "gives dimension 2 a size of 0"},
      {npy("huge.npy", with("1000000000, 28, 28"), uint32_t(with("1000000000, 28, 28").size())),
       "truncated NPY data: the shape (1000000000, 28, 28) needs"},
      {npy("vast.npy", with("99999999999999999999, 28"),
           uint32_t(with("99999999999999999999, 28").size())),
       "is larger than any file"},
      {npy("header.npy", with("1, 28, 28"), 0xfffffff0u), "truncated NPY header"},
      {npy("negative.npy", with("-1, 28, 28"), uint32_t(with("-1, 28, 28").size())),
       "the NPY header's shape (-1, 28, 28) holds '-1', which is not a size"},
  };
  for (auto& c : cases) {
    CliResult r = run_loom({"predict", source_path("models/fid_classifier"), "--input", c.path,
                            "--out", dir + "/out.npy"});
    EXPECT_EQ(r.exit_code, 1) << c.path << "\n" << r.err;
    EXPECT_NE(r.err.find(c.path + ": "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("std::"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("alloc"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir + "/out.npy"));
  }
}

// Labels are class indices: a NaN, negative, fractional or huge value in a label file is refused
// with the file and the label's index (it was cast to int32, or sized a one-hot row).
TEST(DataErrors, LabelsThatAreNotClassIndices) {
  std::string dir = temp_dir("labels");
  auto write_npy = [](const std::string& path, const std::string& shape, const float* v, size_t n) {
    std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
    h.resize(117, ' ');
    h += '\n';
    std::ofstream o(path, std::ios::binary);
    o.write("\x93NUMPY\x01\x00", 8);
    unsigned char len[2] = {(unsigned char)(h.size() & 0xff), (unsigned char)(h.size() >> 8)};
    o.write(reinterpret_cast<const char*>(len), 2);
    o << h;
    o.write(reinterpret_cast<const char*>(v), std::streamsize(n * sizeof(float)));
  };
  std::vector<float> images(3 * 784, 0.5f);
  struct Case {
    float bad;
    std::string shown;
  };
  for (const Case& c : {Case{std::nanf(""), "nan"}, Case{-1.f, "-1"}, Case{2.5f, "2.5"},
                        Case{1099511627776.f, "1.09951e+12"}}) {
    std::string images_path = dir + "/set.npy", labels_path = dir + "/set.labels.npy";
    write_npy(images_path, "3, 28, 28", images.data(), images.size());
    float labels[3] = {0.f, 1.f, c.bad};
    write_npy(labels_path, "3,", labels, 3);
    CliResult r = run_loom({"eval", images_path});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(labels_path + ": label 2 is " + c.shown +
                         "; labels are class indices 0, 1, 2, ... (below 100000)"),
              std::string::npos)
        << r.err;
  }
}

TEST(CliErrors, EmptyValuesAndNonFiniteNumbers) {
  std::string out = temp_dir("empty") + "/run";
  CliResult r = run_loom({"run", source_path("pipelines/stacked_ae.yaml"), "--out", ""});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--out: expected a value, got ''"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists("runs/stacked_ae"));
  for (const char* range : {"nan,1", "1,-1", "0,inf"}) {
    r = run_loom({"predict", source_path("models/fid_classifier"), "--input", "x.npy", "--out",
                  out + ".npy", "--range", range});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--range: expected LOW,HIGH, two finite numbers with LOW < HIGH"),
              std::string::npos)
        << r.err;
  }
  r = run_loom({"validate", source_path("pipelines/stacked_ae.yaml"), "--set",
                "models.encoder.layers[99999999999999999999].units=3"});
  EXPECT_NE(r.err.find("the list index is too large"), std::string::npos) << r.err;
  r = run_loom(
      {"run", source_path("pipelines/stacked_ae.yaml"), "--out", out, "--threads", "100000"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--threads: 100000 threads on "), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  // A shape whose element count would overflow (2^32 x 2^32 = 2^64 wrapped to 0).
  r = run_loom({"validate", source_path("pipelines/stacked_ae.yaml"), "--set",
                "models.encoder.input=[4294967296, 4294967296]"});
  EXPECT_NE(r.err.find("models.encoder.input: the shape holds more than 2^31 values per sample"),
            std::string::npos)
      << r.err;
  for (const char* v : {"nan", "inf", "-inf"}) {
    r = run_loom({"run", source_path("pipelines/stacked_ae.yaml"), "--out", out, "--set",
                  std::string("stages.train.optimizer.lr=") + v});
    EXPECT_NE(r.err.find(std::string("stages.train.optimizer.lr: expected a finite number, got '") +
                         v + "'"),
              std::string::npos)
        << r.err;
    expect_clean_failure(r, out);
  }
}

// A write that fails (here a file-size limit: SIGXFSZ is ignored, the write returns EFBIG; a
// full disk gives ENOSPC the same way) stops the run with the path and the cause, and leaves no
// temporary file.
TEST(CliErrors, FailedWriteNamesThePathAndTheCause) {
  std::string out = temp_dir("fsize") + "/run";
  CliResult r = run_loom({"run", source_path("pipelines/stacked_ae.yaml"), "--out", out, "--subset",
                          "200", "--epochs", "1", "--threads", "1", "--quiet"},
                         "ulimit -f 1000;");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(out + "/checkpoints/train/"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(".safetensors: cannot write (File too large)"), std::string::npos) << r.err;
  for (auto& e : std::filesystem::recursive_directory_iterator(out))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

// A memory cap (ulimit -v) gives a message naming the limit and what to change, exit 1, and no
// temporary file. (The sanitizer build reserves terabytes of shadow address space, so no cap
// can be set there.)
TEST(CliErrors, MemoryCapGivesAMessage) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's shadow memory cannot run under ulimit -v";
#endif
  std::string out = temp_dir("vmem") + "/run";
  CliResult r = run_loom({"run", source_path("pipelines/stacked_ae.yaml"), "--out", out, "--subset",
                          "200", "--epochs", "1", "--threads", "1", "--quiet"},
                         "ulimit -v 200000;");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("error: out of memory: this process may use at most 195 MiB of address "
                       "space (ulimit -v 200000)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("bad_alloc"), std::string::npos) << r.err;
  if (std::filesystem::exists(out)) {
    for (auto& e : std::filesystem::recursive_directory_iterator(out))
      EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
  }
}

// A mistake in a model that others inline (the encoder inside the autoencoder) is reported once.
TEST(CliErrors, AnInlinedModelsMistakeIsReportedOnce) {
  CliResult r = run_loom({"validate", source_path("pipelines/stacked_ae.yaml"), "--set",
                          "models.encoder.layers[1].units=0"});
  EXPECT_EQ(r.exit_code, 1);
  std::string m = "models.encoder.layers[1].units: must be >= 1, got 0";
  size_t first = r.err.find(m);
  ASSERT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(m, first + 1), std::string::npos) << r.err;
}

TEST(CliErrors, UnknownOptionAndCommand) {
  CliResult r = run_loom({"run", source_path("pipelines/stacked_ae.yaml"), "--epoch", "2"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unknown option --epoch (did you mean 'epochs'?)"), std::string::npos)
      << r.err;
  r = run_loom({"trian"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unknown command 'trian' (did you mean 'train'?)") == std::string::npos &&
                r.err.find("unknown command 'trian'") == std::string::npos,
            true)
      << r.err;
  r = run_loom({"run", "no/such/pipeline.yaml"});
  EXPECT_NE(r.err.find("no/such/pipeline.yaml: pipeline file not found"), std::string::npos)
      << r.err;
}

TEST(CliErrors, BadOverride) {
  std::string out = temp_dir("set") + "/run";
  CliResult r = run_loom({"run", source_path("pipelines/stacked_ae.yaml"), "--out", out, "--set",
                          "stages.train.batch_size=many"});
  EXPECT_NE(r.err.find("stages.train.batch_size: expected an integer, got 'many'"),
            std::string::npos)
      << r.err;
  expect_clean_failure(r, out);
}

}  // namespace
