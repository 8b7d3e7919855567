// Shared by the fuzz harnesses (one per reader, and pipeline text -> validate). Each harness
// writes libFuzzer's bytes to a file in a private scratch folder and calls the reader on it. A
// reader may refuse the file only with a loom::Error (a message naming the file); any other
// exception escapes the harness and libFuzzer reports it as a crash, as it does a sanitizer
// report, a signal, a timeout or an allocation above -malloc_limit_mb.
#pragma once
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "loom/error.hpp"

namespace loom_fuzz {

// /dev/shm/loom-fuzz.<pid>/ (memory-backed, so a run of millions of inputs spares the disk).
inline std::string base_dir() {
  std::string base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
  return base + "/loom-fuzz." + std::to_string(getpid());
}

// A file NAME in the scratch folder, which is removed when the harness exits.
inline std::string scratch(const std::string& name) {
  static const std::string dir = [] {
    std::string d = base_dir();
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(base_dir(), ec);
    });
    return d;
  }();
  return dir + "/" + name;
}

inline void put(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

// Runs `read`; a loom::Error is the reader refusing the input, which is fine.
template <class F>
void refuse_only_with_errors(F&& read) {
  try {
    read();
  } catch (const loom::Error&) {
  }
}

}  // namespace loom_fuzz
