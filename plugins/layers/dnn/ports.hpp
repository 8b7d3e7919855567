// Ports move data between Loom's plain tensors and the layouts a primitive chose
// (format_tag::any), with reorder primitives and buffers made once.
#pragma once
#include "dnn/dnn.hpp"

namespace loom::dnn {

// Input port: the user's plain buffer is reordered (when the layouts differ) into an internal
// buffer owned by the port.
class InPort {
 public:
  void init(const md& user, const md& want, Scratchpad& sp);
  const dnnl::memory& operator()(const float* p);
  // What the last call gave the primitive (no reorder).
  const dnnl::memory& last() const { return prim_; }
  // The primitive's layout, and the user buffer of the last call: another port with the same
  // layout can take last() instead of reordering the same buffer again.
  const md& want() const { return want_; }
  const float* last_user() const { return last_; }

 private:
  dnnl::memory user_, prim_;
  md want_;
  const float* last_ = nullptr;
  dnnl::reorder reorder_;
  bool needs_ = false;
  Scratchpad* sp_ = nullptr;
};

// Output port: the primitive writes into mem() (the user's buffer itself when the layouts
// agree), then finish() reorders into the user's plain buffer. With accumulate, the primitive
// always writes an internal buffer and finish() ADDS it to the user's buffer (a reorder with a
// sum post-op): used for parameter gradients.
class OutPort {
 public:
  void init(const md& user, const md& have, Scratchpad& sp, bool accumulate = false);
  const dnnl::memory& mem(float* p);
  void finish();

 private:
  dnnl::memory user_, prim_;
  dnnl::reorder reorder_;
  bool needs_ = false;
  Scratchpad* sp_ = nullptr;
};

}  // namespace loom::dnn
