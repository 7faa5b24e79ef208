// Dynamic loss scaling for fp16 training, with PyTorch GradScaler's algorithm and defaults,
// built on the same kernels (_amp_foreach_non_finite_check_and_unscale_, _amp_update_scale_),
// on CPU and CUDA. The Accelerator drives it; it is usable on its own too.
#pragma once

#include "accel/core/options.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <map>
#include <string>
#include <vector>

namespace accel {

class GradScaler {
 public:
  GradScaler(const GradScalerOptions& options, c10::Device device);

  bool enabled() const { return options_.enabled(); }

  /// loss * scale (returns `loss` unchanged when disabled).
  at::Tensor scale(const at::Tensor& loss) const;

  /// Divides every defined gradient in `grads` by the scale in place and returns a one-element
  /// float tensor on the scaler's device: 1 if any gradient had inf/nan, else 0.
  at::Tensor unscale_(const std::vector<at::Tensor>& grads) const;

  /// Updates the scale from this step's found_inf tensors (their sum decides): any inf → scale
  /// *= backoff_factor and the clean-step counter resets; else the counter grows and after
  /// growth_interval clean steps scale *= growth_factor.
  void update(const std::vector<at::Tensor>& found_infs);

  /// Current scale and clean-step counter (host values; synchronise on CUDA).
  double get_scale() const;
  int64_t growth_tracker() const;
  const GradScalerOptions& options() const { return options_; }

  /// Serialisable state: "scale" (float32 [1]) and "growth_tracker" (int32 [1]) plus the options
  /// as float64 scalars, all on CPU.
  std::map<std::string, at::Tensor> state_dict() const;
  /// Restores a state written by state_dict(); throws accel::Error naming a missing entry.
  void load_state_dict(const std::map<std::string, at::Tensor>& state);

 private:
  GradScalerOptions options_;
  c10::Device device_;
  at::Tensor scale_;           // float32 [1]
  at::Tensor growth_tracker_;  // int32 [1]
};

}  // namespace accel
