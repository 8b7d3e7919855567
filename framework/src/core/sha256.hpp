// SHA-256 (FIPS 180-4), for the provenance manifests of generated data: the hashes of the
// pipeline, the weights and the files written.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "loom/export.hpp"

namespace loom {

class LOOM_API Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(const std::string& s) { update(s.data(), s.size()); }
  // The digest as 64 lowercase hexadecimal digits; the object is spent afterwards.
  std::string hex();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t used_ = 0;
  uint64_t bytes_ = 0;
};

LOOM_API std::string sha256_hex(const std::string& data);
// The hash of a file's bytes; an Error names the file when it cannot be read.
LOOM_API std::string sha256_file(const std::string& path);

}  // namespace loom
