#include "accel/precision/autocast.h"

#include <ATen/autocast_mode.h>

namespace accel {

AutocastGuard::AutocastGuard(c10::DeviceType device_type, c10::ScalarType dtype, bool enabled)
    : device_type_(device_type) {
  if (!enabled) return;
  active_ = true;
  prev_enabled_ = at::autocast::is_autocast_enabled(device_type_);
  prev_dtype_ = at::autocast::get_autocast_dtype(device_type_);
  at::autocast::set_autocast_enabled(device_type_, true);
  at::autocast::set_autocast_dtype(device_type_, dtype);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_type_, prev_enabled_);
  at::autocast::set_autocast_dtype(device_type_, prev_dtype_);
}

AutocastDisabledGuard::AutocastDisabledGuard(c10::DeviceType device_type)
    : device_type_(device_type), prev_enabled_(at::autocast::is_autocast_enabled(device_type)) {
  at::autocast::set_autocast_enabled(device_type_, false);
}

AutocastDisabledGuard::~AutocastDisabledGuard() {
  at::autocast::set_autocast_enabled(device_type_, prev_enabled_);
}

}  // namespace accel
