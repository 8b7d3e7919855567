// Composition: sequence, one_of and some_of. Children are pipeline entries of their own
// ("transforms[1]"), created through the registry and validated there.
#include <numeric>
#include <sstream>

#include "common.hpp"
#include "loom/create.hpp"

namespace loom::augment {
namespace {

using Children = std::vector<std::unique_ptr<Augmenter>>;

Children read_children(const Params& p) {
  Children out;
  for (const Params& e : p.items("transforms")) {
    out.push_back(create_from<Augmenter>(global_registry(), e));
    if (out.back()->batch_level())
      e.fail(
          "a batch-level augmenter (mixup, cutmix) cannot be composed per sample; list it "
          "beside the per-sample ones");
  }
  if (out.empty()) p.fail("transforms", "needs at least one transform");
  return out;
}

class Sequence : public Gated {
 public:
  explicit Sequence(const Params& p) : Gated(p), children_(read_children(p)) {}
  void run(Image& im, Rng& rng) const override {
    for (auto& c : children_) c->apply(im, rng);
  }

 private:
  Children children_;
};

class OneOf : public Gated {
 public:
  explicit OneOf(const Params& p) : Gated(p), children_(read_children(p)) {
    std::vector<double> w(children_.size(), 1.0);
    if (p.given("weights")) {
      w = p.floats("weights");
      if (w.size() != children_.size())
        p.fail("weights", "needs one weight per transform (" + std::to_string(children_.size()) +
                              "), got " + std::to_string(w.size()));
    }
    double total = std::accumulate(w.begin(), w.end(), 0.0);
    if (!(total > 0)) p.fail("weights", "weights must not all be zero");
    double run = 0;
    for (double x : w) {
      run += x;
      cumulative_.push_back(float(run / total));
    }
    cumulative_.back() = 1.f;
  }
  void run(Image& im, Rng& rng) const override {
    const float u = rng.uniform();
    size_t i = 0;
    while (i + 1 < cumulative_.size() && u >= cumulative_[i]) ++i;
    children_[i]->apply(im, rng);
  }

 private:
  Children children_;
  std::vector<float> cumulative_;
};

// Applies k of the transforms, k drawn uniformly from [min, max], chosen without replacement.
class SomeOf : public Gated {
 public:
  explicit SomeOf(const Params& p)
      : Gated(p), children_(read_children(p)), random_order_(p.b("random_order")) {
    const int64_t n = int64_t(children_.size());
    lo_ = 0;
    hi_ = n;
    if (p.given("n")) {
      if (p.is_list("n")) {
        std::vector<int64_t> v = p.ints("n");
        if (v.size() != 2) p.fail("n", "expected an integer or a [min, max] list of two integers");
        lo_ = v[0];
        hi_ = v[1];
      } else {
        lo_ = hi_ = p.i("n");
      }
      if (lo_ < 0 || lo_ > hi_ || hi_ > n) {
        std::ostringstream o;
        o << "needs 0 <= min <= max <= " << n << " (the number of transforms), got [" << lo_ << ", "
          << hi_ << "]";
        p.fail("n", o.str());
      }
    }
  }
  void run(Image& im, Rng& rng) const override {
    const size_t n = children_.size();
    const size_t k = size_t(lo_) + size_t(rng.below(uint64_t(hi_ - lo_ + 1)));
    if (k == 0) return;
    // Partial Fisher–Yates over the indices; without random_order the chosen ones keep their
    // listed order.
    uint32_t idx[64];
    std::vector<uint32_t> big;
    uint32_t* ix = idx;
    if (n > 64) {
      big.resize(n);
      ix = big.data();
    }
    for (size_t i = 0; i < n; ++i) ix[i] = uint32_t(i);
    for (size_t i = 0; i < k; ++i) std::swap(ix[i], ix[i + size_t(rng.below(uint64_t(n - i)))]);
    if (!random_order_) std::sort(ix, ix + k);
    for (size_t i = 0; i < k; ++i) children_[ix[i]]->apply(im, rng);
  }

 private:
  Children children_;
  bool random_order_;
  int64_t lo_, hi_;
};

}  // namespace

void register_compose(Registry& r) {
  {
    Spec s("Applies the transforms in order.");
    add_probability(s, 1.0);
    s.add("transforms", Type::Any).required().doc("list of augmenter entries");
    r.add<Augmenter>("sequence", s, [](const Params& p) { return std::make_unique<Sequence>(p); });
  }
  {
    Spec s("Applies one of the transforms, chosen at random.");
    add_probability(s, 1.0);
    s.add("transforms", Type::Any).required().doc("list of augmenter entries");
    s.add("weights", Type::Floats).min(0).doc("relative choice weights (default: equal)");
    r.add<Augmenter>("one_of", s, [](const Params& p) { return std::make_unique<OneOf>(p); });
  }
  {
    Spec s("Applies a random subset of the transforms.");
    add_probability(s, 1.0);
    s.add("transforms", Type::Any).required().doc("list of augmenter entries");
    s.add("n", Type::Any)
        .doc("how many to apply: an integer or [min, max] (default: [0, number of transforms])");
    s.add("random_order", Type::Bool)
        .def("false")
        .doc("apply the chosen transforms in random order (default: as listed)");
    r.add<Augmenter>("some_of", s, [](const Params& p) { return std::make_unique<SomeOf>(p); });
  }
}

}  // namespace loom::augment
