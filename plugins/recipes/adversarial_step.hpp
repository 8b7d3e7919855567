// One step of adversarial training, apart from the loop around it (so that tests drive the two
// phases directly): the discriminator phase and the generator phase of the chapter's loop, and
// the experience-replay buffer that the discriminator's fake batch may draw from.
#pragma once
#include <algorithm>
#include <string>
#include <vector>

#include "gan_losses.hpp"
#include "loom/model.hpp"
#include "loom/rng.hpp"
#include "loom/sampler.hpp"
#include "loom/training.hpp"

namespace loom::recipes {

// Past generated images, `size` rows of `per` values. mix() replaces each row of a fake batch,
// with probability `ratio`, by a row stored before this batch, then stores the fresh rows:
// appended until the buffer is full, afterwards each overwriting a random row with probability
// 1/2. All choices come from
// Rng(seed, "replay", step, k), so a resumed run (with the buffer restored from its checkpoint)
// makes the same ones.
class ReplayBuffer {
 public:
  ReplayBuffer(int64_t size, int64_t per, double ratio) : rows_({size, per}), ratio_(ratio) {}
  int64_t size() const { return rows_.dim(0); }
  int64_t filled() const { return filled_; }
  const float* row(int64_t i) const { return rows_.data() + i * per(); }
  // The state a checkpoint must hold.
  Tensor& rows() { return rows_; }
  int64_t* filled_counter() { return &filled_; }

  // `batch` holds n fresh fakes (n x per) and is mixed in place; returns how many rows came from
  // the buffer.
  int64_t mix(float* batch, int64_t n, uint64_t seed, uint64_t step, uint64_t k) {
    if (size() == 0) return 0;
    Rng rng(seed, "replay", step, k);
    std::vector<float> fresh(batch, batch + n * per());
    // Replays come from the buffer as it was before this batch, never from the batch itself.
    int64_t before = filled_, used = 0;
    for (int64_t i = 0; i < n; ++i) {
      bool use = before > 0 && rng.uniform() < ratio_;
      int64_t slot = int64_t(rng.below(uint64_t(before ? before : 1)));
      if (use) {
        std::copy(row(slot), row(slot) + per(), batch + i * per());
        ++used;
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      const float* f = fresh.data() + i * per();
      int64_t slot = int64_t(rng.below(uint64_t(size())));
      if (filled_ < size())
        std::copy(f, f + per(), rows_.data() + (filled_++) * per());
      else if (rng.uniform() < 0.5f)
        std::copy(f, f + per(), rows_.data() + slot * per());
    }
    return used;
  }

 private:
  int64_t per() const { return rows_.dim(1); }
  Tensor rows_;
  int64_t filled_ = 0;
  double ratio_;
};

struct AdversarialSettings {
  GanLoss loss = GanLoss::Bce;
  double label_smoothing = 0;
  int64_t d_steps = 1;
  bool conditional = false;
  std::vector<std::string> stage_freeze;  // the stage's `freeze:` list
};

// What a discriminator phase measured.
struct DiscriminatorStats {
  double loss = 0;      // mean of the real and fake halves
  double real_acc = 0;  // share of real images scored real (logit > 0)
  double fake_acc = 0;  // share of fakes scored fake (logit < 0)
  int64_t replayed = 0;
};

// The two phases over models G (codings[, label] -> image) and D (image[, label] -> logit),
// stepping the trainer's groups "generator" and "discriminator".
class AdversarialStep {
 public:
  AdversarialStep(Model& G, Model& D, Trainer& trainer, const Sampler& latent,
                  AdversarialSettings s, ReplayBuffer* replay, uint64_t seed)
      : G_(G),
        D_(D),
        trainer_(trainer),
        latent_(latent),
        s_(std::move(s)),
        replay_(replay),
        seed_(seed),
        per_(numel(D.input_shape())) {}

  // Codings for `n` images from the latent sampler, in the stream `stream`, as rows first ..
  // first + n - 1 of the step (a rank's part of the batch in data-parallel training).
  Tensor codings(int64_t n, uint64_t stream, int64_t first) const {
    Shape s = G_.input_shape(0);
    s.insert(s.begin(), n);
    Tensor z(s);
    latent_.sample(z, stream, first);
    return z;
  }

  // The base of the step's random streams.
  uint64_t stream_base(int64_t step) const {
    return mix64(seed_ ^ mix64(uint64_t(step) * 0x9e3779b97f4a7c15ULL));
  }

  // Phase 1, d_steps times: fakes = G(z) with G not trained (no gradients, running statistics
  // kept); D on [fakes; reals] (fakes partly from the replay buffer); D steps.
  DiscriminatorStats discriminator_phase(const Tensor& real, const Tensor* labels,
                                         const RunContext& rc) {
    int64_t B = real.dim(0);
    DiscriminatorStats st;
    uint64_t base = stream_base(rc.step);
    for (int64_t k = 0; k < s_.d_steps; ++k) {
      Tensor z = codings(B, mix64(base + 2 * uint64_t(k) + 1), rc.first);
      RunContext g_rc = rc;
      g_rc.salt = 1;
      g_rc.frozen = true;
      std::vector<const Tensor*> g_in{&z};
      if (s_.conditional) g_in.push_back(labels);
      G_.forward(g_rc, g_in);
      Tensor both({2 * B, per_});
      std::copy(G_.output().data(), G_.output().data() + B * per_, both.data());
      if (replay_)
        st.replayed += replay_->mix(both.data(), B, seed_, uint64_t(rc.step), uint64_t(k));
      std::copy(real.data(), real.data() + B * per_, both.data() + B * per_);
      Tensor both_in = rows_of(both, D_.input_shape());
      Tensor both_labels;
      std::vector<const Tensor*> d_in{&both_in};
      if (s_.conditional) {
        both_labels = Tensor({2 * B, 1});
        std::copy(labels->data(), labels->data() + B, both_labels.data());
        std::copy(labels->data(), labels->data() + B, both_labels.data() + B);
        d_in.push_back(&both_labels);
      }
      RunContext d_rc = rc;
      d_rc.salt = 2 + uint64_t(k);
      // Fakes, then reals: on N ranks, rows of the step's N·B fakes and of its N·B reals.
      d_rc.part = B;
      d_rc.stride = B * (rc.ranks ? rc.ranks->world() : 1);
      trainer_.zero_grad("discriminator");
      D_.forward(d_rc, d_in);
      const float* logits = D_.output().data();
      Tensor& seed = D_.seed_grad(D_.output_node());
      double lf = gan_loss(s_.loss, logits, B, false, false, s_.label_smoothing, seed.data(), 0.5);
      double lr =
          gan_loss(s_.loss, logits + B, B, true, false, s_.label_smoothing, seed.data() + B, 0.5);
      D_.backward(d_rc);
      trainer_.step("discriminator");
      double w = 1.0 / double(s_.d_steps);
      st.loss += 0.5 * (lf + lr) * w;
      for (int64_t i = 0; i < B; ++i) {
        st.fake_acc += logits[i] < 0 ? w / double(B) : 0;
        st.real_acc += logits[B + i] > 0 ? w / double(B) : 0;
      }
    }
    return st;
  }

  // Phase 2: the generator's loss on D(G(z)) with the whole discriminator frozen (its weights,
  // optimizer slots and running statistics stay as they are), back-propagated through D into G;
  // G steps. Returns the generator's loss. `batch` images, `labels` (batch x 1) when conditional.
  double generator_phase(int64_t batch, const Tensor* labels, const RunContext& rc) {
    Tensor z = codings(batch, mix64(stream_base(rc.step)), rc.first);
    RunContext g_rc = rc;
    g_rc.salt = 100;
    std::vector<const Tensor*> g_in{&z};
    if (s_.conditional) g_in.push_back(labels);
    trainer_.zero_grad("generator");
    G_.forward(g_rc, g_in);
    Tensor fake = rows_of(G_.output(), D_.input_shape());
    std::vector<const Tensor*> d_in{&fake};
    if (s_.conditional) d_in.push_back(labels);
    std::vector<std::string> all_of_d = s_.stage_freeze;
    all_of_d.push_back(D_.name());
    D_.set_frozen(all_of_d);
    struct Unfreeze {
      Model& d;
      const std::vector<std::string>& keep;
      ~Unfreeze() { d.set_frozen(keep); }
    } unfreeze{D_, s_.stage_freeze};
    RunContext d_rc = rc;
    d_rc.salt = 101;
    D_.forward(d_rc, d_in);
    double loss = gan_loss(s_.loss, D_.output().data(), batch, true, true, 0.0,
                           D_.seed_grad(D_.output_node()).data(), 1.0);
    D_.backward(d_rc, /*input_grads=*/true);
    const Tensor& dx = D_.input_grad(0);
    Tensor& gseed = G_.seed_grad(G_.output_node());
    std::copy(dx.data(), dx.data() + dx.size(), gseed.data());
    G_.backward(g_rc);
    trainer_.step("generator");
    return loss;
  }

  static Tensor rows_of(const Tensor& t, const Shape& sample) {
    Shape s = sample;
    s.insert(s.begin(), t.dim(0));
    return t.reshaped(s);
  }

 private:
  Model& G_;
  Model& D_;
  Trainer& trainer_;
  const Sampler& latent_;
  AdversarialSettings s_;
  ReplayBuffer* replay_;
  uint64_t seed_;
  int64_t per_;
};

}  // namespace loom::recipes
