// oneDNN access for plugins: the CPU engine, a per-thread stream, and helpers that wrap Loom's
// plain row-major tensors as oneDNN memory without copying. Written against oneDNN 2.6.
#pragma once
#include <dnnl.hpp>

#include "loom/export.hpp"
#include "loom/tensor.hpp"

namespace loom::dnn {

LOOM_API dnnl::engine& engine();
LOOM_API dnnl::stream& stream();  // one per thread

inline dnnl::memory::dims dims(const Shape& s) { return dnnl::memory::dims(s.begin(), s.end()); }

// Plain (row-major) descriptor for a shape of rank 1..6.
LOOM_API dnnl::memory::desc plain(const Shape& s);
inline dnnl::memory wrap(const dnnl::memory::desc& md, const Tensor& t) {
  return dnnl::memory(md, engine(), const_cast<float*>(t.data()));
}
inline dnnl::memory wrap(const Tensor& t) { return wrap(plain(t.shape()), t); }

}  // namespace loom::dnn
