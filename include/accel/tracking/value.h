// The values trackers log: a number (double or int64) or a string, keyed by name.
// `Values` is what `Trackers::log` and `GeneralTracker::log` take, e.g.
//   tracker.log({{"loss", 0.25}, {"epoch", 3}, {"phase", "train"}}, step);
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <variant>

namespace accel::tracking {

/// One logged value: a double, an int64 or a string (Accelerate logs int/float/str).
/// Any arithmetic type converts implicitly: floating types to double, integral types to int64
/// (bool to 0/1), so `{"step_in_epoch", size_t{3}}` and `{"lr", 1e-4f}` both work.
/// To log a tensor, log `t.item<double>()`.
class Value {
 public:
  using Variant = std::variant<double, std::int64_t, std::string>;

  template <typename T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  Value(T v) : v_(static_cast<double>(v)) {}  // NOLINT: implicit by design
  template <typename T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
  Value(T v) : v_(static_cast<std::int64_t>(v)) {}  // NOLINT
  Value(std::string v) : v_(std::move(v)) {}  // NOLINT
  Value(const char* v) : v_(std::string(v)) {}  // NOLINT

  /// True for a double or an int64.
  bool is_number() const { return !is_string(); }
  bool is_double() const { return std::holds_alternative<double>(v_); }
  bool is_int() const { return std::holds_alternative<std::int64_t>(v_); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }

  /// The number as a double (an int64 is converted). Throws accel::Error for a string.
  double to_double() const;
  /// The int64. Throws accel::Error unless is_int().
  std::int64_t as_int() const;
  /// The string. Throws accel::Error unless is_string().
  const std::string& as_string() const;

  /// The underlying variant, for std::visit.
  const Variant& variant() const { return v_; }

  /// Human-readable text: strings as they are, int64 in decimal, doubles in the shortest
  /// form that reads back exactly ("0.1", "nan", "inf", "-inf").
  std::string to_string() const;

  friend bool operator==(const Value& a, const Value& b) { return a.v_ == b.v_; }

 private:
  Variant v_;
};

/// Values by name. A std::map, so every tracker sees the keys in the same (sorted) order.
using Values = std::map<std::string, Value>;

/// Shortest decimal text that reads back to exactly `v` ("nan", "inf", "-inf" when not finite).
std::string format_double(double v);

}  // namespace accel::tracking
