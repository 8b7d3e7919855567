// upsampling2d (oneDNN resampling, nearest or bilinear; nearest's backward pass is a loop here),
// zero_padding2d and cropping2d over (C, H, W) samples in plain NCHW. No parameters.
//
// Bilinear upsampling uses half-pixel centres (as TensorFlow 2's resize): output pixel i reads
// the input at (i + 0.5) / size - 0.5, clamped to the edges. Nearest reads input i / size.
#include <cstring>
#include <map>
#include <memory>
#include <tuple>

#include "common.hpp"
#include "loom/layer.hpp"

namespace loom::conv {
namespace {

class UpSampling2DLayer : public Layer {
 public:
  ValueRange range(const std::vector<ValueRange>& in) const override { return in[0]; }
  explicit UpSampling2DLayer(const Params& p)
      : alg_(p.s("interpolation") == "bilinear" ? dnnl::algorithm::resampling_linear
                                                : dnnl::algorithm::resampling_nearest) {
    std::tie(fh_, fw_) = pair_param(p, "size");
  }

  LayoutRole layout_role() const override { return LayoutRole::Follows; }

  Shape infer(const std::vector<Shape>& in) override {
    expect_chw(in);
    c_ = in[0][0], ih_ = in[0][1], iw_ = in[0][2];
    return {c_, ih_ * fh_, iw_ * fw_};
  }

  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    Prims& k = prims(in[0]->dim(0), in[0]->blocked());
    k.src.set_data_handle(const_cast<float*>(in[0]->data()));
    k.dst.set_data_handle(out.data());
    scratch_.run(k.fwd, {{DNNL_ARG_SRC, k.src}, {DNNL_ARG_DST, k.dst}});
  }

  void backward(const RunContext&, const std::vector<const Tensor*>& in, const Tensor&,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    if (!din[0]) return;
    if (alg_ == dnnl::algorithm::resampling_nearest) {
      if (in[0]->blocked())
        nearest_backward<kChannelBlock>(in[0]->dim(0) * c_ / kChannelBlock, dout.data(),
                                        din[0]->data());
      else
        nearest_backward<1>(in[0]->dim(0) * c_, dout.data(), din[0]->data());
      return;
    }
    Prims& k = prims(in[0]->dim(0), in[0]->blocked());
    k.dst.set_data_handle(const_cast<float*>(dout.data()));
    k.src.set_data_handle(din[0]->data());
    scratch_.run(k.bwd, {{DNNL_ARG_DIFF_DST, k.dst}, {DNNL_ARG_DIFF_SRC, k.src}});
  }

 private:
  struct Prims {
    dnnl::resampling_forward fwd;
    dnnl::resampling_backward bwd;
    dnnl::memory src, dst;
  };
  Prims& prims(int64_t n, bool blocked) {
    auto& p = cache_[2 * n + int(blocked)];
    if (p) return *p;
    p = std::make_unique<Prims>();
    auto& eng = dnn::engine();
    md src = dnn::map4(n, c_, ih_, iw_, blocked),
       dst = dnn::map4(n, c_, ih_ * fh_, iw_ * fw_, blocked);
    dnnl::resampling_forward::primitive_desc fpd(
        dnnl::resampling_forward::desc(dnnl::prop_kind::forward_training, alg_, src, dst),
        dnn::Scratchpad::attr(), eng);
    dnnl::resampling_backward::primitive_desc bpd(dnnl::resampling_backward::desc(alg_, src, dst),
                                                  dnn::Scratchpad::attr(), eng, fpd);
    scratch_.reserve(fpd);
    scratch_.reserve(bpd);
    p->fwd = dnnl::resampling_forward(fpd);
    p->bwd = dnnl::resampling_backward(bpd);
    p->src = dnnl::memory(src, eng, nullptr);
    p->dst = dnnl::memory(dst, eng, nullptr);
    return *p;
  }

  // Nearest upsampling's gradient: each input pixel receives the sum of the size_h x size_w
  // output pixels that copied it. oneDNN 2.6 has only a generic implementation of this backward
  // pass (measured: 21 ms for a 32 x 96 x 32 x 32 gradient, 12% of a DDPM UNet training step);
  // this loop over the planes does it in a few hundredths of that. A plane holds B values per
  // pixel: 1 plain, kChannelBlock for a block of a channel-blocked map.
  template <int64_t B>
  void nearest_backward(int64_t planes, const float* dy, float* dx) const {
    int64_t oh = ih_ * fh_, ow = iw_ * fw_;
#pragma omp parallel for schedule(static) if (planes * oh * ow * B >= (1 << 16))
    for (int64_t p = 0; p < planes; ++p) {
      float* x = dx + p * ih_ * iw_ * B;
      const float* y = dy + p * oh * ow * B;
      for (int64_t i = 0; i < ih_; ++i) {
        float* xr = x + i * iw_ * B;
        for (int64_t j = 0; j < iw_ * B; ++j) xr[j] = 0.f;
        for (int64_t a = 0; a < fh_; ++a) {
          const float* yr = y + (i * fh_ + a) * ow * B;
          for (int64_t j = 0; j < iw_; ++j)
            for (int64_t b = 0; b < fw_; ++b)
              for (int64_t c = 0; c < B; ++c) xr[j * B + c] += yr[(j * fw_ + b) * B + c];
        }
      }
    }
  }

  dnnl::algorithm alg_;
  int64_t fh_ = 2, fw_ = 2, c_ = 0, ih_ = 0, iw_ = 0;
  dnn::Scratchpad scratch_;
  std::map<int64_t, std::unique_ptr<Prims>> cache_;  // by 2·batch + blocked
};

// Copies between the planes of a big (bh, bw) and a small (sh, sw) tensor, the small one sitting
// at (top, left) inside the big one. planes = batch * channels.
void copy_window(int64_t planes, const float* from, float* to, bool small_to_big, int64_t bh,
                 int64_t bw, int64_t sh, int64_t sw, int64_t top, int64_t left) {
  for (int64_t p = 0; p < planes; ++p) {
    for (int64_t i = 0; i < sh; ++i) {
      int64_t big = (p * bh + top + i) * bw + left, small = (p * sh + i) * sw;
      if (small_to_big)
        std::memcpy(to + big, from + small, size_t(sw) * sizeof(float));
      else
        std::memcpy(to + small, from + big, size_t(sw) * sizeof(float));
    }
  }
}

// zero_padding2d (pad = true) and cropping2d (pad = false).
class PadCropLayer : public Layer {
 public:
  PadCropLayer(const Params& p, bool pad, const std::string& key)
      : pad_(pad), sides_(sides_param(p, key)) {}

  Shape infer(const std::vector<Shape>& in) override {
    expect_chw(in);
    c_ = in[0][0], ih_ = in[0][1], iw_ = in[0][2];
    int64_t dh = sides_[0] + sides_[1], dw = sides_[2] + sides_[3];
    oh_ = pad_ ? ih_ + dh : ih_ - dh;
    ow_ = pad_ ? iw_ + dw : iw_ - dw;
    if (oh_ <= 0 || ow_ <= 0)
      throw Error("cropping " + std::to_string(dh) + "x" + std::to_string(dw) +
                  " leaves nothing of the input " + to_string(in[0]));
    return {c_, oh_, ow_};
  }

  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    int64_t planes = in[0]->dim(0) * c_;
    if (pad_) {
      out.zero();
      copy_window(planes, in[0]->data(), out.data(), true, oh_, ow_, ih_, iw_, sides_[0],
                  sides_[2]);
    } else {
      copy_window(planes, in[0]->data(), out.data(), false, ih_, iw_, oh_, ow_, sides_[0],
                  sides_[2]);
    }
  }

  void backward(const RunContext&, const std::vector<const Tensor*>& in, const Tensor&,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    if (!din[0]) return;
    int64_t planes = in[0]->dim(0) * c_;
    if (pad_) {
      copy_window(planes, dout.data(), din[0]->data(), false, oh_, ow_, ih_, iw_, sides_[0],
                  sides_[2]);
    } else {
      din[0]->zero();
      copy_window(planes, dout.data(), din[0]->data(), true, ih_, iw_, oh_, ow_, sides_[0],
                  sides_[2]);
    }
  }

 private:
  bool pad_;
  std::vector<int64_t> sides_;  // top, bottom, left, right
  int64_t c_ = 0, ih_ = 0, iw_ = 0, oh_ = 0, ow_ = 0;
};

}  // namespace

void register_resize(Registry& r) {
  Spec u(
      "Repeats (nearest) or interpolates (bilinear) rows and columns: (C, H, W) -> "
      "(C, H * size_h, W * size_w).");
  u.add("size", Type::Ints).def("[2]").doc("[s] or [sh, sw]");
  u.add("interpolation", Type::String)
      .def("nearest")
      .choices({"nearest", "bilinear"})
      .doc("nearest or bilinear (half-pixel centres)");
  r.add<Layer>("upsampling2d", u,
               [](const Params& p) { return std::make_unique<UpSampling2DLayer>(p); });

  Spec z("Adds rows and columns of zeros around (C, H, W) inputs.");
  z.add("padding", Type::Ints).def("[1]").doc("[n], [h, w] or [top, bottom, left, right]");
  r.add<Layer>("zero_padding2d", z,
               [](const Params& p) { return std::make_unique<PadCropLayer>(p, true, "padding"); });

  Spec c("Removes rows and columns at the borders of (C, H, W) inputs.");
  c.add("cropping", Type::Ints).def("[0]").doc("[n], [h, w] or [top, bottom, left, right]");
  r.add<Layer>("cropping2d", c, [](const Params& p) {
    return std::make_unique<PadCropLayer>(p, false, "cropping");
  });
}

}  // namespace loom::conv
