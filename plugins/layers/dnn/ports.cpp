#include "dnn/ports.hpp"

namespace loom::dnn {

void InPort::init(const md& user, const md& want, Scratchpad& sp) {
  sp_ = &sp;
  user_ = unbound(user);
  want_ = want;
  needs_ = user != want;
  if (needs_) {
    prim_ = dnnl::memory(want, engine());
    reorder_ = make_reorder(user, want, sp);
  } else {
    prim_ = user_;
  }
}

const dnnl::memory& InPort::operator()(const float* p) {
  user_.set_data_handle(const_cast<float*>(p));
  last_ = p;
  if (needs_) sp_->run(reorder_, {{DNNL_ARG_FROM, user_}, {DNNL_ARG_TO, prim_}});
  return prim_;
}

void OutPort::init(const md& user, const md& have, Scratchpad& sp, bool accumulate) {
  sp_ = &sp;
  user_ = unbound(user);
  needs_ = accumulate || user != have;
  if (needs_) {
    prim_ = dnnl::memory(have, engine());
    reorder_ = make_reorder(have, user, sp, accumulate);
  } else {
    prim_ = user_;
  }
}

const dnnl::memory& OutPort::mem(float* p) {
  user_.set_data_handle(p);
  return prim_;
}

void OutPort::finish() {
  if (needs_) sp_->run(reorder_, {{DNNL_ARG_FROM, prim_}, {DNNL_ARG_TO, user_}});
}

}  // namespace loom::dnn
