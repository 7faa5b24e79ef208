// Small non-cryptographic hashing helpers shared by the tokenizer's vocabulary table and the CPU
// attention's dropout keep-mask. Header-only, no dependencies.
#pragma once

#include <cstdint>

namespace accel {

/// splitmix64's finaliser: a bijective 64-bit mixer with full avalanche.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

/// murmur3's 32-bit finaliser (fmix32): a bijective 32-bit mixer with full avalanche.
inline uint32_t mix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bU;
  h ^= h >> 13;
  h *= 0xc2b2ae35U;
  h ^= h >> 16;
  return h;
}

}  // namespace accel
