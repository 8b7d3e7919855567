// `loom eval` end to end with the shipped classifier: real training images against the real test
// images sit near zero; added noise and blur raise every distance; the value range of a sample
// file is detected; user errors name the file and the reason.
#include "eval/eval.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "loom/error.hpp"
#include "loom/io.hpp"
#include "loom/rng.hpp"
#include "support/cli.hpp"

namespace fs = std::filesystem;
using namespace loom::test;

namespace {

const std::string kTrain = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
const std::string kTest = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
const int64_t kN = 5000;  // per set; figures at 10,000 are in docs/results.md

// The first n test images in [0, 1], shape (n, 28, 28).
loom::Tensor test_images(int64_t n) {
  loom::Dataset d = loom::read_idx(kTest);
  loom::Tensor t({n, 28, 28});
  for (int64_t i = 0; i < n * 784; ++i) t[i] = d.x[size_t(i)] / 255.f;
  return t;
}

loom::Tensor with_noise(const loom::Tensor& clean, float sigma) {
  loom::Tensor t = clean.clone();  // copies of a Tensor share their values
  loom::Rng r(1, "eval-test-noise");
  for (int64_t i = 0; i < t.size(); ++i) t[i] = std::clamp(t[i] + sigma * r.normal(), 0.f, 1.f);
  return t;
}

// Gaussian blur (sigma 1, 7 taps, mirrored borders), separable.
loom::Tensor blurred(const loom::Tensor& t) {
  float w[7], s = 0;
  for (int k = -3; k <= 3; ++k) s += w[k + 3] = std::exp(-0.5f * float(k * k));
  for (float& v : w) v /= s;
  auto mirror = [](int i) { return i < 0 ? -i - 1 : i > 27 ? 55 - i : i; };
  loom::Tensor out = t.clone(), tmp = t.clone();
  for (int64_t n = 0; n < t.dim(0); ++n) {
    const float* src = t.data() + n * 784;
    float* mid = tmp.data() + n * 784;
    float* dst = out.data() + n * 784;
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) {
        float a = 0;
        for (int k = -3; k <= 3; ++k) a += w[k + 3] * src[y * 28 + mirror(x + k)];
        mid[y * 28 + x] = a;
      }
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) {
        float a = 0;
        for (int k = -3; k <= 3; ++k) a += w[k + 3] * mid[mirror(y + k) * 28 + x];
        dst[y * 28 + x] = a;
      }
  }
  return out;
}

loom::eval::EvalReport evaluate(const std::string& samples, int64_t n = kN) {
  loom::eval::EvalOptions o;
  o.samples = samples;
  o.n = n;
  return loom::eval::run(o);
}

void write_u8_npy(const std::string& path, const std::vector<uint8_t>& v,
                  const std::string& shape) {
  std::string header = "{'descr': '|u1', 'fortran_order': False, 'shape': (" + shape + "), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream o(path, std::ios::binary);
  o.write("\x93NUMPY\x01\x00", 8);
  uint16_t len = uint16_t(header.size());
  o.write(reinterpret_cast<const char*>(&len), 2);
  o << header;
  o.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size()));
}

}  // namespace

TEST(Eval, ShippedClassifierIsFound) {
  EXPECT_TRUE(fs::exists(loom::eval::default_classifier_dir() + "/weights.safetensors"))
      << loom::eval::default_classifier_dir();
}

TEST(Eval, RealTrainingImagesAreNearTheTestImagesAndDistortionsAreFar) {
  std::string dir = temp_dir("eval");
  loom::Tensor clean = test_images(kN);
  loom::write_npy(dir + "/noise01.npy", with_noise(clean, 0.1f));
  loom::write_npy(dir + "/noise02.npy", with_noise(clean, 0.2f));
  loom::write_npy(dir + "/blur.npy", blurred(clean));
  auto real = evaluate(kTrain);
  auto n1 = evaluate(dir + "/noise01.npy"), n2 = evaluate(dir + "/noise02.npy");
  auto blur = evaluate(dir + "/blur.npy");
  for (auto* r : {&real, &n1, &n2, &blur})
    std::printf(
        "[ figures  ] %-48s N = %lld: FD %.4f, KID %.5f +- %.5f, precision %.3f, recall %.3f\n",
        r->samples.c_str(), (long long)r->n_samples, r->fd, r->kid_mean, r->kid_std, r->precision,
        r->recall);
  EXPECT_EQ(real.n_samples, kN);
  EXPECT_EQ(real.n_real, kN);
  EXPECT_EQ(real.feature_dim, 128);
  EXPECT_LT(real.fd, 0.5);
  EXPECT_GT(n1.fd, 20 * real.fd);
  EXPECT_GT(n2.fd, n1.fd);
  EXPECT_GT(blur.fd, 20 * real.fd);
  EXPECT_LT(std::abs(real.kid_mean), 0.05 * n1.kid_mean);
  EXPECT_GT(n2.kid_mean, n1.kid_mean);
  EXPECT_GT(blur.kid_mean, 10 * real.kid_std);
  EXPECT_GT(real.precision, 0.75);
  EXPECT_GT(real.recall, 0.75);
  EXPECT_LT(n2.recall, 0.5 * real.recall);
  EXPECT_LT(blur.recall, 0.5 * real.recall);
  // Real images: every class present, entropy near log2(10); the classifier's accuracy.
  EXPECT_EQ(real.classes_present, 10);
  EXPECT_GT(real.class_entropy_bits, 3.3);
  EXPECT_TRUE(real.conditional);  // the training labels are found beside the images
  EXPECT_GT(real.class_match, 0.91);
  EXPECT_TRUE(real.real_labelled);
  EXPECT_GT(real.real_accuracy, 0.91);
  EXPECT_EQ(real.classes[9].name, "Ankle boot");
  fs::remove_all(dir);
}

TEST(Eval, ValueRangeIsDetectedOrGiven) {
  std::string dir = temp_dir("eval-range");
  int64_t n = 600;
  loom::Tensor clean = test_images(n), signed_ = clean.clone();
  for (int64_t i = 0; i < signed_.size(); ++i) signed_[i] = 2 * signed_[i] - 1;
  std::vector<uint8_t> bytes(size_t(clean.size()));
  for (int64_t i = 0; i < clean.size(); ++i)
    bytes[size_t(i)] = uint8_t(std::lround(clean[i] * 255));
  loom::write_npy(dir + "/unit.npy", clean);
  loom::write_npy(dir + "/signed.npy", signed_.reshaped({n, 1, 28, 28}));
  write_u8_npy(dir + "/bytes.npy", bytes, std::to_string(n) + ", 28, 28");
  auto unit = evaluate(dir + "/unit.npy", n), sgn = evaluate(dir + "/signed.npy", n);
  auto u8 = evaluate(dir + "/bytes.npy", n);
  EXPECT_EQ(sgn.range_lo, -1.f);
  EXPECT_EQ(sgn.range_source, "detected");
  EXPECT_EQ(u8.range_hi, 255.f);
  EXPECT_EQ(u8.range_source, "uint8");
  EXPECT_NEAR(sgn.fd, unit.fd, 1e-3 * unit.fd + 1e-6);
  EXPECT_NEAR(u8.fd, unit.fd, 1e-3 * unit.fd + 1e-6);
  // Given explicitly: [-1, 1] data read as [0, 1] is clipped and lands far away.
  loom::eval::EvalOptions o;
  o.samples = dir + "/signed.npy";
  o.n = n;
  o.range = "0,1";
  EXPECT_GT(loom::eval::run(o).fd, 10 * unit.fd);
  fs::remove_all(dir);
}

TEST(EvalCli, JsonAndTextOutput) {
  std::string dir = temp_dir("eval-cli");
  loom::Tensor clean = test_images(500);
  loom::write_npy(dir + "/s.npy", clean);
  std::vector<int32_t> labels(500, 3);  // ask for "Dress" everywhere
  loom::write_npy_labels(dir + "/s.labels.npy", labels);
  auto r = run_loom({"eval", dir + "/s.npy", "--n", "500", "--json", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n"], 500);
  EXPECT_EQ(j["n_real"], 500);
  EXPECT_EQ(j["classes"].size(), 10u);
  EXPECT_TRUE(j["fd"].is_number());
  EXPECT_EQ(j["kid"]["subset_size"], 500);
  EXPECT_NEAR(j["class_match"].get<double>(), j["classes"][3]["share"].get<double>(), 1e-12);
  auto t = run_loom({"eval", dir + "/s.npy", "--n", "500", "--threads", "1"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("Fréchet distance (FD)"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("N = 500 vs 500"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("class match"), std::string::npos) << t.out;
  fs::remove_all(dir);
}

TEST(EvalCli, ErrorsNameTheFileAndTheReason) {
  std::string dir = temp_dir("eval-errors");
  loom::write_npy(dir + "/wide.npy", loom::Tensor({4, 32, 32}));
  loom::Tensor hot({4, 28, 28});
  hot[5] = 7.f;
  loom::write_npy(dir + "/hot.npy", hot);
  loom::write_npy(dir + "/ok.npy", loom::Tensor({4, 28, 28}));
  loom::write_npy_labels(dir + "/three.labels.npy", {1, 2, 3});
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> expect;
    int exit_code = 1;  // 2: a mistake in how loom was called
  };
  std::vector<Case> cases = {
      {{"eval", dir + "/missing.npy"}, {dir + "/missing.npy", "no such file"}},
      {{"eval", dir + "/wide.npy"}, {dir + "/wide.npy", "(N, 32, 32)", "(N, 28, 28)"}},
      {{"eval", dir + "/hot.npy"}, {dir + "/hot.npy", "to 7", "--range"}},
      {{"eval", dir + "/ok.npy", "--range", "1,0"}, {"--range", "LOW < HIGH"}, 2},
      {{"eval", dir + "/ok.npy", "--labels", dir + "/three.labels.npy"},
       {"three.labels.npy", "3 labels for 4 images"}},
      {{"eval", dir + "/ok.npy", "--real", dir + "/wide.npy"}, {dir + "/wide.npy", "(N, 32, 32)"}},
      {{"eval", dir + "/ok.npy", "--classifier", dir + "/nowhere"},
       {dir + "/nowhere", "classifier"}},
      {{"eval"}, {"SAMPLES is required"}, 2},
      {{"eval", dir + "/ok.npy", "--range", "1"}, {"--range", "LOW,HIGH"}, 2},
      {{"eval", dir + "/ok.npy", "--bogus"}, {"unknown option --bogus"}, 2},
  };
  for (auto& c : cases) {
    auto r = run_loom(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args.back() << "\n" << r.err;
    for (auto& e : c.expect) EXPECT_NE(r.err.find(e), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("std::"), std::string::npos) << r.err;
  }
  fs::remove_all(dir);
}
