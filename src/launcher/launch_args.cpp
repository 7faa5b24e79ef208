// `accel launch` command-line parsing: the flag table, --help text and unknown-flag suggestions.
#include "accel/launcher/launch.h"

#include "accel/core/strings.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <limits>
#include <sstream>

namespace accel::launcher {
namespace {

// kSetting: an FSDP / DeepSpeed setting (sharding.h), kept as typed; kBoolSetting: one of them
// that takes true/false, where a bare flag means true.
enum class Kind { kInt, kDouble, kString, kBool, kSetting, kBoolSetting };

struct FlagSpec {
  const char* name;  // canonical, underscore spelling, without dashes
  char short_name;   // 0 if none
  Kind kind;
  const char* group;
  const char* metavar;
  const char* help;
};

// The flags of `accel launch` other than the FSDP / DeepSpeed settings, in --help order. Names
// and meanings are Accelerate's, except grace_period (accel's own).
const FlagSpec kBaseFlags[] = {
    {"config_file", 0, Kind::kString, "General", "FILE",
     "config file to read defaults from (default: accel's, else Accelerate's default_config.yaml)"},
    {"quiet", 'q', Kind::kBool, "General", nullptr,
     "no [rank i] prefixes and no launcher notes (failures are still reported)"},
    {"debug", 0, Kind::kBool, "General", nullptr, "sets ACCELERATE_DEBUG_MODE=true for the workers"},
    {"help", 'h', Kind::kBool, "General", nullptr, "show this help"},
    {"cpu", 0, Kind::kBool, "Hardware", nullptr, "train on CPU even when GPUs exist (ACCELERATE_USE_CPU)"},
    {"multi_gpu", 0, Kind::kBool, "Hardware", nullptr,
     "accepted for Accelerate compatibility (needs at least 2 processes)"},
    {"num_processes", 0, Kind::kInt, "Resources", "N", "processes in total, over all machines"},
    {"num_machines", 0, Kind::kInt, "Resources", "M", "machines taking part (default 1)"},
    {"mixed_precision", 0, Kind::kString, "Resources", "{no,fp16,bf16}",
     "mixed precision for the workers (default no)"},
    {"gradient_accumulation_steps", 0, Kind::kInt, "Resources", "K",
     "micro-steps per optimizer step (ACCELERATE_GRADIENT_ACCUMULATION_STEPS, default 1)"},
    {"num_cpu_threads_per_process", 0, Kind::kInt, "Resources", "T",
     "OMP_NUM_THREADS for each worker (default: CPUs / local processes, or your OMP_NUM_THREADS)"},
    {"gpu_ids", 0, Kind::kString, "Distributed", "IDS",
     "GPUs to use on this machine, e.g. 0,1 (CUDA_VISIBLE_DEVICES; default all)"},
    {"machine_rank", 0, Kind::kInt, "Distributed", "R", "rank of this machine, 0..M-1 (default 0)"},
    {"main_process_ip", 0, Kind::kString, "Distributed", "IP",
     "address of machine 0 (required with several machines; one machine uses 127.0.0.1)"},
    {"main_process_port", 0, Kind::kInt, "Distributed", "P",
     "rendezvous port on machine 0 (default 29500; 0 or busy on one machine: a free port)"},
    {"max_restarts", 0, Kind::kInt, "Distributed", "K",
     "restart all local workers up to K times when one fails (default 0)"},
    {"monitor_interval", 0, Kind::kDouble, "Distributed", "S",
     "seconds between checks of the workers (default 0.1)"},
    {"grace_period", 0, Kind::kDouble, "Distributed", "S",
     "seconds between SIGTERM and SIGKILL when stopping workers (default 5)"},
    {"same_network", 0, Kind::kBool, "Distributed", nullptr, "accepted for Accelerate compatibility"},
    {"rdzv_backend", 0, Kind::kString, "Distributed", "static", "only 'static' is supported"},
    {"tee", 't', Kind::kBool, "Logging", nullptr,
     "also write each rank's output to log files (in --log_dir, default ./accel_logs)"},
    {"log_dir", 0, Kind::kString, "Logging", "DIR",
     "write each rank's stdout/stderr to DIR/attempt_<k>/rank_<i>.{stdout,stderr}.log"},
};

// Every flag: the base ones, then --use_fsdp and the FSDP settings, then --use_deepspeed and the
// DeepSpeed settings (the setting table of sharding.h), in --help order.
const std::vector<FlagSpec>& all_flags() {
  static const std::vector<FlagSpec> flags = [] {
    std::vector<FlagSpec> f(std::begin(kBaseFlags), std::end(kBaseFlags));
    f.push_back({"use_fsdp", 0, Kind::kBool, "FSDP", nullptr,
                 "sharded data parallel with FSDP's settings (as distributed_type: FSDP)"});
    for (const auto& s : sharding_settings())
      if (s.is_flag && s.mode == ShardingMode::kFsdp)
        f.push_back({s.name, 0, s.kind == SettingKind::kBool ? Kind::kBoolSetting : Kind::kSetting, "FSDP",
                     s.kind == SettingKind::kBool ? "[true|false]" : "V", s.help});
    f.push_back({"use_deepspeed", 0, Kind::kBool, "DeepSpeed", nullptr,
                 "sharded data parallel with DeepSpeed's ZeRO settings (as distributed_type: DEEPSPEED)"});
    for (const auto& s : sharding_settings())
      if (s.is_flag && s.mode == ShardingMode::kDeepSpeed)
        f.push_back({s.name, 0, s.kind == SettingKind::kBool ? Kind::kBoolSetting : Kind::kSetting,
                     "DeepSpeed", s.kind == SettingKind::kBool ? "[true|false]" : "V", s.help});
    return f;
  }();
  return flags;
}

// Accelerate flags accel recognises but does not implement: a clear error instead of a guess.
const char* const kUnsupportedExact[] = {"tpu",
                                         "use_megatron_lm",
                                         "use_parallelism_config",
                                         "module",
                                         "no_python",
                                         "enable_cpu_affinity",
                                         "role",
                                         "rdzv_conf",
                                         "main_training_function",
                                         "downcast_bf16",
                                         "vm",
                                         "env",
                                         "mpirun_hostfile",
                                         "aws_access_key_id",
                                         "aws_secret_access_key"};
const char* const kUnsupportedPrefixes[] = {"dynamo_", "fp8_", "megatron_lm_", "parallelism_config_", "tpu_"};

std::string normalize(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  return lower(std::move(name));
}

const FlagSpec* find_flag(const std::string& canonical) {
  for (const auto& f : all_flags())
    if (canonical == f.name) return &f;
  return nullptr;
}

const FlagSpec* find_short(char c) {
  for (const auto& f : all_flags())
    if (f.short_name == c) return &f;
  return nullptr;
}

bool is_unsupported(const std::string& canonical) {
  for (const char* n : kUnsupportedExact)
    if (canonical == n) return true;
  for (const char* p : kUnsupportedPrefixes)
    if (canonical.rfind(p, 0) == 0) return true;
  return false;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

int parse_int(const std::string& flag, const std::string& v) {
  errno = 0;
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno == ERANGE || x < std::numeric_limits<int>::min() ||
      x > std::numeric_limits<int>::max())
    throw UsageError("--" + flag + " expects an integer, got '" + v + "'");
  return static_cast<int>(x);
}

double parse_double(const std::string& flag, const std::string& v) {
  errno = 0;
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || errno == ERANGE)
    throw UsageError("--" + flag + " expects a number, got '" + v + "'");
  return x;
}

bool is_bool_word(const std::string& v) {
  const std::string s = lower(v);
  return s == "1" || s == "true" || s == "yes" || s == "on" || s == "0" || s == "false" || s == "no" ||
         s == "off";
}

bool parse_bool(const std::string& flag, const std::string& v) {
  const std::string s = normalize(v);
  if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
  if (s == "0" || s == "false" || s == "no" || s == "off") return false;
  throw UsageError("--" + flag + " expects true or false, got '" + v + "'");
}

// torchrun's --tee values: 0-3, or per-rank "0:3,1:1".
bool is_tee_selector(const std::string& v) {
  return !v.empty() && v.find_first_not_of("0123456789:,") == std::string::npos;
}

void set_value(LaunchArgs& a, const FlagSpec& f, const std::string& v, bool has_value) {
  const std::string name = f.name;
  switch (f.kind) {
    case Kind::kSetting:
    case Kind::kBoolSetting:
      a.sharding[name] = has_value ? v : "true";  // checked when the launch is resolved
      return;
    case Kind::kBool: {
      if (name == "tee" && has_value && is_tee_selector(v)) {
        a.tee = v != "0";  // torchrun: 0 none, 1 stdout, 2 stderr, 3 both
        return;
      }
      const bool b = has_value ? parse_bool(name, v) : true;
      if (name == "quiet")
        a.quiet = b;
      else if (name == "debug")
        a.debug = b;
      else if (name == "help")
        a.help = b;
      else if (name == "cpu")
        a.cpu = b;
      else if (name == "multi_gpu")
        a.multi_gpu = b;
      else if (name == "tee")
        a.tee = b;
      else if (name == "use_fsdp")
        a.use_fsdp = b;
      else if (name == "use_deepspeed")
        a.use_deepspeed = b;
      // same_network: accepted, no effect (one rendezvous address is used either way).
      return;
    }
    case Kind::kInt: {
      const int x = parse_int(name, v);
      if (name == "num_processes")
        a.num_processes = x;
      else if (name == "num_machines")
        a.num_machines = x;
      else if (name == "machine_rank")
        a.machine_rank = x;
      else if (name == "main_process_port")
        a.main_process_port = x;
      else if (name == "gradient_accumulation_steps")
        a.gradient_accumulation_steps = x;
      else if (name == "max_restarts")
        a.max_restarts = x;
      else if (name == "num_cpu_threads_per_process")
        a.num_cpu_threads_per_process = x;
      return;
    }
    case Kind::kDouble: {
      const double x = parse_double(name, v);
      if (name == "monitor_interval")
        a.monitor_interval = x;
      else if (name == "grace_period")
        a.grace_period = x;
      return;
    }
    case Kind::kString: {
      if (name == "config_file")
        a.config_file = v;
      else if (name == "main_process_ip")
        a.main_process_ip = v;
      else if (name == "mixed_precision")
        a.mixed_precision = v;
      else if (name == "gpu_ids")
        a.gpu_ids = v;
      else if (name == "log_dir")
        a.log_dir = v;
      else if (name == "rdzv_backend") {
        if (v != "static")
          throw UsageError("--rdzv_backend '" + v +
                           "' is not supported; accel launch only does 'static' rendezvous");
      }
      return;
    }
  }
}

[[noreturn]] void unknown_flag(const std::string& token, const std::string& canonical) {
  if (is_unsupported(canonical))
    throw UsageError("--" + canonical +
                     " is an Accelerate launch flag that accel launch does not support. "
                     "HINT: see `accel launch --help` for the supported flags");
  throw UsageError("unknown flag '" + token + "'; did you mean '" + closest_launch_flag(token) +
                   "'? (see `accel launch --help`)");
}

}  // namespace

std::string closest_launch_flag(const std::string& flag) {
  std::string s = flag;
  while (!s.empty() && s.front() == '-') s.erase(s.begin());
  s = normalize(s.substr(0, s.find('=')));
  const FlagSpec* best = &all_flags()[0];
  size_t best_d = std::numeric_limits<size_t>::max();
  for (const auto& f : all_flags()) {
    const size_t d = edit_distance(s, f.name);
    if (d < best_d) {
      best_d = d;
      best = &f;
    }
  }
  return std::string("--") + best->name;
}

LaunchArgs parse_launch_args(const std::vector<std::string>& args) {
  LaunchArgs a;
  size_t i = 0;
  auto take_program = [&](size_t at) {
    a.program = args[at];
    a.program_args.assign(args.begin() + static_cast<std::ptrdiff_t>(at) + 1, args.end());
  };
  for (; i < args.size(); ++i) {
    const std::string& tok = args[i];
    if (tok == "--") {
      if (i + 1 < args.size()) take_program(i + 1);
      break;
    }
    if (tok.size() < 2 || tok[0] != '-') {
      take_program(i);
      break;
    }
    const FlagSpec* spec = nullptr;
    std::string value;
    bool has_value = false;
    if (tok[1] == '-') {
      const size_t eq = tok.find('=');
      const std::string canonical = normalize(tok.substr(2, eq == std::string::npos ? eq : eq - 2));
      if (eq != std::string::npos) {
        value = tok.substr(eq + 1);
        has_value = true;
      }
      spec = find_flag(canonical);
      if (spec == nullptr) unknown_flag(tok, canonical);
    } else {
      // -q, -t, -h; also -q=... is not meaningful, so only the bare short flag.
      if (tok.size() == 2) spec = find_short(tok[1]);
      if (spec == nullptr) unknown_flag(tok, normalize(tok.substr(1)));
    }
    // Accelerate/torchrun spell --tee with a stream selector ("--tee 3", "--tee 0:3,1:1").
    if (std::string(spec->name) == "tee" && !has_value && i + 1 < args.size() &&
        is_tee_selector(args[i + 1])) {
      value = args[++i];
      has_value = true;
    }
    // --fsdp_offload_params takes true/false like Accelerate's; bare, it means true.
    if (spec->kind == Kind::kBoolSetting && !has_value && i + 1 < args.size() && is_bool_word(args[i + 1])) {
      value = args[++i];
      has_value = true;
    }
    if (spec->kind != Kind::kBool && spec->kind != Kind::kBoolSetting && !has_value) {
      if (i + 1 >= args.size())
        throw UsageError(std::string("--") + spec->name + " needs a value" +
                         (spec->metavar ? std::string(" (") + spec->metavar + ")" : ""));
      value = args[++i];
      has_value = true;
    }
    set_value(a, *spec, value, has_value);
    a.given.insert(spec->name);
  }
  if (a.program.empty() && !a.help)
    throw UsageError(
        "no program given. Usage: accel launch [flags] PROGRAM [ARGS...] (see `accel launch --help`)");
  return a;
}

std::string launch_help() {
  std::ostringstream o;
  o << "usage: accel launch [flags] PROGRAM [ARGS...]\n\n"
       "Runs PROGRAM on N processes (and M machines) with the environment torchrun and Accelerate\n"
       "give their workers (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, ACCELERATE_*, ...).\n"
       "Values not given come from the config file (`accel config`), then the defaults.\n"
       "Flags take `--flag value` or `--flag=value`; `--num-processes` equals `--num_processes`.\n"
       "Everything after PROGRAM is passed to it untouched.\n"
       "Sharded data parallel: --use_fsdp with the FSDP settings, or --use_deepspeed with the ZeRO ones\n"
       "(or distributed_type FSDP / DEEPSPEED in the config file); the workers get Accelerate's FSDP_* /\n"
       "ACCELERATE_DEEPSPEED_* variables. Settings not given take Accelerate's defaults.\n";
  const char* group = "";
  for (const auto& f : all_flags()) {
    if (std::string(group) != f.group) {
      group = f.group;
      o << "\n" << group << ":\n";
    }
    std::string left = "  ";
    if (f.short_name) left += std::string("-") + f.short_name + ", ";
    left += std::string("--") + f.name;
    if (f.metavar) left += std::string(" ") + f.metavar;
    o << left;
    if (left.size() < 40)
      o << std::string(40 - left.size(), ' ');
    else
      o << "\n" << std::string(40, ' ');
    o << f.help << "\n";
  }
  o << "\nExit code: 0 when every worker succeeds; else the failing worker's code (128+signal when\n"
       "it was killed by a signal), 130/143 when the launcher is interrupted, 2 for usage errors.\n";
  return o.str();
}

}  // namespace accel::launcher
