#include "loom/dnn.hpp"

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

dnnl::memory::desc plain(const Shape& s) {
  using tag = dnnl::memory::format_tag;
  static const tag tags[] = {tag::a, tag::ab, tag::abc, tag::abcd, tag::abcde, tag::abcdef};
  if (s.empty() || s.size() > 6)
    throw Error("oneDNN: unsupported rank " + std::to_string(s.size()));
  return dnnl::memory::desc(dims(s), dnnl::memory::data_type::f32, tags[s.size() - 1]);
}

}  // namespace loom::dnn
