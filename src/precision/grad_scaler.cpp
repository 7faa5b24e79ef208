#include "accel/precision/grad_scaler.h"

#include "accel/core/error.h"

#include <ATen/ATen.h>

#include <map>

namespace accel {

GradScaler::GradScaler(const GradScalerOptions& options, c10::Device device)
    : options_(options), device_(device) {
  auto f32 = at::TensorOptions().dtype(at::kFloat).device(device_);
  scale_ = at::full({1}, options_.init_scale(), f32);
  growth_tracker_ = at::zeros({1}, at::TensorOptions().dtype(at::kInt).device(device_));
}

at::Tensor GradScaler::scale(const at::Tensor& loss) const {
  if (!enabled()) return loss;
  return loss * scale_.to(loss.device(), /*non_blocking=*/true);
}

at::Tensor GradScaler::unscale_(const std::vector<at::Tensor>& grads) const {
  at::Tensor found_inf = at::zeros({1}, at::TensorOptions().dtype(at::kFloat).device(device_));
  if (!enabled()) return found_inf;
  // Same as Python: the inverse is computed in double precision, then stored as float.
  at::Tensor inv_scale = scale_.to(at::kDouble).reciprocal().to(at::kFloat);
  // The kernel wants all tensors of one list on one device and dtype: group them.
  std::map<std::string, std::vector<at::Tensor>> groups;
  for (const auto& g : grads) {
    if (!g.defined()) continue;
    ACCEL_CHECK(!g.is_sparse(), "GradScaler: sparse gradients are not supported.");
    groups[c10::str(g.device(), "/", g.scalar_type())].push_back(g);
  }
  for (auto& [key, list] : groups) {
    const c10::Device dev = list.front().device();
    if (dev == device_) {
      at::_amp_foreach_non_finite_check_and_unscale_(list, found_inf, inv_scale);
    } else {
      at::Tensor local_inf = at::zeros({1}, found_inf.options().device(dev));
      at::_amp_foreach_non_finite_check_and_unscale_(list, local_inf, inv_scale.to(dev));
      found_inf.add_(local_inf.to(device_));
    }
  }
  return found_inf;
}

void GradScaler::update(const std::vector<at::Tensor>& found_infs) {
  if (!enabled()) return;
  ACCEL_CHECK(!found_infs.empty(),
              "GradScaler::update: no inf checks were recorded for this step; unscale_ the "
              "gradients (or step the optimizer) before update().");
  at::Tensor combined = found_infs[0].to(device_).clone();
  for (size_t i = 1; i < found_infs.size(); ++i) combined.add_(found_infs[i].to(device_));
  at::_amp_update_scale_(scale_, growth_tracker_, combined, options_.growth_factor(),
                         options_.backoff_factor(), options_.growth_interval());
}

double GradScaler::get_scale() const { return scale_.item<float>(); }

int64_t GradScaler::growth_tracker() const { return growth_tracker_.item<int>(); }

std::map<std::string, at::Tensor> GradScaler::state_dict() const {
  auto d = at::TensorOptions().dtype(at::kDouble);
  return {
      {"scale", scale_.cpu().clone()},
      {"growth_tracker", growth_tracker_.cpu().clone()},
      {"growth_factor", at::full({1}, options_.growth_factor(), d)},
      {"backoff_factor", at::full({1}, options_.backoff_factor(), d)},
      {"growth_interval", at::full({1}, static_cast<double>(options_.growth_interval()), d)},
  };
}

void GradScaler::load_state_dict(const std::map<std::string, at::Tensor>& state) {
  for (const char* key : {"scale", "growth_tracker"}) {
    ACCEL_CHECK(state.count(key), "GradScaler::load_state_dict: the state has no '", key,
                "' entry; it was not written by GradScaler::state_dict().");
  }
  scale_.copy_(state.at("scale").to(at::kFloat).reshape({1}));
  growth_tracker_.copy_(state.at("growth_tracker").to(at::kInt).reshape({1}));
  if (state.count("growth_factor")) options_.growth_factor(state.at("growth_factor").item<double>());
  if (state.count("backoff_factor")) {
    options_.backoff_factor(state.at("backoff_factor").item<double>());
  }
  if (state.count("growth_interval")) {
    options_.growth_interval(static_cast<int64_t>(state.at("growth_interval").item<double>()));
  }
}

}  // namespace accel
