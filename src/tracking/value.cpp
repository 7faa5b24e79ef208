// Value accessors and number formatting for trackers.
#include "accel/tracking/value.h"

#include "accel/core/error.h"

#include <charconv>
#include <cmath>

namespace accel::tracking {

double Value::to_double() const {
  if (const auto* d = std::get_if<double>(&v_)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&v_)) return static_cast<double>(*i);
  ACCEL_CHECK(false, "tracking::Value::to_double: the value is the string \"", as_string(),
              "\", not a number");
  return 0;
}

std::int64_t Value::as_int() const {
  ACCEL_CHECK(is_int(), "tracking::Value::as_int: the value is not an int64 (it is ",
              is_double() ? "a double" : "a string", ")");
  return std::get<std::int64_t>(v_);
}

const std::string& Value::as_string() const {
  ACCEL_CHECK(is_string(), "tracking::Value::as_string: the value is a number (", to_string(),
              "), not a string");
  return std::get<std::string>(v_);
}

std::string Value::to_string() const {
  if (const auto* d = std::get_if<double>(&v_)) return format_double(*d);
  if (const auto* i = std::get_if<std::int64_t>(&v_)) return std::to_string(*i);
  return std::get<std::string>(v_);
}

std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, res.ptr);
}

}  // namespace accel::tracking
