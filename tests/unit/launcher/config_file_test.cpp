// Config file loading/saving against files written by the real Accelerate 1.15
// (tests/fixtures/configs, made by generate_fixtures.py there), and every error case.
#include "accel/launcher/config_file.h"

#include "accel/core/error.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

namespace fs = accel::fs;
using accel::launcher::ClusterConfig;
using accel::test::Path;

namespace {

std::string fixture(const std::string& name) {
  return std::string(ACCEL_SOURCE_DIR) + "/tests/fixtures/configs/" + name;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh temporary folder per test.
class TmpDir {
 public:
  TmpDir() {
    std::string tmpl = (Path(fs::temp_directory()) / "accel_cfg_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The InputError message for `text` (fails the test if nothing is thrown).
std::string load_error(const std::string& text) {
  try {
    accel::launcher::parse_config_text(text, "cfg.yaml");
  } catch (const accel::InputError& e) {
    return e.what_without_backtrace();
  }
  ADD_FAILURE() << "no error for:\n" << text;
  return "";
}

}  // namespace

TEST(ConfigFile, SingleCpuFixture) {
  ClusterConfig c = accel::launcher::load_config_file(fixture("single_cpu.yaml"));
  EXPECT_EQ(c.compute_environment, "LOCAL_MACHINE");
  EXPECT_EQ(c.distributed_type, "NO");  // quoted 'NO' in the file
  EXPECT_EQ(c.mixed_precision, "no");
  EXPECT_EQ(c.use_cpu, true);
  EXPECT_EQ(c.debug, false);
  EXPECT_EQ(c.num_processes, 1);
  EXPECT_EQ(c.num_machines, 1);
  EXPECT_EQ(c.machine_rank, 0);
  EXPECT_EQ(c.rdzv_backend, "static");
  EXPECT_EQ(c.same_network, true);
  EXPECT_EQ(c.main_training_function, "main");
  EXPECT_EQ(c.enable_cpu_affinity, false);
  EXPECT_FALSE(c.gpu_ids.has_value());
  EXPECT_FALSE(c.main_process_ip.has_value());
  EXPECT_FALSE(c.gradient_accumulation_steps.has_value());
  EXPECT_EQ(c.passthrough.at("downcast_bf16"), "'no'\n");
  EXPECT_EQ(c.passthrough.at("tpu_env"), "[]\n");
  EXPECT_EQ(accel::launcher::passthrough_scalar(c, "downcast_bf16"), "no");
}

TEST(ConfigFile, MultiCpuMultiGpuMultiNodeFixtures) {
  ClusterConfig cpu = accel::launcher::load_config_file(fixture("multi_cpu.yaml"));
  EXPECT_EQ(cpu.distributed_type, "MULTI_CPU");
  EXPECT_EQ(cpu.num_processes, 4);
  EXPECT_EQ(cpu.mixed_precision, "bf16");
  ClusterConfig gpu = accel::launcher::load_config_file(fixture("multi_gpu.yaml"));
  EXPECT_EQ(gpu.distributed_type, "MULTI_GPU");
  EXPECT_EQ(gpu.gpu_ids, "all");
  EXPECT_EQ(gpu.mixed_precision, "fp16");
  EXPECT_EQ(gpu.use_cpu, false);
  ClusterConfig node = accel::launcher::load_config_file(fixture("multi_node.yaml"));
  EXPECT_EQ(node.num_machines, 2);
  EXPECT_EQ(node.machine_rank, 1);
  EXPECT_EQ(node.num_processes, 16);
  EXPECT_EQ(node.main_process_ip, "10.0.0.1");
  EXPECT_EQ(node.main_process_port, 29500);
}

TEST(ConfigFile, FsdpFixtureKeepsSectionAsPassthrough) {
  ClusterConfig c = accel::launcher::load_config_file(fixture("fsdp2.yaml"));
  EXPECT_EQ(c.distributed_type, "FSDP");
  ASSERT_TRUE(c.passthrough.count("fsdp_config"));
  EXPECT_EQ(accel::launcher::passthrough_scalar(c, "fsdp_config", "fsdp_version"), "2");
  EXPECT_EQ(accel::launcher::passthrough_scalar(c, "fsdp_config", "fsdp_transformer_layer_cls_to_wrap"),
            "BertLayer");
  EXPECT_EQ(accel::launcher::passthrough_scalar(c, "fsdp_config", "nope"), std::nullopt);
  EXPECT_EQ(accel::launcher::passthrough_scalar(c, "dynamo_config", "dynamo_backend"), std::nullopt);
}

// Every top-level key some Accelerate release writes (0.2 to 1.15, read from each release's
// ClusterConfig), with the values those releases write.
TEST(ConfigFile, EveryKeyAnyAccelerateReleaseWritesIsAccepted) {
  const std::string text =
      "compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_CPU\nmixed_precision: 'no'\nuse_cpu: "
      "true\n"
      "debug: false\nnum_processes: 2\nmachine_rank: 0\nnum_machines: 1\ngpu_ids: all\nmain_process_ip: "
      "null\n"
      "main_process_port: null\nrdzv_backend: static\nsame_network: true\nmain_training_function: main\n"
      "enable_cpu_affinity: false\nfp8_config: {}\ndeepspeed_config: {}\nfsdp_config: {}\n"
      "parallelism_config: {}\nmegatron_lm_config: {}\nipex_config:\n  ipex: false\n  use_xpu: false\n"
      "mpirun_config:\n  mpirun_ccl: 1\n  mpirun_hostfile: /home/user/hostfile\ntp_config:\n  tp_size: 1\n"
      "downcast_bf16: 'no'\ntpu_name: null\ntpu_zone: null\ntpu_use_cluster: false\ntpu_use_sudo: false\n"
      "command_file: null\ncommands: null\ntpu_vm: null\ntpu_env: []\ndynamo_config: {}\n";
  const ClusterConfig c = accel::launcher::parse_config_text(text, "all.yaml");
  for (const char* key : {"ipex_config", "mpirun_config", "tp_config", "tpu_env", "dynamo_config"})
    EXPECT_TRUE(c.passthrough.count(key)) << key;
  EXPECT_EQ(accel::launcher::passthrough_scalar(c, "ipex_config", "ipex"), "false");
  // The legacy keys of releases before 0.6 (fp16) and 0.18 (dynamo_backend) are migrated.
  EXPECT_EQ(accel::launcher::parse_config_text("distributed_type: NO\nfp16: true\ndynamo_backend: 'NO'\n",
                                               "old.yaml")
                .mixed_precision,
            "fp16");
  const auto entries = accel::launcher::passthrough_entries(c, "mpirun_config");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0], (std::pair<std::string, std::string>{"mpirun_ccl", "1"}));
  EXPECT_EQ(entries[1], (std::pair<std::string, std::string>{"mpirun_hostfile", "/home/user/hostfile"}));
}

TEST(ConfigFile, JsonFixtures) {
  // `accelerate config default` writes JSON text even into default_config.yaml.
  ClusterConfig d = accel::launcher::load_config_file(fixture("default_cpu.yaml"));
  EXPECT_EQ(d.distributed_type, "NO");
  EXPECT_EQ(d.mixed_precision, "no");
  EXPECT_EQ(d.use_cpu, true);
  EXPECT_EQ(d.same_network, false);
  EXPECT_EQ(accel::launcher::passthrough_scalar(d, "downcast_bf16"), "false");
  ClusterConfig j = accel::launcher::load_config_file(fixture("multi_cpu.json"));
  EXPECT_EQ(j.distributed_type, "MULTI_CPU");
  EXPECT_EQ(j.num_processes, 2);
  EXPECT_EQ(j.passthrough.at("downcast_bf16"), "'no'\n");  // a JSON string stays a string
}

TEST(ConfigFile, SavedYamlIsByteIdenticalToAccelerates) {
  // PyYAML's safe_dump layout: sorted keys, 'NO'/'no' quoted, lists unindented.
  for (const char* name :
       {"single_cpu.yaml", "multi_cpu.yaml", "multi_gpu.yaml", "multi_node.yaml", "fsdp2.yaml", "fsdp1.yaml",
        "fsdp2_offload.yaml", "fsdp2_cpu.yaml", "deepspeed_zero1.yaml", "deepspeed_zero2.yaml",
        "deepspeed_zero3.yaml", "multi_cpu_mpirun.yaml", "multi_cpu_ipex_mpirun.yaml",
        "legacy_0_x_fp16.accelerate_updated.yaml", "legacy_0_1x_dynamo.accelerate_updated.yaml"}) {
    SCOPED_TRACE(name);
    ClusterConfig c = accel::launcher::load_config_file(fixture(name));
    EXPECT_EQ(accel::launcher::config_to_yaml(c), slurp(fixture(name)));
  }
  ClusterConfig j = accel::launcher::load_config_file(fixture("multi_cpu.json"));
  EXPECT_EQ(accel::launcher::config_to_json(j), slurp(fixture("multi_cpu.json")));
}

TEST(ConfigFile, RoundTripSaveLoad) {
  TmpDir tmp;
  for (const char* name :
       {"single_cpu.yaml", "multi_node.yaml", "fsdp2.yaml", "default_cpu.yaml", "multi_cpu.json"}) {
    SCOPED_TRACE(name);
    ClusterConfig a = accel::launcher::load_config_file(fixture(name));
    for (const char* ext : {".yaml", ".json"}) {
      const std::string path = tmp.file(std::string("nested/dir/out") + ext);
      accel::launcher::save_config_file(a, path);
      ClusterConfig b = accel::launcher::load_config_file(path);
      EXPECT_EQ(accel::launcher::config_to_yaml(a), accel::launcher::config_to_yaml(b));
      EXPECT_EQ(a.passthrough, b.passthrough);
      EXPECT_EQ(a.num_processes, b.num_processes);
      EXPECT_EQ(a.main_process_port, b.main_process_port);
    }
  }
  // Every typed field, the accel extension included, survives.
  ClusterConfig c;
  c.compute_environment = "LOCAL_MACHINE";
  c.distributed_type = "MULTI_CPU";
  c.mixed_precision = "bf16";
  c.use_cpu = true;
  c.debug = true;
  c.num_processes = 4;
  c.num_machines = 2;
  c.machine_rank = 1;
  c.gpu_ids = "0,1";
  c.main_process_ip = "192.168.1.2";
  c.main_process_port = 0;
  c.rdzv_backend = "c10d";
  c.same_network = false;
  c.main_training_function = "main";
  c.enable_cpu_affinity = true;
  c.gradient_accumulation_steps = 8;
  const std::string path = tmp.file("all.yaml");
  accel::launcher::save_config_file(c, path);
  ClusterConfig d = accel::launcher::load_config_file(path);
  EXPECT_EQ(d.gpu_ids, "0,1");
  EXPECT_EQ(d.main_process_port, 0);
  EXPECT_EQ(d.gradient_accumulation_steps, 8);
  EXPECT_EQ(d.enable_cpu_affinity, true);
  EXPECT_EQ(d.same_network, false);
  EXPECT_EQ(d.rdzv_backend, "c10d");
  EXPECT_EQ(slurp(path),
            "compute_environment: LOCAL_MACHINE\n"
            "debug: true\n"
            "distributed_type: MULTI_CPU\n"
            "enable_cpu_affinity: true\n"
            "gpu_ids: 0,1\n"
            "gradient_accumulation_steps: 8\n"
            "machine_rank: 1\n"
            "main_process_ip: 192.168.1.2\n"
            "main_process_port: 0\n"
            "main_training_function: main\n"
            "mixed_precision: bf16\n"
            "num_machines: 2\n"
            "num_processes: 4\n"
            "rdzv_backend: c10d\n"
            "same_network: false\n"
            "use_cpu: true\n");
}

TEST(ConfigFile, UnsetFieldsAreOmittedAndSaveIsAtomic) {
  TmpDir tmp;
  ClusterConfig c;
  c.distributed_type = "NO";
  const std::string path = tmp.file("a/b/c.yaml");
  accel::launcher::save_config_file(c, path);
  EXPECT_EQ(slurp(path), "distributed_type: 'NO'\n");
  // Overwrite: no temporary file is left next to it.
  c.num_processes = 1;
  accel::launcher::save_config_file(c, path);
  EXPECT_EQ(slurp(path), "distributed_type: 'NO'\nnum_processes: 1\n");
  EXPECT_EQ(fs::list_dir(tmp.file("a/b")).size(), 1u);
  // Invalid values are refused before anything is written.
  c.mixed_precision = "fp64";
  EXPECT_THROW(accel::launcher::save_config_file(c, tmp.file("bad.yaml")), accel::InputError);
  EXPECT_FALSE(fs::exists(tmp.file("bad.yaml")));
}

TEST(ConfigFile, LegacyFp16AndDynamoBackendAreMigrated) {
  ClusterConfig a = accel::launcher::load_config_file(fixture("legacy_0_x_fp16.yaml"));
  EXPECT_EQ(a.mixed_precision, "fp16");
  EXPECT_EQ(a.num_processes, 2);
  EXPECT_FALSE(a.main_process_ip.has_value());    // null
  EXPECT_FALSE(a.main_process_port.has_value());  // null
  EXPECT_EQ(a.passthrough.at("deepspeed_config"), "{}\n");
  ClusterConfig b = accel::launcher::parse_config_text("distributed_type: NO\nfp16: false\n", "x.yaml");
  EXPECT_EQ(b.mixed_precision, "no");
  ClusterConfig c =
      accel::launcher::parse_config_text("distributed_type: NO\nfp16: true\nmixed_precision: bf16\n", "x");
  EXPECT_EQ(c.mixed_precision, "bf16");  // an explicit mixed_precision wins, as in Accelerate
  ClusterConfig d = accel::launcher::load_config_file(fixture("legacy_0_1x_dynamo.yaml"));
  EXPECT_EQ(accel::launcher::passthrough_scalar(d, "dynamo_config", "dynamo_backend"), "INDUCTOR");
  EXPECT_EQ(d.passthrough.count("dynamo_backend"), 0u);
  ClusterConfig e = accel::launcher::parse_config_text("distributed_type: NO\ndynamo_backend: 'NO'\n", "x");
  EXPECT_EQ(e.passthrough.at("dynamo_config"), "{}\n");
  EXPECT_EQ(accel::launcher::config_to_yaml(e), "distributed_type: 'NO'\n");  // empty sections dropped
}

TEST(ConfigFile, UpdateMatchesAccelerateConfigUpdate) {
  for (const char* name : {"legacy_0_x_fp16", "legacy_0_1x_dynamo", "default_cpu"}) {
    SCOPED_TRACE(name);
    ClusterConfig c = accel::launcher::load_config_file(fixture(std::string(name) + ".yaml"));
    accel::launcher::apply_accelerate_defaults(c);
    EXPECT_EQ(accel::launcher::config_to_yaml(c),
              slurp(fixture(std::string(name) + ".accelerate_updated.yaml")));
  }
}

TEST(ConfigFile, MalformedYamlNamesFileLineAndColumn) {
  std::string m = load_error("distributed_type: NO\nnum_processes: [1,\nuse_cpu: true\n");
  EXPECT_NE(m.find("cfg.yaml:"), std::string::npos) << m;
  EXPECT_NE(m.find("malformed YAML"), std::string::npos) << m;
  EXPECT_NE(m.find("HINT"), std::string::npos) << m;
  m = load_error("distributed_type: NO\nnum_processes: 1\n  use_cpu: true\n");
  EXPECT_NE(m.find("cfg.yaml:3:10: malformed YAML: illegal map value"), std::string::npos) << m;
  // Through a file: the path is in the message.
  TmpDir tmp;
  const std::string path = tmp.file("broken.yaml");
  std::ofstream(path) << "distributed_type: NO\nmixed_precision: 'no\n";
  try {
    accel::launcher::load_config_file(path);
    ADD_FAILURE() << "no error";
  } catch (const accel::InputError& e) {
    const std::string msg = e.what_without_backtrace();
    EXPECT_NE(msg.find(path + ":"), std::string::npos) << msg;
  }
  m = load_error("- a\n- b\n");
  EXPECT_NE(m.find("expected a mapping"), std::string::npos) << m;
  m = load_error("");
  EXPECT_NE(m.find("empty"), std::string::npos) << m;
}

TEST(ConfigFile, UnknownKeyNamesClosestValidKey) {
  std::string m = load_error("distributed_type: NO\nnum_proceses: 2\n");
  EXPECT_NE(m.find("cfg.yaml:2:1: unknown key 'num_proceses'; did you mean 'num_processes'?"),
            std::string::npos)
      << m;
  m = load_error("distributed_type: NO\nmixed_precison: bf16\n");
  EXPECT_NE(m.find("did you mean 'mixed_precision'"), std::string::npos) << m;
  try {
    accel::launcher::load_config_file(fixture("invalid_keys.yaml"));
    ADD_FAILURE() << "no error";
  } catch (const accel::InputError& e) {
    const std::string msg = e.what_without_backtrace();
    EXPECT_NE(msg.find("invalid_keys.yaml:14:1: unknown key 'invalid_key'"), std::string::npos) << msg;
  }
}

TEST(ConfigFile, WrongTypeNamesKeyValueAndExpectedType) {
  std::string m = load_error("distributed_type: MULTI_CPU\nnum_processes: two\n");
  EXPECT_NE(m.find("cfg.yaml:2:16: key 'num_processes' has value 'two', expected an integer"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("HINT: write it like `num_processes: 2`"), std::string::npos) << m;
  m = load_error("distributed_type: NO\nuse_cpu: maybe\n");
  EXPECT_NE(m.find("key 'use_cpu' has value 'maybe', expected a boolean (true or false)"), std::string::npos)
      << m;
  m = load_error("distributed_type: NO\nmain_process_port: 1.5\n");
  EXPECT_NE(m.find("key 'main_process_port' has value '1.5', expected an integer"), std::string::npos) << m;
  m = load_error("distributed_type: NO\nmain_process_ip: [a, b]\n");
  EXPECT_NE(m.find("key 'main_process_ip' has value a list, expected a string"), std::string::npos) << m;
  m = load_error("distributed_type: NO\nnum_machines: {a: 1}\n");
  EXPECT_NE(m.find("key 'num_machines' has value a mapping, expected an integer"), std::string::npos) << m;
}

TEST(ConfigFile, ValuesAreValidated) {
  std::string m = load_error("distributed_type: NO\nmixed_precision: fp64\n");
  EXPECT_NE(m.find("mixed_precision is 'fp64', expected one of no, fp16, bf16, fp8"), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean 'fp16'"), std::string::npos) << m;
  m = load_error("distributed_type: MULTI_GPUS\n");
  EXPECT_NE(m.find("distributed_type is 'MULTI_GPUS', expected one of NO, MULTI_CPU, MULTI_GPU"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("did you mean 'MULTI_GPU'"), std::string::npos) << m;
  m = load_error("distributed_type: MULTI_CPU\nnum_processes: 0\n");
  EXPECT_NE(m.find("num_processes is 0, expected an integer >= 1 (or -1"), std::string::npos) << m;
  EXPECT_NO_THROW(
      accel::launcher::parse_config_text("distributed_type: MULTI_CPU\nnum_processes: -1\n", "x"));
  m = load_error("distributed_type: MULTI_CPU\nmain_process_port: 70000\n");
  EXPECT_NE(m.find("main_process_port is 70000, expected 0..65535"), std::string::npos) << m;
  m = load_error("distributed_type: MULTI_CPU\nmain_process_port: -1\n");
  EXPECT_NE(m.find("main_process_port is -1"), std::string::npos) << m;
  m = load_error("distributed_type: MULTI_CPU\nnum_machines: 2\nmachine_rank: 2\n");
  EXPECT_NE(m.find("machine_rank is 2, expected 0..1"), std::string::npos) << m;
  m = load_error("distributed_type: MULTI_GPU\ngpu_ids: first\n");
  EXPECT_NE(m.find("gpu_ids is 'first'"), std::string::npos) << m;
  m = load_error("compute_environment: MY_LAPTOP\ndistributed_type: NO\n");
  EXPECT_NE(m.find("compute_environment is 'MY_LAPTOP'"), std::string::npos) << m;
  m = load_error("num_processes: 2\n");
  EXPECT_NE(m.find("a `distributed_type` must be specified"), std::string::npos) << m;
  // SageMaker files have their own keys and distributed types.
  EXPECT_NO_THROW(
      accel::launcher::parse_config_text("compute_environment: AMAZON_SAGEMAKER\ndistributed_type: "
                                         "DATA_PARALLEL\nec2_instance_type: ml.p3.2xlarge\n"
                                         "iam_role_name: r\nregion: us-east-1\n",
                                         "x"));
}

TEST(ConfigFile, MissingFileAndFolder) {
  TmpDir tmp;
  try {
    accel::launcher::load_config_file(tmp.file("nope.yaml"));
    ADD_FAILURE();
  } catch (const accel::InputError& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("does not exist. HINT"), std::string::npos);
  }
  fs::create_directories(tmp.file("d"));
  EXPECT_THROW(accel::launcher::load_config_file(tmp.file("d")), accel::InputError);
}

TEST(ConfigFile, DefaultPaths) {
  TmpDir tmp;
  const char* vars[] = {"ACCEL_CONFIG_FILE", "HF_HOME", "XDG_CACHE_HOME", "HOME"};
  std::map<std::string, std::optional<std::string>> saved;
  for (const char* v : vars)
    saved[v] = std::getenv(v) ? std::optional<std::string>(std::getenv(v)) : std::nullopt;
  unsetenv("ACCEL_CONFIG_FILE");
  unsetenv("HF_HOME");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", tmp.file("home").c_str(), 1);
  EXPECT_EQ(accel::launcher::default_config_path(), tmp.file("home/.cache/accel/default_config.yaml"));
  EXPECT_EQ(accel::launcher::accelerate_default_config_path(),
            tmp.file("home/.cache/huggingface/accelerate/default_config.yaml"));
  EXPECT_EQ(accel::launcher::find_default_config(), "");
  setenv("XDG_CACHE_HOME", tmp.file("xdg").c_str(), 1);
  EXPECT_EQ(accel::launcher::accelerate_default_config_path(),
            tmp.file("xdg/huggingface/accelerate/default_config.yaml"));
  setenv("HF_HOME", tmp.file("hf").c_str(), 1);
  EXPECT_EQ(accel::launcher::accelerate_default_config_path(), tmp.file("hf/accelerate/default_config.yaml"));
  // Accelerate's file is used when accel has none; accel's own wins when both exist.
  fs::create_directories(tmp.file("hf/accelerate"));
  fs::copy_file(fixture("multi_cpu.yaml"), tmp.file("hf/accelerate/default_config.yaml"));
  EXPECT_EQ(accel::launcher::find_default_config(), tmp.file("hf/accelerate/default_config.yaml"));
  setenv("ACCEL_CONFIG_FILE", tmp.file("mine.yaml").c_str(), 1);
  EXPECT_EQ(accel::launcher::default_config_path(), tmp.file("mine.yaml"));
  EXPECT_EQ(accel::launcher::find_default_config(), tmp.file("hf/accelerate/default_config.yaml"));
  fs::copy_file(fixture("single_cpu.yaml"), tmp.file("mine.yaml"));
  EXPECT_EQ(accel::launcher::find_default_config(), tmp.file("mine.yaml"));
  for (const auto& [k, v] : saved) {
    if (v) {
      setenv(k.c_str(), v->c_str(), 1);
    } else {
      unsetenv(k.c_str());
    }
  }
}

TEST(ConfigFile, ClosestMatch) {
  EXPECT_EQ(accel::launcher::closest_match("num_proceses", accel::launcher::known_config_keys()),
            "num_processes");
  EXPECT_EQ(accel::launcher::closest_match("gpuids", accel::launcher::known_config_keys()), "gpu_ids");
  EXPECT_EQ(accel::launcher::closest_match("x", {}), "");
}

TEST(ConfigFile, StringsAreQuotedLikePyYaml) {
  // Outputs checked against PyYAML 6 safe_dump({"k": s}).
  const std::vector<std::pair<std::string, std::string>> cases = {{"no", "'no'"},
                                                                  {"NO", "'NO'"},
                                                                  {"on", "'on'"},
                                                                  {"y", "y"},
                                                                  {"true", "'true'"},
                                                                  {"null", "'null'"},
                                                                  {"~", "'~'"},
                                                                  {"", "''"},
                                                                  {"all", "all"},
                                                                  {"0,1", "0,1"},
                                                                  {"0", "'0'"},
                                                                  {"1.5", "'1.5'"},
                                                                  {"1e8", "1e8"},
                                                                  {"10.0.0.1", "10.0.0.1"},
                                                                  {" a", "' a'"},
                                                                  {"a: b", "'a: b'"},
                                                                  {"a #b", "'a #b'"},
                                                                  {"a#b", "a#b"},
                                                                  {"#a", "'#a'"},
                                                                  {"-a", "-a"},
                                                                  {"-", "'-'"},
                                                                  {"'a", "'''a'"},
                                                                  {"a'b", "a'b"},
                                                                  {"2001-12-14", "'2001-12-14'"},
                                                                  {"0x1F", "'0x1F'"},
                                                                  {"1_000", "'1_000'"},
                                                                  {"1:20", "'1:20'"},
                                                                  {".inf", "'.inf'"},
                                                                  {"a:", "'a:'"},
                                                                  {"~/hostfile", "~/hostfile"},
                                                                  {"+1", "'+1'"},
                                                                  {"-1", "'-1'"},
                                                                  {"<<", "'<<'"},
                                                                  {"=", "'='"},
                                                                  {"ünï", "\"\\xFCn\\xEF\""}};
  for (const auto& [in, out] : cases) {
    ClusterConfig c;
    c.distributed_type = "NO";
    c.main_process_ip = in;
    const std::string yaml = accel::launcher::config_to_yaml(c);
    EXPECT_EQ(yaml, "distributed_type: 'NO'\nmain_process_ip: " + out + "\n") << "for '" << in << "'";
    // ... and reads back as the same string.
    EXPECT_EQ(accel::launcher::parse_config_text(yaml, "x").main_process_ip, in) << "for '" << in << "'";
  }
}
