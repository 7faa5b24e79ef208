// Test helpers: tensor comparison that reports shape, max abs/rel difference and the worst
// element (llm.c style), for use with GoogleTest's EXPECT_TRUE.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>

namespace accel::testing {

inline ::testing::AssertionResult tensors_close(const at::Tensor& actual, const at::Tensor& expected,
                                                double rtol, double atol,
                                                const std::string& what = "tensor") {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure()
           << what << ": shape " << actual.sizes() << " != expected " << expected.sizes();
  }
  at::Tensor a = actual.detach().to(at::kDouble).cpu().reshape({-1});
  at::Tensor e = expected.detach().to(at::kDouble).cpu().reshape({-1});
  if (a.numel() == 0) return ::testing::AssertionSuccess();
  at::Tensor diff = (a - e).abs();
  at::Tensor tol = atol + rtol * e.abs();
  at::Tensor excess = diff - tol;
  const int64_t worst = excess.argmax().item<int64_t>();
  const double max_abs = diff.max().item<double>();
  const double max_rel = (diff / e.abs().clamp_min(1e-30)).max().item<double>();
  if (excess[worst].item<double>() <= 0 && !a.isnan().any().item<bool>()) {
    return ::testing::AssertionSuccess();
  }
  std::ostringstream os;
  os << what << " " << actual.sizes() << ": max abs diff " << max_abs << ", max rel diff " << max_rel
     << "; worst element [" << worst << "] actual " << a[worst].item<double>() << " expected "
     << e[worst].item<double>() << " (rtol " << rtol << ", atol " << atol << ")";
  return ::testing::AssertionFailure() << os.str();
}

}  // namespace accel::testing
