// Internal: `loom eval`, the sample-quality measure of generated Fashion-MNIST-like images.
//
// Generated and real images go through a classifier that Loom trains itself
// (pipelines/fid_classifier.yaml; weights in models/fid_classifier/, installed to
// share/loom/models/). Its penultimate layer gives the features in which they are compared:
//   - the Fréchet distance between Gaussians fitted to both feature sets (the analogue of FID on
//     this data; not comparable with the Inception FID of the literature, nor across sample
//     counts: the estimate is biased upward at small N, so the count is always reported);
//   - KID (cubic polynomial kernel, unbiased, mean and std over random subsets);
//   - precision and recall (k-NN balls, Kynkäänniemi et al. 2019);
// and its class scores give the histogram of predicted classes (entropy, classes present) and,
// for conditional samples with labels, the share classified as the class asked for.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "loom/export.hpp"

namespace loom::eval {

struct EvalOptions {
  std::string samples;     // .npy (N,28,28) / (N,1,28,28), float or uint8; IDX; PNG folder
  std::string real;        // default: the Fashion-MNIST test images (dataset-fashion-mnist)
  std::string classifier;  // run folder or weights file; default: the installed fid_classifier
  std::string classes;     // text file, one class name per line; default: the classifier's
  std::string labels;      // asked-for classes of the samples; default SAMPLES.labels.npy if any
  std::string range;       // "LOW,HIGH" value range of the samples; default: detected
  int64_t n = 10000;       // use the first n samples and the first n real images
  int kid_subsets = 100;
  int64_t kid_subset_size = 1000;
  int k = 3;  // precision/recall neighbourhood
  uint64_t seed = 0;
  int64_t batch_size = 500;
};

struct ClassShare {
  std::string name;
  int64_t count = 0;
  double share = 0, real_share = 0;
};

struct EvalReport {
  std::string samples, real, classifier, feature_layer;
  int64_t n_samples = 0, n_real = 0, n_available = 0;  // n_available: samples in the file
  int feature_dim = 0;
  float range_lo = 0, range_hi = 1;  // value range the samples were read in
  std::string range_source;          // "uint8", "detected", "--range", "file"
  double fd = 0;
  double kid_mean = 0, kid_std = 0;
  int kid_subsets = 0;
  int64_t kid_subset_size = 0;
  double precision = 0, recall = 0;
  int k = 0;
  std::vector<ClassShare> classes;
  double class_entropy_bits = 0, max_entropy_bits = 0;
  int classes_present = 0;  // classes with at least 2% of the samples
  bool conditional = false;
  std::string labels;
  double class_match = 0;  // share of samples classified as their label
  bool real_labelled = false;
  double real_accuracy = 0;  // the classifier's accuracy on the real set, when it has labels
  double time_s = 0;         // in all; and per part:
  double features_s = 0, fd_s = 0, kid_s = 0, pr_s = 0;
};

// Runs every measure. Throws loom::Error naming the file and the reason on any input problem.
LOOM_API EvalReport run(const EvalOptions& options);

// A human-readable table / one JSON object (single line, no trailing newline).
LOOM_API std::string format_text(const EvalReport& report);
LOOM_API std::string format_json(const EvalReport& report);

// Where the shipped classifier is looked for: share/loom/models/fid_classifier beside the
// running binary (../share from its folder), in an install tree and in the build tree alike.
LOOM_API std::string default_classifier_dir();

// Images of a sample file mapped to [0, 1], shape checked (28 x 28, one channel).
struct Images {
  int64_t count = 0;  // images read (at most the limit given)
  int64_t available = 0;
  std::vector<float> pixels;  // count x 784
  std::vector<int32_t> labels;
  float lo = 0, hi = 1;
  std::string range_source;
};
// Reads at most `limit` images from `path`; `range` is "" (detect) or "LOW,HIGH".
LOOM_API Images read_images(const std::string& path, int64_t limit, const std::string& range);

}  // namespace loom::eval
