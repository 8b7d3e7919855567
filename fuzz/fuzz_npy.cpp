// NPY reader: the first byte chooses what the rest is.
//   even: a samples file, read as a dataset (x.npy, no labels beside);
//   odd:  a labels file (x.labels.npy) beside a fixed valid x.npy of 3 samples.
#include "harness.hpp"
#include "loom/dataset_io.hpp"
#include "loom/io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  using namespace loom_fuzz;
  static const std::string samples = scratch("x.npy");
  static const std::string labels = scratch("x.labels.npy");
  if (data[0] % 2 == 0) {
    std::remove(labels.c_str());
    put(samples, data + 1, size - 1);
    refuse_only_with_errors([&] { loom::read_npy(samples); });
    refuse_only_with_errors([&] { loom::read_dataset(samples); });
  } else {
    static const bool written = [&] {
      loom::Tensor t({3, 2, 2});
      for (int64_t i = 0; i < t.size(); ++i) t.data()[i] = float(i);
      loom::write_npy(samples, t);
      return true;
    }();
    (void)written;
    put(labels, data + 1, size - 1);
    refuse_only_with_errors([&] { loom::read_dataset(samples); });
  }
  return 0;
}
