// to_fp32: what Accelerate's convert_outputs_to_fp32 does to a prepared model's outputs under
// mixed precision. bf16/fp16 tensors become fp32; containers (vector, map, pair, tuple,
// optional) are converted element by element; a type with a `to_fp32()` member that returns the
// type is converted by it; anything else is returned unchanged. Add an OutputCast specialization
// for your own output struct.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

namespace accel {

template <typename T>
struct OutputCast {
  static T apply(T v) {
    if constexpr (requires(const T& x) {
                    { x.to_fp32() } -> std::convertible_to<T>;
                  }) {
      return v.to_fp32();
    } else {
      return v;
    }
  }
};

/// `value` with its reduced-precision floating tensors converted to fp32.
template <typename T>
T to_fp32(T value) {
  return OutputCast<T>::apply(std::move(value));
}

template <>
struct OutputCast<at::Tensor> {
  static at::Tensor apply(at::Tensor t) {
    return t.defined() && (t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf)
               ? t.to(at::kFloat)
               : t;
  }
};

template <typename T>
struct OutputCast<std::vector<T>> {
  static std::vector<T> apply(std::vector<T> v) {
    for (auto& x : v) x = to_fp32(std::move(x));
    return v;
  }
};

template <typename K, typename V>
struct OutputCast<std::map<K, V>> {
  static std::map<K, V> apply(std::map<K, V> m) {
    for (auto& [k, x] : m) x = to_fp32(std::move(x));
    return m;
  }
};

template <typename A, typename B>
struct OutputCast<std::pair<A, B>> {
  static std::pair<A, B> apply(std::pair<A, B> p) {
    return {to_fp32(std::move(p.first)), to_fp32(std::move(p.second))};
  }
};

template <typename... Ts>
struct OutputCast<std::tuple<Ts...>> {
  static std::tuple<Ts...> apply(std::tuple<Ts...> t) {
    return std::apply([](auto&&... xs) { return std::tuple<Ts...>(to_fp32(std::move(xs))...); },
                      std::move(t));
  }
};

template <typename T>
struct OutputCast<std::optional<T>> {
  static std::optional<T> apply(std::optional<T> o) {
    if (o) o = to_fp32(std::move(*o));
    return o;
  }
};

}  // namespace accel
