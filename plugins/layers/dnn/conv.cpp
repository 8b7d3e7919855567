#include "dnn/conv.hpp"

#include <algorithm>

namespace loom::dnn {

template <bool Deconv>
void Convolution<Deconv>::init(const ConvGeom& g, bool bias, const dnnl::post_ops& ops,
                               Scratchpad& sp, bool bf16) {
  with_compute_type(bf16, [&](dt c) { make(g, bias, ops, sp, c); });
}

template <bool Deconv>
void Convolution<Deconv>::make(const ConvGeom& g, bool bias, const dnnl::post_ops& ops,
                               Scratchpad& sp, dt c) {
  sp_ = &sp;
  auto& eng = engine();
  const auto alg =
      Deconv ? dnnl::algorithm::deconvolution_direct : dnnl::algorithm::convolution_direct;
  // Inputs of the products in the compute type c; what the primitives write (dst, diff_src,
  // diff_weights) in fp32.
  md src_plain = map4(g.n, g.ic, g.ih, g.iw, g.in_blocked),
     dst_plain = map4(g.n, g.oc, g.oh, g.ow, g.out_blocked);
  md src_any({g.n, g.ic, g.ih, g.iw}, c, tag::any), dst_any = any4(g.n, g.oc, g.oh, g.ow);
  md ddst_any({g.n, g.oc, g.oh, g.ow}, c, tag::any), dsrc_any = any4(g.n, g.ic, g.ih, g.iw);
  dims wd = g.groups > 1 ? dims{g.groups, g.oc / g.groups, g.ic / g.groups, g.kh, g.kw}
                         : dims{g.oc, g.ic, g.kh, g.kw};
  md wei_plain(wd, dt::f32, g.groups > 1 ? tag::goihw : tag::oihw);
  md wei_any(wd, c, tag::any), dwei_any(wd, dt::f32, tag::any);
  md bias_md = bias ? md({g.oc}, dt::f32, tag::x) : md();
  dims strides{g.sh, g.sw}, dil{g.dh, g.dw}, pl{g.pt, g.pl}, pr{g.pb, g.pr};

  typename Fwd::primitive_desc fpd(
      typename Fwd::desc(dnnl::prop_kind::forward_training, alg, src_any, wei_any, bias_md, dst_any,
                         strides, dil, pl, pr),
      Scratchpad::attr(ops), eng);
  typename BwdD::primitive_desc dpd(
      typename BwdD::desc(alg, dsrc_any, wei_any, ddst_any, strides, dil, pl, pr),
      Scratchpad::attr(), eng, fpd);
  typename BwdW::primitive_desc wpd(
      typename BwdW::desc(alg, src_any, dwei_any, bias_md, ddst_any, strides, dil, pl, pr),
      Scratchpad::attr(), eng, fpd);
  sp.reserve(fpd);
  sp.reserve(dpd);
  sp.reserve(wpd);
  fwd_ = Fwd(fpd);
  bwd_data_ = BwdD(dpd);
  bwd_wei_ = BwdW(wpd);
  bias_ = bias;

  f_src_.init(src_plain, fpd.src_desc(), sp);
  f_wei_.init(wei_plain, fpd.weights_desc(), sp);
  f_dst_.init(dst_plain, fpd.dst_desc(), sp);
  if (bias) bias_mem_ = unbound(bias_md);
  d_ddst_.init(dst_plain, dpd.diff_dst_desc(), sp);
  d_wei_.init(wei_plain, dpd.weights_desc(), sp);
  d_dsrc_.init(src_plain, dpd.diff_src_desc(), sp);
  w_src_.init(src_plain, wpd.src_desc(), sp);
  w_ddst_.init(dst_plain, wpd.diff_dst_desc(), sp);
  w_dwei_.init(wei_plain, wpd.diff_weights_desc(), sp, true);
  if (bias) w_dbias_.init(bias_md, wpd.diff_bias_desc(), sp, true);
}

template <bool Deconv>
void Convolution<Deconv>::forward(const float* x, const float* w, const float* b, float* y) {
  Args args{
      {DNNL_ARG_SRC, f_src_(x)}, {DNNL_ARG_WEIGHTS, f_wei_(w)}, {DNNL_ARG_DST, f_dst_.mem(y)}};
  if (bias_) {
    bias_mem_.set_data_handle(const_cast<float*>(b));
    args[DNNL_ARG_BIAS] = bias_mem_;
  }
  sp_->run(fwd_, std::move(args));
  f_dst_.finish();
}

template <bool Deconv>
void Convolution<Deconv>::backward(const float* x, const float* dz, const float* w, float* dx,
                                   float* dw, float* db) {
  if (dx) {
    sp_->run(bwd_data_, {{DNNL_ARG_DIFF_DST, d_ddst_(dz)},
                         {DNNL_ARG_WEIGHTS, d_wei_(w)},
                         {DNNL_ARG_DIFF_SRC, d_dsrc_.mem(dx)}});
    d_dsrc_.finish();
  }
  if (dw || (bias_ && db)) {
    // The forward's and the backward-data pass's converted copies of x and dz serve again when
    // the weights pass wants the same layout (it mostly does): one reorder each, not two.
    const bool same_x = f_src_.last_user() == x && f_src_.want() == w_src_.want();
    const bool same_dz = dx && d_ddst_.last_user() == dz && d_ddst_.want() == w_ddst_.want();
    Args args{{DNNL_ARG_SRC, same_x ? f_src_.last() : w_src_(x)},
              {DNNL_ARG_DIFF_DST, same_dz ? d_ddst_.last() : w_ddst_(dz)},
              {DNNL_ARG_DIFF_WEIGHTS, w_dwei_.mem(dw)}};
    if (bias_) args[DNNL_ARG_DIFF_BIAS] = w_dbias_.mem(db);
    sp_->run(bwd_wei_, std::move(args));
    if (dw) w_dwei_.finish();
    if (bias_ && db) w_dbias_.finish();
  }
}

template class Convolution<false>;
template class Convolution<true>;

namespace {

// col2im of DeconvForwardGemm, one image per thread: input pixel (iy, ix) adds its OC·KH·KW row
// of cols to the output cells its kernel covers. Each image's output (OC·OH·OW values) stays in
// cache, and its sums run in the same order whatever the thread count. Channel oc of output pixel
// p is at (oc / B)·OH·OW·B + p·B + oc % B: B = 1 plain, kChannelBlock blocked.
template <int64_t B>
void col2im(const ConvGeom& g, const float* cols, const float* b, float* y) {
  const int64_t ohw = g.oh * g.ow, rh = g.dh + 1, rw = g.dw + 1, ob = g.oc / B;
  const int64_t k = g.kh * g.kw, m = g.oc * k, hw = g.ih * g.iw;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.n; ++n) {
    float* yn = y + n * g.oc * ohw;
    for (int64_t o = 0; o < ob; ++o)
      for (int64_t p = 0; p < ohw; ++p)
        for (int64_t j = 0; j < B; ++j) yn[(o * ohw + p) * B + j] = b ? b[o * B + j] : 0.f;
    for (int64_t iy = 0; iy < g.ih; ++iy)
      for (int64_t ix = 0; ix < g.iw; ++ix) {
        const float* row = cols + (n * hw + iy * g.iw + ix) * m;
        for (int64_t ky = 0; ky < g.kh; ++ky) {
          int64_t oy = iy * g.sh - g.pt + ky * rh;
          if (oy < 0 || oy >= g.oh) continue;
          for (int64_t kx = 0; kx < g.kw; ++kx) {
            int64_t ox = ix * g.sw - g.pl + kx * rw;
            if (ox < 0 || ox >= g.ow) continue;
            const float* r = row + ky * g.kw + kx;
            float* out = yn + (oy * g.ow + ox) * B;
            for (int64_t o = 0; o < ob; ++o)
              for (int64_t j = 0; j < B; ++j) out[o * ohw * B + j] += r[(o * B + j) * k];
          }
        }
      }
  }
}

}  // namespace

void DeconvForwardGemm::init(const ConvGeom& g, const Activation& act, Scratchpad& sp, bool bf16) {
  sp_ = &sp;
  g_ = g;
  k_ = g.kh * g.kw;
  m_ = g.oc * k_;
  hw_ = g.ih * g.iw;
  auto& eng = engine();
  // One product over the whole batch: cols (N·IH·IW × OC·KH·KW) = x in NHWC (N·IH·IW × IC) ·
  // Wr (IC × OC·KH·KW). (A batched product of N small (OC·KH·KW × IC)·(IC × IH·IW) matrices, as
  // before, ran at a third of the rate.) bf16: the operands converted by the ports (x's
  // conversion to NHWC is the same reorder), the product summed and written in fp32.
  int64_t rows = g.n * hw_;
  md c_md({rows, m_}, dt::f32, tag::ab);
  dnnl::matmul::primitive_desc mpd;
  dt c = with_compute_type(bf16, [&](dt t) {
    mpd = dnnl::matmul::primitive_desc(
        dnnl::matmul::desc(md({rows, g.ic}, t, tag::ab), md({g.ic, m_}, t, tag::ab), c_md),
        Scratchpad::attr(), eng);
  });
  x_in_.init(map4(g.n, g.ic, g.ih, g.iw, g.in_blocked), md({g.n, g.ic, g.ih, g.iw}, c, tag::nhwc),
             sp);
  w_in_.init(md({g.ic, m_}, dt::f32, tag::ab), md({g.ic, m_}, c, tag::ab), sp);
  xm_ = unbound(md({rows, g.ic}, c, tag::ab));
  sp.reserve(mpd);
  mm_ = dnnl::matmul(mpd);
  cm_ = unbound(c_md);
  wr_.resize({g.ic * m_});
  cols_.resize({rows * m_});
  if (act.act != Act::Linear) {
    // The activation as a standalone in-place eltwise (the post-op of the same algorithm).
    md y_md = flat(g.n * g.oc * g.oh * g.ow);
    dnnl::post_ops ops = post_ops(act);
    dnnl::algorithm alg;
    float scale, alpha, beta;
    ops.get_params_eltwise(0, scale, alg, alpha, beta);
    dnnl::eltwise_forward::primitive_desc apd(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, alg, y_md, alpha, beta),
        Scratchpad::attr(), eng);
    sp.reserve(apd);
    act_ = dnnl::eltwise_forward(apd);
    ym_ = unbound(y_md);
  }
}

void DeconvForwardGemm::run(const float* x, const float* w, const float* b, float* y) {
  const ConvGeom& g = g_;
  // Wr[ic][(oc, ky, kx)] = w[oc][ic][ky][kx]
  for (int64_t oc = 0; oc < g.oc; ++oc)
    for (int64_t ic = 0; ic < g.ic; ++ic)
      for (int64_t k = 0; k < k_; ++k) wr_[ic * m_ + oc * k_ + k] = w[(oc * g.ic + ic) * k_ + k];
  xm_.set_data_handle(x_in_(x).get_data_handle());
  cm_.set_data_handle(cols_.data());
  sp_->run(mm_, {{DNNL_ARG_SRC, xm_}, {DNNL_ARG_WEIGHTS, w_in_(wr_.data())}, {DNNL_ARG_DST, cm_}});
  if (g.out_blocked)
    col2im<kChannelBlock>(g, cols_.data(), b, y);
  else
    col2im<1>(g, cols_.data(), b, y);
  if (act_) {
    ym_.set_data_handle(y);
    sp_->run(act_, {{DNNL_ARG_SRC, ym_}, {DNNL_ARG_DST, ym_}});
  }
}

}  // namespace loom::dnn
