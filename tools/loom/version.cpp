// `loom --version`: what this build is and what it runs on.
#include <dnnl.hpp>
#include <string>

#include "cli.hpp"
#include "stage/run_folder.hpp"

namespace loom::cli {
namespace {

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic:
      return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops:
      return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "generic (no JIT kernels)";
  }
}

// oneDNN 2.6 runs bf16 natively from avx512_core_bf16, emulated on avx512_core, not below.
std::string bf16_text(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_amx:
      return "yes (native)";
    case dnnl::cpu_isa::avx512_core:
    case dnnl::cpu_isa::avx512_core_vnni:
      return "yes (emulated on avx512_core)";
    default:
      return "no (oneDNN needs AVX-512 for bf16)";
  }
}

const char* runtime_name(unsigned runtime) {
  switch (runtime) {
    case DNNL_RUNTIME_OMP:
      return "OpenMP";
    case DNNL_RUNTIME_TBB:
      return "oneTBB";
    case DNNL_RUNTIME_SEQ:
      return "sequential";
    case DNNL_RUNTIME_THREADPOOL:
      return "threadpool";
    default:
      return "unknown";
  }
}

}  // namespace

std::string version_text() {
  const dnnl_version_t* v = dnnl_version();
  dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  bool has_hash = v->hash && *v->hash && std::string(v->hash) != "N/A";
  std::string hash = has_hash ? std::string(", ") + v->hash : std::string();
  return "loom " + loom_version() + "\n" + "oneDNN " + std::to_string(v->major) + "." +
         std::to_string(v->minor) + "." + std::to_string(v->patch) + " (" +
         runtime_name(v->cpu_runtime) + " runtime" + hash + ")\n" + "ISA in use: " + isa_name(isa) +
         "\n" + "bf16: " + bf16_text(isa) + "\n" + "build: " + LOOM_BUILD_TYPE + "\n";
}

}  // namespace loom::cli
