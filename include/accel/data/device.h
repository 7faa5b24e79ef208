// send_to_device: moves a batch to a device. Works for tensors, containers of tensors,
// torch::data::Example, and any type with a `to(c10::Device, bool non_blocking)` member
// (e.g. accel::models::BertBatch); other values are returned unchanged.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/data/example.h>

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace accel {

template <typename T>
T send_to_device(const T& value, c10::Device device, bool non_blocking = false);

namespace detail {

template <typename T>
struct DeviceMover {
  static T move(const T& v, c10::Device d, bool nb) {
    if constexpr (requires { { v.to(d, nb) } -> std::convertible_to<T>; }) {
      return v.to(d, nb);
    } else {
      return v;
    }
  }
};

template <>
struct DeviceMover<at::Tensor> {
  static at::Tensor move(const at::Tensor& t, c10::Device d, bool nb) {
    return t.defined() ? t.to(d, nb) : t;
  }
};

template <typename T>
struct DeviceMover<std::vector<T>> {
  static std::vector<T> move(const std::vector<T>& v, c10::Device d, bool nb) {
    std::vector<T> out;
    out.reserve(v.size());
    for (const auto& x : v) out.push_back(send_to_device(x, d, nb));
    return out;
  }
};

template <typename K, typename V>
struct DeviceMover<std::map<K, V>> {
  static std::map<K, V> move(const std::map<K, V>& m, c10::Device d, bool nb) {
    std::map<K, V> out;
    for (const auto& [k, v] : m) out.emplace(k, send_to_device(v, d, nb));
    return out;
  }
};

template <typename A, typename B>
struct DeviceMover<std::pair<A, B>> {
  static std::pair<A, B> move(const std::pair<A, B>& p, c10::Device d, bool nb) {
    return {send_to_device(p.first, d, nb), send_to_device(p.second, d, nb)};
  }
};

template <typename... Ts>
struct DeviceMover<std::tuple<Ts...>> {
  static std::tuple<Ts...> move(const std::tuple<Ts...>& t, c10::Device d, bool nb) {
    return std::apply([&](const auto&... xs) { return std::tuple<Ts...>(send_to_device(xs, d, nb)...); }, t);
  }
};

template <typename T>
struct DeviceMover<std::optional<T>> {
  static std::optional<T> move(const std::optional<T>& o, c10::Device d, bool nb) {
    if (!o) return o;
    return send_to_device(*o, d, nb);
  }
};

template <typename D, typename L>
struct DeviceMover<torch::data::Example<D, L>> {
  static torch::data::Example<D, L> move(const torch::data::Example<D, L>& e, c10::Device d, bool nb) {
    return {send_to_device(e.data, d, nb), send_to_device(e.target, d, nb)};
  }
};

}  // namespace detail

template <typename T>
T send_to_device(const T& value, c10::Device device, bool non_blocking) {
  return detail::DeviceMover<T>::move(value, device, non_blocking);
}

}  // namespace accel
