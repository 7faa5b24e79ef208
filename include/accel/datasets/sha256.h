// SHA-256 (FIPS 180-4), incremental and one-shot, used to verify downloaded archives.
// Small and dependency-free; checked against the NIST test vectors in the unit tests.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace accel::datasets {

/// Incremental SHA-256: update() any number of times, then hex_digest() once.
class Sha256 {
 public:
  Sha256();
  /// Feeds n bytes.
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  /// Finishes and returns the 32-byte digest; the object must not be updated afterwards.
  std::array<uint8_t, 32> digest();
  /// Finishes and returns the digest as 64 lowercase hex characters.
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

/// SHA-256 of a byte string, as lowercase hex.
std::string sha256_hex(std::string_view data);

/// SHA-256 of a file's bytes, as lowercase hex. Throws accel::InputError when unreadable.
std::string sha256_file(const std::string& path);

}  // namespace accel::datasets
