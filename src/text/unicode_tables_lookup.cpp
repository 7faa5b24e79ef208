// Lookups over the generated Unicode tables (unicode_tables.cpp), with a dense cache for the BMP.
#include <algorithm>
#include <array>

#include "unicode_tables.h"

namespace accel::text::detail {
namespace {

uint8_t flags_by_search(uint32_t cp) {
  const uint32_t* end = kFlagRangeStart + kFlagRangeCount;
  const uint32_t* it = std::upper_bound(kFlagRangeStart, end, cp);
  return kFlagRangeFlags[(it - kFlagRangeStart) - 1];
}

const std::array<uint8_t, 0x10000>& bmp_flags() {
  static const std::array<uint8_t, 0x10000> table = [] {
    std::array<uint8_t, 0x10000> t{};
    for (int r = 0; r < kFlagRangeCount; ++r) {
      uint32_t lo = kFlagRangeStart[r];
      uint32_t hi = r + 1 < kFlagRangeCount ? kFlagRangeStart[r + 1] : 0x110000;
      for (uint32_t cp = lo; cp < hi && cp < 0x10000; ++cp) t[cp] = kFlagRangeFlags[r];
    }
    return t;
  }();
  return table;
}

}  // namespace

uint8_t unicode_flags(uint32_t cp) {
  if (cp < 0x10000) return bmp_flags()[cp];
  if (cp >= 0x110000) cp = 0xFFFD;
  return flags_by_search(cp);
}

int unicode_lower(uint32_t cp, uint32_t* out) {
  for (int i = 0; i < kLowerMultiCount; ++i) {
    if (kLowerMulti[i].cp == cp) {
      for (uint32_t k = 0; k < kLowerMulti[i].len; ++k) out[k] = kLowerMultiPool[kLowerMulti[i].offset + k];
      return static_cast<int>(kLowerMulti[i].len);
    }
  }
  const LowerRun* end = kLowerRuns + kLowerRunCount;
  const LowerRun* it = std::upper_bound(kLowerRuns, end, cp,
                                        [](uint32_t v, const LowerRun& r) { return v < r.start; });
  if (it != kLowerRuns) {
    const LowerRun& r = *(it - 1);
    uint32_t off = cp - r.start;
    if (off % r.stride == 0 && off / r.stride < r.count) {
      out[0] = static_cast<uint32_t>(static_cast<int64_t>(cp) + r.delta);
      return 1;
    }
  }
  out[0] = cp;
  return 1;
}

int unicode_strip(uint32_t cp, uint32_t* out) {
  if (cp >= 0xAC00 && cp <= 0xD7A3) {  // Hangul syllables: algorithmic NFD (no marks to drop)
    uint32_t s = cp - 0xAC00;
    out[0] = 0x1100 + s / 588;
    out[1] = 0x1161 + (s % 588) / 28;
    uint32_t t = s % 28;
    if (t == 0) return 2;
    out[2] = 0x11A7 + t;
    return 3;
  }
  const uint32_t* end = kStripKeys + kStripCount;
  const uint32_t* it = std::lower_bound(kStripKeys, end, cp);
  if (it == end || *it != cp) {
    out[0] = cp;
    return 1;
  }
  uint32_t v = kStripVals[it - kStripKeys];
  if ((v & 0x80000000u) == 0) {
    out[0] = v;
    return 1;
  }
  uint32_t off = (v >> 8) & 0x7FFFFF, len = v & 0xFF;
  for (uint32_t k = 0; k < len; ++k) out[k] = kStripPool[off + k];
  return static_cast<int>(len);
}

}  // namespace accel::text::detail
