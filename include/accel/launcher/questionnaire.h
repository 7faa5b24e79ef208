// The pieces of `accel config` and `accel env` that tests drive directly: the interactive
// questionnaire (Accelerate's questions, in its order, limited to what accel supports), the
// non-interactive default config, the environment report, and the small flag parser the
// config / env / estimate-memory commands share.
#pragma once

#include "accel/core/error.h"
#include "accel/launcher/config_file.h"

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

namespace accel::launcher {

/// Asks the `accel config` questions, reading one answer per line from `in` and writing the
/// prompts to `out` (a terminal and piped answers both work; no raw mode). Enter takes the
/// default shown in brackets; a bad answer prints why and asks again; menus accept the name or
/// the number. Multi-CPU and multi-GPU also ask "DeepSpeed?" (then the ZeRO stage, offload,
/// accumulation, clipping and 16-bit-save questions) and otherwise "FullyShardedDataParallel?"
/// (then FSDP's questions for version 1 or 2), in Accelerate's order. Returns the config
/// Accelerate's questionnaire would produce for the same answers.
/// Throws accel::InputError when `in` ends before the last question. `echo_answers` writes each
/// answer after its prompt (for piped input, where no terminal echoes it).
ClusterConfig run_config_questionnaire(std::istream& in, std::ostream& out, bool echo_answers = false);

/// What `accel config default` writes (Accelerate's write_basic_config): mixed_precision (no,
/// fp16, bf16 or fp8), num_processes = the CUDA device count (1 without CUDA, then use_cpu),
/// distributed_type MULTI_GPU above one device, else NO; Accelerate's defaults filled in.
ClusterConfig basic_config(const std::string& mixed_precision, int cuda_device_count);

/// Number of CUDA devices LibTorch sees (0 on a CPU-only build or machine).
int cuda_device_count();

/// Writes the `accel env` report (a copy-paste block for bug reports) to `out`. `config_file`
/// is the file to show; empty means find_default_config().
void write_env_report(std::ostream& out, const std::string& config_file);

namespace detail {

/// A command-line usage mistake (unknown flag, missing value): commands exit with code 2.
class UsageError : public ::accel::Error {
 public:
  using ::accel::Error::Error;
};

/// One flag a command accepts. `nargs`: 0 a switch, 1 one value, -1 one or more values.
struct FlagSpec {
  std::string name;  // "--config_file"; "--config-file" and "--config_file=X" are accepted too
  int nargs = 1;
};

struct ParsedArgs {
  std::map<std::string, std::vector<std::string>> flags;  // by canonical name ("--config_file")
  std::vector<std::string> positional;
  bool help = false;  // -h / --help was given

  bool has(const std::string& name) const { return flags.count(name) > 0; }
  /// The flag's (last) value, or `fallback` when absent.
  std::string get(const std::string& name, const std::string& fallback = "") const;
};

/// Parses `args` against `specs` (-h/--help is always accepted). Throws UsageError naming the
/// closest valid flag for an unknown one, or the flag whose value is missing. `command` names
/// the command in messages ("accel config").
ParsedArgs parse_flags(const std::vector<std::string>& args, const std::vector<FlagSpec>& specs,
                       const std::string& command);

}  // namespace detail
}  // namespace accel::launcher
