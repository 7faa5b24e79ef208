// Autocast guard and loss scaler (PyTorch GradScaler's algorithm), on CPU.
#include "accel/core/error.h"
#include "accel/precision/autocast.h"
#include "accel/precision/grad_scaler.h"

#include "support/compare.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <limits>

using namespace accel;

TEST(Autocast, MatmulIsBf16InsideAndFp32After) {
  at::Tensor a = at::randn({8, 8});
  at::Tensor b = at::randn({8, 8});
  {
    AutocastGuard g(c10::kCPU, c10::kBFloat16);
    EXPECT_EQ(at::matmul(a, b).scalar_type(), c10::kBFloat16);
    EXPECT_EQ(at::linear(a, b).scalar_type(), c10::kBFloat16);
  }
  EXPECT_EQ(at::matmul(a, b).scalar_type(), c10::kFloat);
  EXPECT_FALSE(at::autocast::is_autocast_enabled(c10::kCPU));
}

TEST(Autocast, NestingRestoresTheOuterState) {
  at::Tensor a = at::randn({4, 4});
  {
    AutocastGuard outer(c10::kCPU, c10::kBFloat16);
    {
      AutocastGuard inner(c10::kCPU, c10::kHalf);
      EXPECT_EQ(at::mm(a, a).scalar_type(), c10::kHalf);
      {
        AutocastDisabledGuard off(c10::kCPU);
        EXPECT_EQ(at::mm(a, a).scalar_type(), c10::kFloat);
      }
      EXPECT_EQ(at::mm(a, a).scalar_type(), c10::kHalf);
    }
    EXPECT_EQ(at::mm(a, a).scalar_type(), c10::kBFloat16);
    EXPECT_EQ(at::autocast::get_autocast_dtype(c10::kCPU), c10::kBFloat16);
  }
  EXPECT_EQ(at::mm(a, a).scalar_type(), c10::kFloat);
  {
    AutocastGuard disabled(c10::kCPU, c10::kBFloat16, /*enabled=*/false);
    EXPECT_EQ(at::mm(a, a).scalar_type(), c10::kFloat);
  }
}

namespace {

// torch's _amp_update_scale_ written out, as the reference the kernel must follow.
struct ReferenceScaler {
  double scale;
  int64_t tracker = 0;
  double growth, backoff;
  int64_t interval;
  void update(bool found_inf) {
    if (found_inf) {
      scale *= backoff;
      tracker = 0;
    } else if (++tracker == interval) {
      scale *= growth;
      tracker = 0;
    }
  }
};

at::Tensor grad_with(float v) { return at::full({3}, v); }

}  // namespace

TEST(GradScaler, ScalesLossByTheCurrentScale) {
  GradScaler s(GradScalerOptions().init_scale(1024), c10::kCPU);
  at::Tensor loss = at::full({}, 0.5);
  EXPECT_FLOAT_EQ(s.scale(loss).item<float>(), 512.0f);
  EXPECT_DOUBLE_EQ(s.get_scale(), 1024.0);
}

TEST(GradScaler, UnscaleDividesAndDetectsInfAndNan) {
  GradScaler s(GradScalerOptions().init_scale(4), c10::kCPU);
  at::Tensor g = at::full({2}, 8.0f);
  EXPECT_EQ(s.unscale_({g}).item<float>(), 0.0f);
  EXPECT_TRUE(at::allclose(g, at::full({2}, 2.0f)));
  at::Tensor bad = at::tensor({1.0f, std::numeric_limits<float>::infinity()});
  EXPECT_GT(s.unscale_({g, bad}).item<float>(), 0.0f);
  at::Tensor nan = at::tensor({std::numeric_limits<float>::quiet_NaN()});
  EXPECT_GT(s.unscale_({nan}).item<float>(), 0.0f);
  // Undefined gradients (unused parameters) are ignored.
  EXPECT_EQ(s.unscale_({at::Tensor(), at::ones({1})}).item<float>(), 0.0f);
}

TEST(GradScaler, InfHalvesTheScaleAndResetsTheCounter) {
  GradScaler s(GradScalerOptions(), c10::kCPU);
  s.update({s.unscale_({grad_with(1)})});
  EXPECT_EQ(s.growth_tracker(), 1);
  s.update({s.unscale_({grad_with(std::numeric_limits<float>::infinity())})});
  EXPECT_DOUBLE_EQ(s.get_scale(), 32768.0);
  EXPECT_EQ(s.growth_tracker(), 0);
}

TEST(GradScaler, GrowsAfterGrowthIntervalCleanSteps) {
  GradScaler s(GradScalerOptions().init_scale(8).growth_interval(3), c10::kCPU);
  for (int i = 0; i < 2; ++i) s.update({s.unscale_({grad_with(1)})});
  EXPECT_DOUBLE_EQ(s.get_scale(), 8.0);
  EXPECT_EQ(s.growth_tracker(), 2);
  s.update({s.unscale_({grad_with(1)})});
  EXPECT_DOUBLE_EQ(s.get_scale(), 16.0);
  EXPECT_EQ(s.growth_tracker(), 0);
}

TEST(GradScaler, DefaultsMatchPyTorch) {
  GradScalerOptions o;
  EXPECT_DOUBLE_EQ(o.init_scale(), 65536.0);
  EXPECT_DOUBLE_EQ(o.growth_factor(), 2.0);
  EXPECT_DOUBLE_EQ(o.backoff_factor(), 0.5);
  EXPECT_EQ(o.growth_interval(), 2000);
}

TEST(GradScaler, ScriptedSeriesFollowsTorchAlgorithm) {
  const std::vector<int> infs = {0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
  GradScaler s(GradScalerOptions().init_scale(256).growth_interval(3), c10::kCPU);
  ReferenceScaler ref{256, 0, 2.0, 0.5, 3};
  for (size_t i = 0; i < infs.size(); ++i) {
    float v = infs[i] ? std::numeric_limits<float>::quiet_NaN() : 1.0f;
    s.update({s.unscale_({grad_with(v)})});
    ref.update(infs[i] != 0);
    ASSERT_DOUBLE_EQ(s.get_scale(), ref.scale) << "step " << i;
    ASSERT_EQ(s.growth_tracker(), ref.tracker) << "step " << i;
  }
}

TEST(GradScaler, MatchesTorchGradScalerFixture) {
  // tools/reference/make_scaler_fixture.py runs torch.amp.GradScaler("cpu") on scripted gradients.
  std::ifstream in(std::string(ACCEL_SOURCE_DIR) + "/tests/fixtures/precision/grad_scaler.json");
  ASSERT_TRUE(in.good()) << "fixture missing: run tools/reference/make_scaler_fixture.py";
  nlohmann::json fx = nlohmann::json::parse(in);
  GradScaler s(GradScalerOptions()
                   .init_scale(fx["init_scale"].get<double>())
                   .growth_factor(fx["growth_factor"].get<double>())
                   .backoff_factor(fx["backoff_factor"].get<double>())
                   .growth_interval(fx["growth_interval"].get<int64_t>()),
               c10::kCPU);
  at::Tensor w = at::tensor(fx["initial_weight"].get<std::vector<float>>());
  for (const auto& step : fx["steps"]) {
    at::Tensor g = at::tensor(step["scaled_grad"].get<std::vector<double>>()).to(at::kFloat);
    // The generator injected these after backward; do the same.
    if (step["kind"] == "inf") g[1] = std::numeric_limits<float>::infinity();
    if (step["kind"] == "nan") g[0] = std::numeric_limits<float>::quiet_NaN();
    at::Tensor found = s.unscale_({g});
    const bool skipped = found.item<float>() > 0;
    EXPECT_EQ(skipped, step["skipped"].get<bool>());
    if (!skipped) w -= 0.1 * g;  // SGD lr 0.1, as the generator
    s.update({found});
    EXPECT_DOUBLE_EQ(s.get_scale(), step["scale_after"].get<double>());
    EXPECT_TRUE(accel::testing::tensors_close(w, at::tensor(step["weight_after"].get<std::vector<float>>()),
                                              1e-6, 1e-7, "weight"));
  }
}

TEST(GradScaler, StateRoundTrips) {
  GradScaler a(GradScalerOptions().init_scale(64).growth_interval(5), c10::kCPU);
  a.update({a.unscale_({grad_with(1)})});
  a.update({a.unscale_({grad_with(1)})});
  a.update({a.unscale_({grad_with(std::numeric_limits<float>::infinity())})});
  a.update({a.unscale_({grad_with(1)})});
  GradScaler b(GradScalerOptions(), c10::kCPU);
  b.load_state_dict(a.state_dict());
  EXPECT_DOUBLE_EQ(b.get_scale(), a.get_scale());
  EXPECT_EQ(b.growth_tracker(), a.growth_tracker());
  EXPECT_EQ(b.options().growth_interval(), 5);
  // Both continue identically.
  for (int i = 0; i < 6; ++i) {
    a.update({a.unscale_({grad_with(1)})});
    b.update({b.unscale_({grad_with(1)})});
    EXPECT_DOUBLE_EQ(a.get_scale(), b.get_scale());
  }
  EXPECT_THROW(b.load_state_dict({}), accel::Error);
}
