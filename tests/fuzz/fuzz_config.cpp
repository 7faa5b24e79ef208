// libFuzzer target: the launch config loader (accel::launcher::parse_config_text, which runs
// validate_config), fed arbitrary bytes as YAML or JSON. A config that loads must also survive
// the writer: config_to_yaml and config_to_json of it must load back to the same values.
//
// Build and run (see scripts/fuzz.sh, which does all of this):
//   CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DACCEL_FUZZ=ON \
//       -DCMAKE_PREFIX_PATH=$(.venv/bin/python -c 'import torch;print(torch.utils.cmake_prefix_path)')
//   cmake --build build-fuzz --target fuzz_config -j2
//   LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp build-fuzz/tests/fuzz/fuzz_config \
//       -dict=tests/fuzz/dicts/yaml.dict build-fuzz/corpus/fuzz_config tests/fuzz/corpus/fuzz_config
#include "accel/launcher/config_file.h"

#include "fuzz_common.h"

#include <cstdint>
#include <optional>
#include <string>

using namespace accel::launcher;

namespace {

bool same(const ClusterConfig& a, const ClusterConfig& b) {
  return a.compute_environment == b.compute_environment && a.distributed_type == b.distributed_type &&
         a.mixed_precision == b.mixed_precision && a.use_cpu == b.use_cpu && a.debug == b.debug &&
         a.num_processes == b.num_processes && a.num_machines == b.num_machines &&
         a.machine_rank == b.machine_rank && a.gpu_ids == b.gpu_ids &&
         a.main_process_ip == b.main_process_ip && a.main_process_port == b.main_process_port &&
         a.rdzv_backend == b.rdzv_backend && a.same_network == b.same_network &&
         a.main_training_function == b.main_training_function &&
         a.enable_cpu_affinity == b.enable_cpu_affinity &&
         a.gradient_accumulation_steps == b.gradient_accumulation_steps;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::optional<ClusterConfig> parsed;
  accel::fuzz::guarded([&] {
    parsed = parse_config_text(text, "fuzz.yaml");
    validate_config(*parsed, "fuzz.yaml");
  });
  if (!parsed) return 0;
  const ClusterConfig& c = *parsed;
  // What accel accepts it must write in a form it reads back (save_config_file's text).
  accel::fuzz::must_not_throw("reading back config_to_yaml/config_to_json", [&] {
    for (const char* k : {"dynamo_config", "downcast_bf16"}) (void)passthrough_scalar(c, k, "dynamo_backend");
    ClusterConfig c2 = parse_config_text(config_to_yaml(c), "fuzz-roundtrip.yaml");
    accel::fuzz::expect(same(c, c2), "config_to_yaml round trip keeps every typed field");
    // JSON is read back through yaml-cpp, and YAML limits implicit keys to 1024 characters:
    // a config whose JSON has a longer (escaped) key cannot be read back by accel (a known
    // limitation, see docs/notes/hardening.md), so the JSON check skips such configs.
    const std::string json = config_to_json(c);
    bool long_line = false;
    for (size_t at = 0, nl = 0; at < json.size(); at = nl + 1) {
      nl = json.find('\n', at);
      if (nl == std::string::npos) nl = json.size();
      long_line = long_line || nl - at > 1000;
    }
    if (!long_line) {
      ClusterConfig c3 = parse_config_text(json, "fuzz-roundtrip.json");
      accel::fuzz::expect(same(c, c3), "config_to_json round trip keeps every typed field");
    }
  });
  return 0;
}
