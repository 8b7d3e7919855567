// Generation: samplers (determinism per sample, moments), PCA and the scatter plot, the sample
// recipe's outputs in the VAE pipeline, and `loom sample` on a tiny trained run.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "loom/create.hpp"
#include "loom/dataset_io.hpp"
#include "loom/io.hpp"
#include "loom/sampler.hpp"
#include "output/scatter.hpp"
#include "support/cli.hpp"
#include "support/harness.hpp"

namespace fs = std::filesystem;
using namespace loom::test;

namespace {

std::unique_ptr<loom::Sampler> make(const std::string& yaml) {
  return loom::create_from<loom::Sampler>(registry(), entry_from_yaml(yaml));
}

loom::Tensor draw(const loom::Sampler& s, int64_t n, int64_t width, uint64_t seed,
                  int64_t first = 0) {
  loom::Tensor t({n, width});
  s.sample(t, seed, first);
  return t;
}

TEST(SampleSamplers, SampleIDoesNotDependOnN) {
  for (const char* yaml :
       {"gaussian", "{type: gaussian, truncation: 1.5}", "{type: uniform, low: -2, high: 3}"}) {
    auto s = make(yaml);
    loom::Tensor few = draw(*s, 3, 10, 42), many = draw(*s, 100, 10, 42),
                 tail = draw(*s, 5, 10, 42, 50);
    for (int64_t i = 0; i < 30; ++i) EXPECT_EQ(few[i], many[i]) << yaml << " value " << i;
    for (int64_t i = 0; i < 50; ++i)
      EXPECT_EQ(tail[i], many[50 * 10 + i]) << yaml << " value " << i;
    loom::Tensor other = draw(*s, 3, 10, 43);
    int same = 0;
    for (int64_t i = 0; i < 30; ++i) same += other[i] == few[i];
    EXPECT_LT(same, 3) << yaml << ": another seed gives other codings";
  }
}

TEST(SampleSamplers, GaussianMoments) {
  auto s = make("{type: gaussian, mean: 0.5, stddev: 2}");
  loom::Tensor t = draw(*s, 20000, 8, 7);
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < t.size(); ++i) sum += t[i];
  double mean = sum / double(t.size());
  for (int64_t i = 0; i < t.size(); ++i) sq += (t[i] - mean) * (t[i] - mean);
  EXPECT_NEAR(mean, 0.5, 0.03);
  EXPECT_NEAR(std::sqrt(sq / double(t.size())), 2.0, 0.03);
  auto tr = make("{type: gaussian, stddev: 1, truncation: 1}");
  loom::Tensor u = draw(*tr, 2000, 8, 7);
  for (int64_t i = 0; i < u.size(); ++i) ASSERT_LE(std::fabs(u[i]), 1.f);
}

TEST(SampleSamplers, UniformRangeAndErrors) {
  auto s = make("{type: uniform, low: -1, high: 3}");
  loom::Tensor t = draw(*s, 5000, 4, 1);
  double sum = 0;
  for (int64_t i = 0; i < t.size(); ++i) {
    ASSERT_GE(t[i], -1.f);
    ASSERT_LT(t[i], 3.f);
    sum += t[i];
  }
  EXPECT_NEAR(sum / double(t.size()), 1.0, 0.05);
  EXPECT_THROW(make("{type: uniform, low: 1, high: 1}"), loom::Error);
  EXPECT_THROW(make("{type: gaussian, stddev: -1}"), loom::Error);
}

TEST(SamplePca, JacobiOnHandMadeMatrices) {
  // [[2, 1], [1, 2]]: eigenvalues 3 and 1, eigenvectors (1, 1)/√2 and (1, -1)/√2.
  loom::Eigen e = loom::symmetric_eigen({2, 1, 1, 2}, 2);
  double r = 1 / std::sqrt(2.0);
  EXPECT_NEAR(e.values[0], 3, 1e-12);
  EXPECT_NEAR(e.values[1], 1, 1e-12);
  EXPECT_NEAR(e.vectors[0], r, 1e-12);
  EXPECT_NEAR(e.vectors[1], r, 1e-12);
  EXPECT_NEAR(std::fabs(e.vectors[2]), r, 1e-12);
  EXPECT_NEAR(e.vectors[2] * e.vectors[3], -0.5, 1e-12);
  // Diagonal: the eigenvalues sorted, unit vectors.
  e = loom::symmetric_eigen({1, 0, 0, 0, 5, 0, 0, 0, 3}, 3);
  EXPECT_EQ(e.values, std::vector<double>({5, 3, 1}));
  EXPECT_EQ(e.vectors, std::vector<double>({0, 1, 0, 0, 0, 1, 1, 0, 0}));
  // A 4 x 4 matrix: A v = λ v for every pair, vectors orthonormal.
  std::vector<double> a{4, 1, 2, 0.5, 1, 3, 0, 1, 2, 0, 5, 1.5, 0.5, 1, 1.5, 2};
  e = loom::symmetric_eigen(a, 4);
  for (int k = 0; k < 4; ++k) {
    for (int i = 0; i < 4; ++i) {
      double av = 0;
      for (int j = 0; j < 4; ++j) av += a[size_t(i * 4 + j)] * e.vectors[size_t(k * 4 + j)];
      EXPECT_NEAR(av, e.values[size_t(k)] * e.vectors[size_t(k * 4 + i)], 1e-10);
    }
    for (int m = 0; m < 4; ++m) {
      double dot = 0;
      for (int j = 0; j < 4; ++j)
        dot += e.vectors[size_t(k * 4 + j)] * e.vectors[size_t(m * 4 + j)];
      EXPECT_NEAR(dot, k == m ? 1 : 0, 1e-10);
    }
  }
  for (int k = 1; k < 4; ++k) EXPECT_GE(e.values[size_t(k - 1)], e.values[size_t(k)]);
}

TEST(SamplePca, PointsOnALine) {
  // (-2,-4), (-1,-2), (1,2), (2,4): mean 0, covariance [[2.5, 5], [5, 10]], one component (1, 2)/√5
  // with variance 12.5; the points project to -2√5, -√5, √5, 2√5.
  std::vector<float> x{-2, -4, -1, -2, 1, 2, 2, 4};
  loom::Pca p = loom::fit_pca(x.data(), 4, 2);
  EXPECT_NEAR(p.mean[0], 0, 1e-12);
  EXPECT_NEAR(p.eigen.values[0], 12.5, 1e-9);
  EXPECT_NEAR(p.eigen.values[1], 0, 1e-9);
  EXPECT_NEAR(p.eigen.vectors[0], 1 / std::sqrt(5.0), 1e-9);
  EXPECT_NEAR(p.eigen.vectors[1], 2 / std::sqrt(5.0), 1e-9);
  auto c = loom::project(p, x.data(), 4, 2);
  double s5 = std::sqrt(5.0);
  std::vector<double> want{-2 * s5, -s5, s5, 2 * s5};
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(c[size_t(i * 2)], want[size_t(i)], 1e-6);
    EXPECT_NEAR(c[size_t(i * 2 + 1)], 0, 1e-6);
  }
  // Shifted and lifted into 3-D (third value constant): the same first coordinates.
  loom::Tensor t({4, 3});
  for (int i = 0; i < 4; ++i) {
    t[i * 3] = x[size_t(i * 2)] + 10;
    t[i * 3 + 1] = x[size_t(i * 2 + 1)] - 3;
    t[i * 3 + 2] = 7;
  }
  auto xy = loom::scatter_points(t);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(xy[size_t(i * 2)], want[size_t(i)], 1e-5);
  // 2-D values are plotted as they are.
  loom::Tensor two({2, 2});
  two[0] = 1, two[1] = 2, two[2] = 3, two[3] = 4;
  EXPECT_EQ(loom::scatter_points(two), std::vector<double>({1, 2, 3, 4}));
}

TEST(SampleScatter, WritesPngOfExpectedSize) {
  std::string dir = temp_dir("scatter");
  loom::Tensor v({300, 5});
  std::vector<int32_t> labels;
  loom::Rng rng(1, "test");
  for (int64_t i = 0; i < 300; ++i) {
    labels.push_back(int32_t(i % 10));
    for (int k = 0; k < 5; ++k) v[i * 5 + k] = rng.normal() + float(i % 10) * (k == 0 ? 2.f : 0.f);
  }
  loom::write_scatter_png(dir + "/s.png", v, labels);
  loom::Tensor img = loom::read_png(dir + "/s.png");
  auto [w, h] = loom::scatter_png_size();
  EXPECT_EQ(img.shape(), loom::Shape({3, h, w}));
  // Not blank: some pixels carry a class colour (not grey).
  int64_t coloured = 0, plane = h * w;
  for (int64_t i = 0; i < plane; ++i)
    coloured += std::fabs(img[i] - img[plane + i]) > 30 ||
                std::fabs(img[plane + i] - img[2 * plane + i]) > 30;
  EXPECT_GT(coloured, 500);
  EXPECT_THROW(loom::write_scatter_png(dir + "/bad.png", v, {1, 2}), loom::Error);
}

// One tiny VAE run shared by the command-line tests.
const std::string& tiny_run() {
  static std::string dir = [] {
    std::string d = temp_dir("sample-run") + "/vae";
    CliResult r = run_loom({"run", source_path("pipelines/vae.yaml"), "--out", d, "--subset",
                            "1000", "--epochs", "1", "--threads", "2"});
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    return d;
  }();
  return dir;
}

const char* kTestImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

TEST(SampleCli, VaePipelineWritesSamplesAndCodingsScatter) {
  const std::string& run = tiny_run();
  loom::Tensor s = loom::read_png(run + "/samples.png");
  EXPECT_EQ(s.shape(), loom::Shape({1, 8 * 30 + 2, 8 * 30 + 2}));  // 64 garments, 8 x 8
  auto [w, h] = loom::scatter_png_size();
  EXPECT_EQ(loom::read_png(run + "/codings.png").shape(), loom::Shape({3, h, w}));
  EXPECT_EQ(loom::read_npy(run + "/codings.npy").shape(), loom::Shape({1000, 10}));
  EXPECT_TRUE(fs::exists(run + "/codings.labels.npy"));
}

TEST(SampleCli, WritesPngNpyAndIdx) {
  const std::string& run = tiny_run();
  std::string out = temp_dir("sample-out");
  CliResult r = run_loom({"sample", run, "--n", "12", "--cols", "4", "--out", out + "/s.png"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(loom::read_png(out + "/s.png").shape(), loom::Shape({1, 3 * 30 + 2, 4 * 30 + 2}));
  r = run_loom({"sample", run, "--n", "20", "--out", out + "/s.npy", "--seed", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  loom::Tensor a = loom::read_npy(out + "/s.npy");
  EXPECT_EQ(a.shape(), loom::Shape({20, 28, 28}));
  for (int64_t i = 0; i < a.size(); ++i) ASSERT_TRUE(a[i] >= 0.f && a[i] <= 1.f) << i;
  // Sample i is the same however many are drawn.
  r = run_loom({"sample", run, "--n", "3", "--out", out + "/t.npy", "--seed", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  loom::Tensor b = loom::read_npy(out + "/t.npy");
  for (int64_t i = 0; i < b.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;
  r = run_loom({"sample", run, "--n", "10", "--out", out + "/gen-images-idx3-ubyte", "--sampler",
                "{type: uniform, low: -1, high: 1}"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  loom::Dataset d = loom::read_dataset(out + "/gen-images-idx3-ubyte");
  EXPECT_EQ(d.count, 10);
  EXPECT_FALSE(d.has_labels());
  // A checkpoint file works as well as the run folder.
  r = run_loom({"sample", run + "/weights.safetensors", "--n", "4", "--out", out + "/c.npy",
                "--model", "decoder"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

TEST(SampleCli, Interpolations) {
  const std::string& run = tiny_run();
  std::string out = temp_dir("sample-interp");
  CliResult r = run_loom({"sample", run, "--interpolate", "--axis", "3", "--n", "4", "--steps", "7",
                          "--out", out + "/axis.png"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(loom::read_png(out + "/axis.png").shape(), loom::Shape({1, 4 * 30 + 2, 7 * 30 + 2}));
  r = run_loom({"sample", run, "--interpolate", "--between", "0,1", "--data", kTestImages,
                "--steps", "9", "--out", out + "/line.npy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("encoder.mean"), std::string::npos) << r.out;
  loom::Tensor t = loom::read_npy(out + "/line.npy");
  EXPECT_EQ(t.shape(), loom::Shape({9, 28, 28}));
  // The ends differ (two different garments), the middle lies between them on average.
  double d = 0;
  for (int64_t i = 0; i < 784; ++i) d += std::fabs(t[i] - t[8 * 784 + i]);
  EXPECT_GT(d, 1.0);
  r = run_loom({"sample", run, "--interpolate", "--between", "0,1", "--data", kTestImages, "--out",
                out + "/line.png"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(loom::read_png(out + "/line.png").shape(), loom::Shape({1, 32, 10 * 30 + 2}));
}

TEST(SampleCli, BadInputsGiveClearErrors) {
  const std::string& run = tiny_run();
  std::string out = temp_dir("sample-bad");
  auto fails = [&](const std::vector<std::string>& args, const std::string& message) {
    CliResult r = run_loom(args);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.err.find("error: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos)
        << "expected '" << message << "' in: " << r.err;
  };
  fails({"sample", run, "--n", "4", "--out", out + "/x.png", "--model", "decodr"},
        "the pipeline has no model 'decodr' (did you mean 'decoder'?)");
  fs::create_directories(out + "/noweights");
  fs::copy_file(run + "/pipeline.yaml", out + "/noweights/pipeline.yaml");
  fails({"sample", out + "/noweights", "--n", "4", "--out", out + "/x.png"}, "no trained weights");
  fails({"sample", out + "/nothing", "--n", "4", "--out", out + "/x.png"}, "no such run folder");
  fails({"sample", run, "--interpolate", "--between", "0,1", "--out", out + "/x.png"},
        "--between I,J needs --data PATH");
  fails({"sample", run, "--interpolate", "--out", out + "/x.png"}, "--interpolate needs --axis K");
  fails({"sample", run, "--axis", "10", "--out", out + "/x.png"},
        "--axis: model 'decoder' takes codings of shape (10,)");
  fails({"sample", run, "--between", "0,99999", "--data", kTestImages, "--out", out + "/x.png"},
        "no sample 99999");
  fails({"sample", run, "--out", out + "/x.png"}, "--n N");
  fails({"sample", run, "--n", "4", "--out", out + "/x.png", "--sampler", "gausian"}, "gaussian");
  fails({"sample", run, "--n", "4", "--out", out + "/x.png", "--model", "encoder"},
        "a PNG grid needs samples");
  fails({"sample", run, "--n", "4", "--out", out + "/x.bin"}, "unknown dataset format");
  EXPECT_FALSE(fs::exists(out + "/x.png"));
}

TEST(SampleRecipe, PublishesSamplesForLaterStages) {
  // Train, generate 300 garments as dataset `generated`, encode them in a later stage.
  std::string dir = temp_dir("sample-publish"), yaml = read_text(source_path("pipelines/vae.yaml"));
  yaml = yaml.substr(0, yaml.find("stages:")) + R"(stages:
  train: {recipe: autoencoder, model: vae, data: fashion, loss: mse, batch_size: 128, epochs: 1}
  generate:
    recipe: sample
    after: train
    model: decoder
    sampler: {type: gaussian, truncation: 2}
    n: 300
    range: [0, 1]
    publish: generated
    write: generated.npy
  encode: {recipe: predict, model: encoder, output: mean, data: generated, write: gen_codings.npy, scatter: gen.png}
)";
  std::ofstream(dir + "/p.yaml") << yaml;
  CliResult r = run_loom({"run", dir + "/p.yaml", "--out", dir + "/run", "--subset", "1000"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(loom::read_npy(dir + "/run/generated.npy").shape(), loom::Shape({300, 28, 28}));
  EXPECT_EQ(loom::read_npy(dir + "/run/gen_codings.npy").shape(), loom::Shape({300, 10}));
  EXPECT_TRUE(fs::exists(dir + "/run/gen.png"));
  // A stage that neither writes nor publishes is an error naming the stage.
  std::ofstream(dir + "/q.yaml")
      << yaml.substr(0, yaml.find("  generate:")) +
             "  generate: {recipe: sample, after: train, model: decoder}\n";
  r = run_loom({"run", dir + "/q.yaml", "--out", dir + "/run2", "--subset", "500"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("stages.generate"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("neither writes"), std::string::npos) << r.err;
}

TEST(SampleCli, PredictScatter) {
  const std::string& run = tiny_run();
  std::string out = temp_dir("predict-scatter");
  CliResult r = run_loom({"predict", run, "--model", "encoder", "--output", "mean", "--input",
                          kTestImages, "--out", out + "/c.npy", "--scatter", out + "/c.png"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("coloured by class"), std::string::npos) << r.out;
  auto [w, h] = loom::scatter_png_size();
  EXPECT_EQ(loom::read_png(out + "/c.png").shape(), loom::Shape({3, h, w}));
}

}  // namespace
