#include "core/cpu.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>

namespace loom {

std::string cpu_flags() {
  static const std::string flags = [] {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("flags", 0) == 0 && line.find(':') != std::string::npos)
        return line.substr(line.find(':') + 1) + " ";
    return std::string();
  }();
  return flags;
}

std::string cpu_isa_text() {
  std::string flags = cpu_flags(), isa;
  for (const char* f : {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
    if (flags.find(std::string(" ") + f + " ") != std::string::npos)
      isa += (isa.empty() ? "" : ", ") + std::string(f);
  return isa;
}

bool bf16_available(std::string& why) {
  std::string flags = cpu_flags();
  bool native = flags.find(" avx512_bf16 ") != std::string::npos ||
                flags.find(" amx_bf16 ") != std::string::npos;
  if (!native) {
    std::string isa = cpu_isa_text();
    why = "bf16 needs a CPU with AVX512-BF16 or AMX; this one has " +
          (isa.empty() ? std::string("neither AVX2 nor AVX-512") : isa);
    return false;
  }
  if (const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA")) {
    std::string c = cap;
    std::transform(c.begin(), c.end(), c.begin(),
                   [](unsigned char ch) { return std::toupper(ch); });
    if (!c.empty() && c != "ALL" && c != "AVX512_CORE_BF16" && c.rfind("AVX512_CORE_AMX", 0) != 0) {
      why = "bf16 needs oneDNN's AVX512_CORE_BF16 kernels or above, and ONEDNN_MAX_CPU_ISA=" +
            std::string(cap) + " holds it below them";
      return false;
    }
  }
  return true;
}

}  // namespace loom
