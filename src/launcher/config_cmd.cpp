// `accel config [default|update]`: the interactive questionnaire (Accelerate's questions and
// order, FSDP and DeepSpeed ZeRO included, limited to what accel supports), the non-interactive default
// config, the schema update, and the flag parser shared by the config / env / estimate-memory commands.
#include "accel/core/error.h"
#include "accel/core/fs.h"
#include "accel/core/strings.h"
#include "accel/launcher/cli.h"
#include "accel/launcher/config_file.h"
#include "accel/launcher/questionnaire.h"
#include "accel/launcher/sharding.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace accel::launcher {

// ---- flag parsing ----------------------------------------------------------------------------
namespace detail {

std::string ParsedArgs::get(const std::string& name, const std::string& fallback) const {
  auto it = flags.find(name);
  if (it == flags.end() || it->second.empty()) return fallback;
  return it->second.back();
}

ParsedArgs parse_flags(const std::vector<std::string>& args, const std::vector<FlagSpec>& specs,
                       const std::string& command) {
  auto canonical = [](std::string s) {
    // --foo-bar and --foo_bar are the same flag (as in Accelerate's parser).
    for (size_t i = 2; i < s.size(); ++i) {
      if (s[i] == '-') s[i] = '_';
    }
    return s;
  };
  ParsedArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      out.help = true;
      continue;
    }
    if (a == "--") {
      out.positional.insert(out.positional.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (a.size() < 2 || a[0] != '-' || (a.size() > 1 && std::isdigit(static_cast<unsigned char>(a[1])))) {
      out.positional.push_back(a);
      continue;
    }
    std::string name = a;
    std::optional<std::string> inline_value;
    if (auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
      name = a.substr(0, eq);
      inline_value = a.substr(eq + 1);
    }
    name = canonical(name);
    const FlagSpec* spec = nullptr;
    for (const auto& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (!spec) {
      std::vector<std::string> names = {"--help"};
      for (const auto& s : specs) names.push_back(s.name);
      std::string near = closest_match(name, names);
      throw UsageError(c10::str("unknown flag '", a, "'",
                                near.empty() ? "" : "; did you mean '" + near + "'?", " HINT: see `", command,
                                " --help`."));
    }
    auto& values = out.flags[spec->name];
    if (spec->nargs == 0) {
      if (inline_value) {
        throw UsageError(c10::str("flag ", spec->name, " takes no value (got '", a, "'). HINT: see `",
                                  command, " --help`."));
      }
      values.push_back("true");
      continue;
    }
    if (inline_value) {
      values.push_back(*inline_value);
      continue;
    }
    auto is_value = [&](size_t j) {
      return j < args.size() && !(args[j].size() > 1 && args[j][0] == '-' &&
                                  !std::isdigit(static_cast<unsigned char>(args[j][1])));
    };
    if (!is_value(i + 1)) {
      throw UsageError(c10::str("flag ", spec->name, " needs a value. HINT: see `", command, " --help`."));
    }
    values.push_back(args[++i]);
    if (spec->nargs < 0) {
      while (is_value(i + 1)) values.push_back(args[++i]);
    }
  }
  return out;
}

}  // namespace detail

namespace {

using detail::FlagSpec;
using detail::ParsedArgs;
using detail::UsageError;

std::optional<int> parse_int(const std::string& s) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<bool> parse_yes_no(const std::string& s) {
  const std::string l = lower(s);
  if (l == "yes" || l == "y") return true;
  if (l == "no" || l == "n") return false;
  return std::nullopt;
}

// Reads answers line by line; every question goes through ask().
class Prompter {
 public:
  Prompter(std::istream& in, std::ostream& out, bool echo) : in_(in), out_(out), echo_(echo) {}

  // Asks `question` until `convert` accepts the answer (it returns an error message or "").
  // An empty answer takes `default_answer` when there is one.
  std::string ask(const std::string& question, const std::optional<std::string>& default_answer,
                  const std::function<std::string(const std::string&)>& check) {
    while (true) {
      out_ << question << std::flush;
      std::string line;
      if (!std::getline(in_, line)) {
        out_ << "\n" << std::flush;
        throw InputError(
            c10::str("standard input ended before the questionnaire was complete (question: \"",
                     trim(question), "\"). HINT: answer every question; to script it, pipe one ",
                     "answer per line (an empty line takes the default), or use `accel config default`."));
      }
      std::string answer = trim(line);
      if (echo_) out_ << answer << "\n";
      if (answer.empty() && default_answer) answer = *default_answer;
      const std::string error = check(answer);
      if (error.empty()) return answer;
      out_ << error << "\n";
    }
  }

  bool ask_yes_no(const std::string& question, bool default_value) {
    std::string a = ask(question, default_value ? "yes" : "no", [](const std::string& s) {
      return parse_yes_no(s) ? "" : "Please enter yes or no.";
    });
    return *parse_yes_no(a);
  }

  int ask_int(const std::string& question, std::optional<int> default_value, int min_value, int max_value,
              const std::string& error_message,
              const std::function<std::string(int)>& extra_check = nullptr) {
    std::optional<std::string> def;
    if (default_value) def = std::to_string(*default_value);
    std::string a = ask(question, def, [&](const std::string& s) -> std::string {
      auto v = parse_int(s);
      if (!v || *v < min_value || *v > max_value) return error_message;
      if (extra_check) return extra_check(*v);
      return "";
    });
    return *parse_int(a);
  }

  // A numbered menu; the answer may be the number or the option's name (case-insensitive).
  size_t ask_options(const std::string& question, const std::vector<std::string>& options,
                     size_t default_index) {
    out_ << question << "\n";
    for (size_t i = 0; i < options.size(); ++i) out_ << "  " << i << ") " << options[i] << "\n";
    const std::string prompt =
        c10::str("Enter a number or a name [", default_index, ": ", options[default_index], "]: ");
    // A name wins over a number, so "1" in the menu {1, 2} is the option "1", not the entry 1.
    auto pick = [&](const std::string& s) -> std::optional<size_t> {
      for (size_t i = 0; i < options.size(); ++i) {
        if (lower(options[i]) == lower(s)) return i;
      }
      if (auto v = parse_int(s); v && *v >= 0 && static_cast<size_t>(*v) < options.size()) {
        return static_cast<size_t>(*v);
      }
      return std::nullopt;
    };
    std::string a = ask(prompt, options[default_index], [&](const std::string& s) -> std::string {
      if (pick(s)) return "";
      return c10::str("Please enter a number from 0 to ", options.size() - 1, " or one of the names above.");
    });
    return *pick(a);
  }

 private:
  std::istream& in_;
  std::ostream& out_;
  bool echo_;
};

// ---- help texts -------------------------------------------------------------------------------

const char* kConfigHelp =
    "usage: accel config [--config_file PATH]\n"
    "       accel config default [--config_file PATH] [--mixed_precision no|fp16|bf16]\n"
    "       accel config update [--config_file PATH]\n"
    "\n"
    "Create or update the launch configuration file that `accel launch` reads. The file uses\n"
    "Hugging Face Accelerate's keys, so an Accelerate default_config.yaml works too.\n"
    "\n"
    "subcommands:\n"
    "  (none)    ask a few questions (compute environment, machine type, machines, DeepSpeed ZeRO or\n"
    "            FSDP sharding, processes, GPU ids, mixed precision, ...) in Accelerate's order and\n"
    "            save the answers as Accelerate would. Enter takes the default shown in brackets.\n"
    "            Answers may also be piped, one per line.\n"
    "  default   write a config for this machine without asking (CUDA devices found: one process\n"
    "            per GPU; none: one CPU process). Refuses to overwrite an existing file.\n"
    "  update    rewrite an existing (possibly old-format) config in the current schema.\n"
    "\n"
    "options:\n"
    "  --config_file PATH  where to save (default: $ACCEL_CONFIG_FILE, else\n"
    "                      ~/.cache/accel/default_config.yaml). A .json name writes JSON.\n"
    "  -h, --help          show this help\n"
    "\n"
    "Run `accel config default --help` or `accel config update --help` for their options.\n";

const char* kDefaultHelp =
    "usage: accel config default [--config_file PATH] [--mixed_precision no|fp16|bf16]\n"
    "\n"
    "Write a basic config for this machine without asking questions (like `accelerate config\n"
    "default`): with CUDA devices, num_processes = their count (distributed_type MULTI_GPU when\n"
    "more than one); without, one CPU process (use_cpu: true). An existing file is not overwritten.\n"
    "\n"
    "options:\n"
    "  --config_file PATH        where to save (default: $ACCEL_CONFIG_FILE, else\n"
    "                            ~/.cache/accel/default_config.yaml)\n"
    "  --mixed_precision MODE    no (default), fp16 or bf16\n"
    "  -h, --help                show this help\n";

const char* kUpdateHelp =
    "usage: accel config update [--config_file PATH]\n"
    "\n"
    "Load an existing config (old Accelerate formats included: `fp16: true`, top-level\n"
    "`dynamo_backend`) and rewrite it in the current schema, with Accelerate's defaults filled in.\n"
    "\n"
    "options:\n"
    "  --config_file PATH  the file to update (default: accel's default config if it exists, else\n"
    "                      Accelerate's ~/.cache/huggingface/accelerate/default_config.yaml)\n"
    "  -h, --help          show this help\n";

int usage_error(const std::string& msg) {
  std::cerr << "accel config: error: " << msg << "\n";
  return 2;
}

int run_interactive(const ParsedArgs& a) {
  const std::string path = a.get("--config_file", default_config_path());
  // Piped answers are not echoed by a terminal: write them after their prompts.
  ClusterConfig config = run_config_questionnaire(std::cin, std::cout, !isatty(STDIN_FILENO));
  save_config_file(config, path);
  std::cout << "accel configuration saved at " << path << "\n";
  return 0;
}

int run_default(const ParsedArgs& a) {
  const std::string path = a.get("--config_file", default_config_path());
  const std::string mp = lower(a.get("--mixed_precision", "no"));
  if (mp != "no" && mp != "fp16" && mp != "bf16") {
    return usage_error(c10::str("--mixed_precision is '", mp, "', expected one of no, fp16, bf16."));
  }
  if (fs::exists(path)) {
    std::cerr << "accel config default: configuration already exists at " << path
              << ", will not override. HINT: run `accel config` to change it, `accel config update` to "
                 "upgrade it, or pass a different --config_file.\n";
    return 1;
  }
  save_config_file(basic_config(mp, cuda_device_count()), path);
  std::cout << "accel configuration saved at " << path << "\n";
  return 0;
}

int run_update(const ParsedArgs& a) {
  std::string path = a.get("--config_file");
  if (path.empty()) path = find_default_config();
  if (path.empty()) {
    std::cerr << "accel config update: no config file found at " << default_config_path() << " or "
              << accelerate_default_config_path()
              << ". HINT: pass one with --config_file, or create one with `accel config`.\n";
    return 1;
  }
  if (!fs::exists(path)) {
    std::cerr << "accel config update: the config file " << path
              << " does not exist. HINT: pass an existing file with --config_file.\n";
    return 1;
  }
  ClusterConfig config = load_config_file(path);
  apply_accelerate_defaults(config);
  save_config_file(config, path);
  std::cout << "Successfully updated the configuration file at " << path << ".\n";
  return 0;
}

}  // namespace

// ---- the questionnaire -----------------------------------------------------------------------

namespace {

// "key: value" lines of a passthrough section; values already YAML text.
std::string section_text(const std::map<std::string, std::string>& entries) {
  std::string text;
  for (const auto& [k, v] : entries) text += k + ": " + v + "\n";
  return text;
}

// DeepSpeed's ZeRO questions, in `accelerate config`'s order and wording, limited to what accel
// runs: no JSON file, no NVMe offload, no MoE. zero3_init_flag is written false (it has no meaning
// here) without asking, as Accelerate writes it after its own question.
std::string ask_deepspeed(Prompter& p) {
  std::map<std::string, std::string> ds;
  const std::vector<std::string> stages = {"0", "1", "2", "3"};
  const size_t stage = p.ask_options("What should be your DeepSpeed's ZeRO optimization stage?", stages, 2);
  ds["zero_stage"] = stages[stage];
  if (stage >= 2) {
    const std::vector<std::string> devices = {"none", "cpu"};
    ds["offload_optimizer_device"] = devices[p.ask_options("Where to offload optimizer states?", devices, 0)];
    ds["offload_param_device"] = devices[p.ask_options("Where to offload parameters?", devices, 0)];
  }
  ds["gradient_accumulation_steps"] =
      std::to_string(p.ask_int("How many gradient accumulation steps you're passing in your script? [1]: ", 1,
                               1, 1 << 20, "Please enter an integer >= 1."));
  if (p.ask_yes_no("Do you want to use gradient clipping? [yes/NO]: ", false)) {
    const ShardingSetting& clip = *find_sharding_setting("gradient_clipping");
    const std::string value = p.ask("What is the gradient clipping value? [1.0]: ", "1.0",
                                    [&](const std::string& a) -> std::string {
                                      try {
                                        normalize_setting_value(clip, a);
                                        return "";
                                      } catch (const std::invalid_argument&) {
                                        return "Please enter a number >= 0, e.g. 1.0.";
                                      }
                                    });
    ds["gradient_clipping"] = normalize_setting_value(clip, value);
  }
  if (stage == 3) {
    const bool save16 =
        p.ask_yes_no("Do you want to save 16-bit model weights when using ZeRO Stage-3? [yes/NO]: ", false);
    ds["zero3_save_16bit_model"] = save16 ? "true" : "false";
  }
  ds["zero3_init_flag"] = "false";
  return section_text(ds);
}

// FSDP's questions, in `accelerate config`'s order and wording (version 1 and 2 ask different
// ones); the answers are written under Accelerate's keys and spellings.
std::string ask_fsdp(Prompter& p) {
  std::map<std::string, std::string> f;
  auto yes_no = [&](const char* key, const std::string& question, bool default_value) {
    const bool b = p.ask_yes_no(question, default_value);
    f[key] = b ? "true" : "false";
    return b;
  };
  const size_t version = p.ask_options("What should be your FSDP version? [2]: ", {"1", "2"}, 1) + 1;
  f["fsdp_version"] = std::to_string(version);
  if (version == 1) {
    // Accelerate stores FSDP1's sharding strategy under fsdp_reshard_after_forward.
    const auto& strategies = fsdp_sharding_strategies();
    f["fsdp_reshard_after_forward"] =
        strategies[p.ask_options("What should be your sharding strategy?", strategies, 0)];
  } else {
    yes_no("fsdp_reshard_after_forward", "Do you want to enable resharding after forward? [YES/no]: ", true);
  }
  yes_no("fsdp_offload_params", "Do you want to offload parameters and gradients to CPU? [yes/NO]: ", false);
  const std::vector<std::string> policies = find_sharding_setting("fsdp_auto_wrap_policy")->choices;
  const size_t policy = p.ask_options("What should be your auto wrap policy?", policies, 0);
  f["fsdp_auto_wrap_policy"] = policies[policy];
  if (policy == 0) {
    const bool own = p.ask_yes_no(
        "Do you want to use the model's own layer classes to wrap (accel's BERT: BertLayer)? [yes/NO]: ",
        false);
    if (!own) {
      const std::string classes = p.ask(
          "Specify the comma-separated list of transformer layer class names (case-sensitive) to wrap, e.g. "
          "`BertLayer`, `BertLayer,BertEmbeddings` ...? : ",
          std::nullopt, [](const std::string& a) -> std::string {
            return trim(a).empty() ? "Please enter one or more class names, e.g. BertLayer." : "";
          });
      f["fsdp_transformer_layer_cls_to_wrap"] = yaml_quote(classes);
    }
  } else if (policy == 1) {
    const int min_params = p.ask_int(
        "What should be your FSDP's minimum number of parameters for Default Auto Wrapping Policy? [1e8]: ",
        100000000, 0, std::numeric_limits<int>::max(), "Please enter an integer >= 0.");
    f["fsdp_min_num_params"] = std::to_string(min_params);
  }
  if (version == 1) {
    const std::vector<std::string> prefetch = find_sharding_setting("fsdp_backward_prefetch")->choices;
    f["fsdp_backward_prefetch"] =
        prefetch[p.ask_options("What should be your FSDP's backward prefetch policy?", prefetch, 0)];
  }
  const std::vector<std::string> dict_types =
      version == 1 ? std::vector<std::string>{"FULL_STATE_DICT", "LOCAL_STATE_DICT", "SHARDED_STATE_DICT"}
                   : std::vector<std::string>{"SHARDED_STATE_DICT", "FULL_STATE_DICT"};
  f["fsdp_state_dict_type"] =
      dict_types[p.ask_options("What should be your FSDP's state dict type?", dict_types, 0)];
  if (version == 1) {
    yes_no("fsdp_forward_prefetch",
           "Do you want to enable FSDP's forward prefetch policy? [yes/NO]: ", false);
    yes_no("fsdp_use_orig_params",
           "Do you want to enable FSDP's `use_orig_params` feature? [YES/no]: ", true);
  }
  const bool efficient =
      yes_no("fsdp_cpu_ram_efficient_loading",
             "Do you want to enable CPU RAM efficient model loading (only rank 0 reads the "
             "weights)? [YES/no]: ",
             true);
  if (version == 1) {
    if (efficient) {
      f["fsdp_sync_module_states"] = "true";
    } else {
      yes_no(
          "fsdp_sync_module_states",
          "Do you want each individually wrapped FSDP unit to broadcast module parameters from rank 0 at the "
          "start? [YES/no]: ",
          true);
    }
  }
  yes_no("fsdp_activation_checkpointing",
         "Do you want to enable FSDP activation checkpointing? [yes/NO]: ", false);
  return section_text(f);
}

}  // namespace

ClusterConfig run_config_questionnaire(std::istream& in, std::ostream& out, bool echo_answers) {
  Prompter p(in, out, echo_answers);
  ClusterConfig c;
  p.ask_options("In which compute environment are you running?", {"This machine"}, 0);
  c.compute_environment = "LOCAL_MACHINE";

  const std::vector<std::string> kTypes = {"NO", "MULTI_CPU", "MULTI_GPU"};
  const size_t type = p.ask_options("Which type of machine are you using?",
                                    {"No distributed training", "multi-CPU", "multi-GPU"}, 0);
  std::string dt = kTypes[type];
  const bool multi = dt != "NO";

  int machine_rank = 0, num_machines = 1;
  bool same_network = true, debug = false;
  std::string rdzv_backend = "static";
  if (multi) {
    num_machines = p.ask_int(
        "How many different machines will you use (use more than 1 for multi-node training)? [1]: ", 1, 1,
        1 << 20, "Please enter an integer >= 1.");
    if (num_machines > 1) {
      std::vector<std::string> ranks;
      for (int i = 0; i < num_machines; ++i) ranks.push_back(std::to_string(i));
      machine_rank = static_cast<int>(p.ask_options("What is the rank of this machine?", ranks, 0));
      c.main_process_ip = p.ask("What is the IP address of the machine that will host the main process? ",
                                std::nullopt, [](const std::string& s) -> std::string {
                                  if (s.empty() || s.find(' ') != std::string::npos) {
                                    return "Please enter an IP address or host name.";
                                  }
                                  return "";
                                });
      c.main_process_port =
          p.ask_int("What is the port you will use to communicate with the main process? [29500]: ", 29500, 0,
                    65535, "Please enter a port number (0 to 65535).");
      same_network = p.ask_yes_no(
          "Are all the machines on the same local network? Answer `no` if nodes are on the "
          "cloud and/or on different network hosts [YES/no]: ",
          true);
      if (!same_network) {
        rdzv_backend =
            p.ask("What rendezvous backend will you use? ('static', 'c10d', ...) [static]: ", "static",
                  [](const std::string&) { return std::string(); });
      }
    }
    debug = p.ask_yes_no(
        "Should distributed operations be checked while running for errors? This can avoid timeout "
        "issues but will be slower. [yes/NO]: ",
        false);
  }
  bool use_cpu = dt == "MULTI_CPU";
  if (dt == "NO") {
    use_cpu = p.ask_yes_no(
        "Do you want to run your training on CPU only (even if a GPU is available)? [yes/NO]: ", false);
  }

  // Sharded data parallel: DeepSpeed's ZeRO, then FSDP, as Accelerate asks them (both drive accel's
  // sharded engine; on CPUs too, where Accelerate asks neither).
  bool deepspeed = false;
  if (multi) {
    deepspeed = p.ask_yes_no("Do you want to use DeepSpeed? [yes/NO]: ", false);
    if (deepspeed) {
      dt = "DEEPSPEED";
      c.passthrough["deepspeed_config"] = ask_deepspeed(p);
    } else if (p.ask_yes_no("Do you want to use FullyShardedDataParallel? [yes/NO]: ", false)) {
      dt = "FSDP";
      c.passthrough["fsdp_config"] = ask_fsdp(p);
    }
  }
  c.distributed_type = dt;

  int num_processes = 1;
  if (multi) {
    const std::string what = use_cpu ? "processes" : "GPU(s)";
    num_processes = p.ask_int(
        c10::str("How many ", what, " should be used for distributed training? [1]: "), 1, 1, 1 << 20,
        "Please enter an integer >= 1.", [&](int n) -> std::string {
          if (dt == "MULTI_GPU" && num_machines == 1 && n == 1) {
            return "multi-GPU on one machine needs at least 2 GPUs; enter 2 or more (or start again and "
                   "choose "
                   "`No distributed training`).";
          }
          if (n % num_machines != 0) {
            return c10::str(
                "The number of processes (all machines together) must be a multiple of the number of "
                "machines (",
                num_machines, ").");
          }
          return "";
        });
  }
  if ((dt == "NO" || dt == "MULTI_GPU") && !use_cpu) {
    c.gpu_ids = p.ask(
        "What GPU(s) (by id) should be used for training on this machine as a comma-separated list? [all]: ",
        "all", [](const std::string& s) -> std::string {
          static const std::regex kIds(R"(all|[0-9]+(\s*,\s*[0-9]+)*)");
          return std::regex_match(s, kIds) ? "" : "Please enter `all` or device ids such as 0,1.";
        });
  }
  const std::vector<std::string> kPrecisions = {"no", "fp16", "bf16"};
  c.mixed_precision = kPrecisions[p.ask_options("Do you wish to use mixed precision?", kPrecisions, 0)];
  // With DeepSpeed the accumulation steps were asked among its questions (deepspeed_config).
  const int accumulation =
      deepspeed ? 1
                : p.ask_int("How many gradient accumulation steps you're passing in your script? [1]: ", 1, 1,
                            1 << 20, "Please enter an integer >= 1.");

  // The fields Accelerate's questionnaire writes for the same answers (its ClusterConfig.to_dict).
  c.debug = debug;
  c.use_cpu = use_cpu;
  c.num_processes = num_processes;
  c.num_machines = num_machines;
  c.machine_rank = machine_rank;
  c.rdzv_backend = rdzv_backend;
  c.same_network = same_network;
  c.main_training_function = "main";
  c.enable_cpu_affinity = false;
  c.passthrough["downcast_bf16"] = "'no'\n";
  c.passthrough["tpu_env"] = "[]\n";
  c.passthrough["tpu_use_cluster"] = "false\n";
  c.passthrough["tpu_use_sudo"] = "false\n";
  // accel extension: written only when not the default, so the file stays readable by Accelerate.
  if (accumulation != 1) c.gradient_accumulation_steps = accumulation;
  return c;
}

ClusterConfig basic_config(const std::string& mixed_precision, int cuda_devices) {
  ClusterConfig c;
  c.compute_environment = "LOCAL_MACHINE";
  c.mixed_precision = mixed_precision;
  if (cuda_devices > 0) {
    c.num_processes = cuda_devices;
    c.use_cpu = false;
    c.distributed_type = cuda_devices > 1 ? "MULTI_GPU" : "NO";
  } else {
    c.use_cpu = true;
    c.num_processes = 1;
    c.distributed_type = "NO";
  }
  c.debug = false;
  c.enable_cpu_affinity = false;
  apply_accelerate_defaults(c);
  return c;
}

// ---- entry point -----------------------------------------------------------------------------

int config_main(const std::vector<std::string>& args) {
  std::string sub;
  std::vector<std::string> rest = args;
  if (!rest.empty() && (rest[0] == "default" || rest[0] == "update")) {
    sub = rest[0];
    rest.erase(rest.begin());
  }
  const std::string command = sub.empty() ? "accel config" : "accel config " + sub;
  try {
    std::vector<FlagSpec> specs = {{"--config_file", 1}};
    if (sub == "default") specs.push_back({"--mixed_precision", 1});
    ParsedArgs a = detail::parse_flags(rest, specs, command);
    if (a.help) {
      std::cout << (sub == "default" ? kDefaultHelp : sub == "update" ? kUpdateHelp : kConfigHelp);
      return 0;
    }
    if (!a.positional.empty()) {
      std::string near = closest_match(a.positional[0], {"default", "update"});
      return usage_error(c10::str("unexpected argument '", a.positional[0], "'",
                                  sub.empty() ? "; did you mean '" + near + "'?" : "", " HINT: see `",
                                  command, " --help`."));
    }
    if (sub == "default") return run_default(a);
    if (sub == "update") return run_update(a);
    return run_interactive(a);
  } catch (const UsageError& e) {
    std::cerr << command << ": error: " << e.what_without_backtrace() << "\n";
    return 2;
  } catch (const std::exception& e) {
    const auto* ce = dynamic_cast<const c10::Error*>(&e);
    std::cerr << command << ": error: " << (ce ? ce->what_without_backtrace() : e.what()) << "\n";
    return 1;
  }
}

}  // namespace accel::launcher
