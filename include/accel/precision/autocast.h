// AutocastGuard: LibTorch has no C++ autocast context object, so this is one. While it lives,
// eligible ops (matmul, linear, conv, SDPA, ...) on `device_type` run in `dtype` (bf16/fp16);
// leaving restores the previous state and clears the cast cache when the outermost guard exits.
#pragma once

#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace accel {

class AutocastGuard {
 public:
  /// enabled=false makes a guard that changes nothing (so code can construct one unconditionally).
  AutocastGuard(c10::DeviceType device_type, c10::ScalarType dtype, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_type_;
  bool active_ = false;
  bool prev_enabled_ = false;
  c10::ScalarType prev_dtype_ = c10::kFloat;
};

/// Temporarily disables autocast on `device_type` (e.g. around backward or an fp32-only op).
class AutocastDisabledGuard {
 public:
  explicit AutocastDisabledGuard(c10::DeviceType device_type);
  ~AutocastDisabledGuard();
  AutocastDisabledGuard(const AutocastDisabledGuard&) = delete;
  AutocastDisabledGuard& operator=(const AutocastDisabledGuard&) = delete;

 private:
  c10::DeviceType device_type_;
  bool prev_enabled_;
};

}  // namespace accel
