#include "accel/core/options.h"

#include "accel/core/error.h"

#include <algorithm>
#include <cctype>

namespace accel {

MixedPrecision parse_mixed_precision(const std::string& value) {
  std::string v = value;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v == "no" || v == "fp32" || v == "none") return MixedPrecision::kNo;
  if (v == "fp16") return MixedPrecision::kFP16;
  if (v == "bf16") return MixedPrecision::kBF16;
  ACCEL_CHECK(false, "mixed_precision='", value, "' is not supported; accepted: no, fp16, bf16.");
  return MixedPrecision::kNo;
}

std::string to_string(MixedPrecision mp) {
  switch (mp) {
    case MixedPrecision::kNo:
      return "no";
    case MixedPrecision::kFP16:
      return "fp16";
    case MixedPrecision::kBF16:
      return "bf16";
  }
  return "no";
}

ResolvedOptions resolve_options(const AcceleratorOptions& options, const ProcessEnv& env) {
  ResolvedOptions r;
  if (options.mixed_precision()) {
    r.mixed_precision = parse_mixed_precision(*options.mixed_precision());
  } else if (env.mixed_precision) {
    r.mixed_precision = parse_mixed_precision(*env.mixed_precision);
  }

  const auto& ga = options.gradient_accumulation();
  ACCEL_CHECK(!(options.gradient_accumulation_steps() && ga.num_steps() &&
                *options.gradient_accumulation_steps() != *ga.num_steps()),
              "gradient_accumulation_steps=", *options.gradient_accumulation_steps(),
              " conflicts with gradient_accumulation.num_steps=", ga.num_steps().value_or(0),
              "; set only one of them.");
  std::optional<int64_t> steps = options.gradient_accumulation_steps();
  if (!steps) steps = ga.num_steps();
  if (!steps && env.gradient_accumulation_steps) steps = *env.gradient_accumulation_steps;
  if (steps) {
    ACCEL_CHECK(*steps >= 1, "gradient_accumulation_steps=", *steps,
                " is not valid; accepted: an integer >= 1.");
    r.gradient_accumulation_steps = *steps;
  }

  if (options.cpu()) {
    r.cpu = *options.cpu();
  } else if (env.use_cpu) {
    r.cpu = *env.use_cpu;
  }

  if (options.process_group().timeout_s()) {
    r.timeout_s = *options.process_group().timeout_s();
  } else if (env.collective_timeout_s) {
    r.timeout_s = *env.collective_timeout_s;
  }
  ACCEL_CHECK(r.timeout_s > 0, "process_group.timeout_s=", r.timeout_s, " must be > 0.");
  if (options.process_group().heartbeat_s()) {
    r.heartbeat_s = *options.process_group().heartbeat_s();
  } else if (env.heartbeat_s) {
    r.heartbeat_s = *env.heartbeat_s;
  }
  ACCEL_CHECK(r.heartbeat_s >= 0, "process_group.heartbeat_s=", r.heartbeat_s, " must be >= 0 (0: off).");
  const std::string& backend = options.process_group().backend();
  ACCEL_CHECK(backend == "auto" || backend == "gloo" || backend == "nccl", "process_group.backend='", backend,
              "' is not known; accepted: auto, gloo, nccl.");
  const std::string& hook = options.ddp().comm_hook();
  ACCEL_CHECK(hook == "none" || hook == "fp16" || hook == "bf16", "ddp.comm_hook='", hook,
              "' is not known; accepted: none, fp16, bf16.");
  ACCEL_CHECK(options.ddp().bucket_cap_mb() > 0 && options.ddp().first_bucket_cap_mb() > 0,
              "ddp bucket sizes must be > 0 MiB (got ", options.ddp().bucket_cap_mb(), " and ",
              options.ddp().first_bucket_cap_mb(), ").");
  const auto& sc = options.scaler();
  ACCEL_CHECK(sc.init_scale() > 0, "scaler.init_scale=", sc.init_scale(), " must be > 0.");
  ACCEL_CHECK(sc.growth_factor() > 1.0, "scaler.growth_factor=", sc.growth_factor(), " must be > 1.");
  ACCEL_CHECK(sc.backoff_factor() > 0.0 && sc.backoff_factor() < 1.0,
              "scaler.backoff_factor=", sc.backoff_factor(), " must be in (0, 1).");
  ACCEL_CHECK(sc.growth_interval() >= 1, "scaler.growth_interval=", sc.growth_interval(), " must be >= 1.");
  ACCEL_CHECK(options.project().total_limit() >= 0, "project.total_limit=", options.project().total_limit(),
              " must be >= 0 (0 keeps every checkpoint).");
  r.debug = env.debug_mode.value_or(false);
  return r;
}

}  // namespace accel
