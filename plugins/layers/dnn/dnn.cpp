#include "dnn/dnn.hpp"

#include <string>

#include "loom/error.hpp"

namespace loom::dnn {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

md plain(const Shape& s) {
  static const tag tags[] = {tag::a, tag::ab, tag::abc, tag::abcd, tag::abcde, tag::abcdef};
  if (s.empty() || s.size() > 6)
    throw Error("oneDNN: unsupported rank " + std::to_string(s.size()));
  return md(to_dims(s), dt::f32, tags[s.size() - 1]);
}

dnnl::primitive_attr Scratchpad::attr(const dnnl::post_ops& ops) {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  a.set_post_ops(ops);
  return a;
}

void Scratchpad::reserve(const dnnl::primitive_desc_base& pd) {
  size_t need = pd.scratchpad_desc().get_size();
  if (need <= size_) return;
  size_ = need;
  mem_ = dnnl::memory(md({int64_t(size_)}, dt::u8, tag::a), engine());
}

void Scratchpad::run(const dnnl::primitive& p, Args args) {
  if (size_) args[DNNL_ARG_SCRATCHPAD] = mem_;
  p.execute(stream(), args);
}

dnnl::reorder make_reorder(const md& from, const md& to, Scratchpad& sp, bool accumulate) {
  dnnl::post_ops ops;
  if (accumulate) ops.append_sum(1.f);
  dnnl::reorder::primitive_desc pd(engine(), from, engine(), to, Scratchpad::attr(ops));
  sp.reserve(pd);
  return dnnl::reorder(pd);
}

}  // namespace loom::dnn
