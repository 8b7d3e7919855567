// Internal: what this CPU offers, from /proc/cpuinfo (the framework does not link oneDNN).
#pragma once
#include <string>

#include "loom/export.hpp"

namespace loom {

// The first "flags" line of /proc/cpuinfo, space-separated with a space at both ends ("" when
// unreadable).
LOOM_API std::string cpu_flags();

// The instruction-set extensions of interest present ("avx2, avx512f, avx512_bf16"), for the
// report and for messages.
LOOM_API std::string cpu_isa_text();

// Whether `precision: bf16` can run natively: the CPU has AVX512-BF16 or AMX-BF16, and
// ONEDNN_MAX_CPU_ISA (when set) does not hold oneDNN below them. Otherwise `why` says which.
LOOM_API bool bf16_available(std::string& why);

}  // namespace loom
