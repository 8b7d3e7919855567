// The oneDNN adapter (oneDNN 2.6 API) shared by the layer libraries: the CPU engine, a stream per
// thread, plain descriptors over Loom's row-major tensors, and the layer-owned scratchpad.
//
// Every primitive made through this adapter uses a user-provided scratchpad
// (scratchpad_mode::user): the layer that owns the primitive owns the scratchpad, so two layers
// running on different threads never share oneDNN's internal buffers.
#pragma once
#include <dnnl.hpp>
#include <unordered_map>

#include "loom/tensor.hpp"

namespace loom::dnn {

using dt = dnnl::memory::data_type;
using md = dnnl::memory::desc;
using tag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;
using Args = std::unordered_map<int, dnnl::memory>;

dnnl::engine& engine();
dnnl::stream& stream();  // one per thread

inline dims to_dims(const Shape& s) { return dims(s.begin(), s.end()); }

// Plain (row-major) descriptor for a shape of rank 1..6.
md plain(const Shape& s);
inline md plain4(int64_t n, int64_t c, int64_t h, int64_t w) {
  return md({n, c, h, w}, dt::f32, tag::nchw);
}
// A batch of feature maps as Loom stores it: plain NCHW, or channel-blocked (Tensor::blocked()).
inline md map4(int64_t n, int64_t c, int64_t h, int64_t w, bool blocked) {
  return md({n, c, h, w}, dt::f32, blocked ? tag::nChw16c : tag::nchw);
}
inline md any4(int64_t n, int64_t c, int64_t h, int64_t w) {
  return md({n, c, h, w}, dt::f32, tag::any);
}
inline md flat(int64_t n) { return md({n}, dt::f32, tag::a); }
// A memory object over no buffer yet (set_data_handle before use).
inline dnnl::memory unbound(const md& d) { return dnnl::memory(d, engine(), nullptr); }

// The scratchpad of one layer: one buffer, grown to what the largest of its primitives needs,
// shared by all of them (a layer runs its primitives one after the other).
class Scratchpad {
 public:
  // Attributes for a primitive that will run with this scratchpad (post-ops optional).
  static dnnl::primitive_attr attr(const dnnl::post_ops& ops = dnnl::post_ops());
  // Grows the buffer to what the primitive described by pd needs.
  void reserve(const dnnl::primitive_desc_base& pd);
  // Runs a primitive made with attr() on this thread's stream.
  void run(const dnnl::primitive& p, Args args);

 private:
  size_t size_ = 0;
  dnnl::memory mem_;
};

// The operand type of a primitive asked to compute in bf16 (`precision: bf16`): `make(dt::bf16)`
// when asked and oneDNN has a bf16 kernel for it (else it throws dnnl::error), otherwise
// `make(dt::f32)`. Returns the type used.
template <class Make>
dt with_compute_type(bool bf16, Make&& make) {
  if (bf16) {
    try {
      make(dt::bf16);
      return dt::bf16;
    } catch (const dnnl::error&) {
      // No bf16 kernel for this shape on this CPU: fp32.
    }
  }
  make(dt::f32);
  return dt::f32;
}

// A reorder between two descriptors (optionally adding into the destination), with its scratchpad.
dnnl::reorder make_reorder(const md& from, const md& to, Scratchpad& sp, bool accumulate = false);

}  // namespace loom::dnn
