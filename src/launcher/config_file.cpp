// The launch configuration file: loading (YAML/JSON via yaml-cpp, Accelerate's keys, legacy
// migrations, typed checks with file:line:column messages) and saving (PyYAML-compatible YAML or
// JSON, written atomically).
#include "accel/launcher/config_file.h"
#include "accel/core/fs.h"

#include "accel/core/error.h"
#include "accel/core/strings.h"
#include "accel/launcher/sharding.h"

#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

namespace accel::launcher {
namespace {

const std::vector<std::string> kDistributedTypes = {
    "NO",        "MULTI_CPU", "MULTI_GPU",    "MULTI_NPU", "MULTI_MLU", "MULTI_SDAA", "MULTI_MUSA",
    "MULTI_XPU", "MULTI_HPU", "MULTI_NEURON", "DEEPSPEED", "FSDP",      "XLA",        "MEGATRON_LM"};
const std::vector<std::string> kSageMakerDistributedTypes = {"NO", "DATA_PARALLEL", "MODEL_PARALLEL"};
const std::vector<std::string> kMixedPrecisions = {"no", "fp16", "bf16", "fp8"};
const std::vector<std::string> kComputeEnvironments = {"LOCAL_MACHINE", "AMAZON_SAGEMAKER"};

// Top-level keys of Accelerate's ClusterConfig (config_args.py) that accel keeps as passthrough.
// Every release's keys count: ipex_config was written by 0.19 to 1.12, tp_config by 1.4 to 1.6.
const std::vector<std::string> kPassthroughKeys = {
    "command_file",       "commands",    "deepspeed_config", "downcast_bf16",      "dynamo_config",
    "fp8_config",         "fsdp_config", "ipex_config",      "megatron_lm_config", "mpirun_config",
    "parallelism_config", "tp_config",   "tpu_env",          "tpu_name",           "tpu_use_cluster",
    "tpu_use_sudo",       "tpu_vm",      "tpu_zone"};
// Extra keys of Accelerate's SageMakerConfig (accepted when compute_environment is AMAZON_SAGEMAKER).
const std::vector<std::string> kSageMakerKeys = {"additional_args",
                                                 "base_job_name",
                                                 "ec2_instance_type",
                                                 "iam_role_name",
                                                 "image_uri",
                                                 "profile",
                                                 "py_version",
                                                 "pytorch_version",
                                                 "region",
                                                 "sagemaker_inputs_file",
                                                 "sagemaker_metrics_file",
                                                 "transformers_version"};
// Keys read into ClusterConfig's typed fields.
const std::vector<std::string> kTypedKeys = {"compute_environment",
                                             "debug",
                                             "distributed_type",
                                             "enable_cpu_affinity",
                                             "gpu_ids",
                                             "gradient_accumulation_steps",
                                             "machine_rank",
                                             "main_process_ip",
                                             "main_process_port",
                                             "main_training_function",
                                             "mixed_precision",
                                             "num_machines",
                                             "num_processes",
                                             "rdzv_backend",
                                             "same_network",
                                             "use_cpu"};

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string where(const std::string& source, const YAML::Mark& mark) {
  if (mark.is_null()) return source;
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

// Scalars as YAML 1.1 (PyYAML) resolves them, so that accel reads what Accelerate reads.
bool is_yaml11_bool(const std::string& s, bool* value) {
  static const std::set<std::string> kTrue = {"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"};
  static const std::set<std::string> kFalse = {"no",    "No",  "NO",  "false", "False",
                                               "FALSE", "off", "Off", "OFF"};
  if (kTrue.count(s)) {
    if (value) *value = true;
    return true;
  }
  if (kFalse.count(s)) {
    if (value) *value = false;
    return true;
  }
  return false;
}

bool is_yaml11_null(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

bool resolves_to_non_string(const std::string& s) {
  static const std::regex kInt(
      R"([-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)");
  static const std::regex kFloat(
      R"([-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))");
  static const std::regex kTimestamp(
      R"([0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)?)");
  return is_yaml11_bool(s, nullptr) || is_yaml11_null(s) || s == "<<" || s == "=" ||
         std::regex_match(s, kInt) || std::regex_match(s, kFloat) || std::regex_match(s, kTimestamp);
}

// Length of the well-formed UTF-8 sequence at s[i] (1-4) and its code point, or 0 when the bytes
// there are not well-formed UTF-8 (stray continuation byte, overlong form, surrogate, > U+10FFFF,
// truncated sequence).
size_t utf8_sequence(const std::string& s, size_t i, uint32_t* cp) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t len = 0;
  uint32_t v = 0, min = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2, v = c & 0x1Fu, min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3, v = c & 0x0Fu, min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4, v = c & 0x07u, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0u) != 0x80u) return 0;
    v = (v << 6) | (byte(i + k) & 0x3Fu);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

// yaml-cpp 0.7 decodes the escapes "\_" and "\N" of double-quoted scalars to the single bytes
// 0xA0 and 0x85 instead of the UTF-8 of U+00A0 and U+0085. The file itself is checked to be UTF-8,
// so such stray bytes can only come from there: re-encode every byte that is not part of
// well-formed UTF-8 as the code point of the same value.
std::string fix_yaml_cpp_escapes(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    const size_t len = utf8_sequence(s, i, &cp);
    if (len > 0) {
      out.append(s, i, len);
      i += len;
    } else {
      const auto c = static_cast<unsigned char>(s[i++]);
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

void append_utf8_escaped(std::string& out, const std::string& s) {
  // Double-quoted YAML with PyYAML's escapes for non-ASCII (allow_unicode=False). A byte that is
  // not part of well-formed UTF-8 (only possible in a config built in code: files are checked
  // on load) is written as \xNN.
  out += '"';
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    size_t len = utf8_sequence(s, i, &cp);
    if (len == 0) {
      cp = static_cast<unsigned char>(s[i]);
      len = 1;
    }
    i += len;
    char buf[16];
    if (cp == '"' || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp >= 0x20 && cp < 0x7F) {
      out += static_cast<char>(cp);
    } else if (cp < 0x100) {
      std::snprintf(buf, sizeof buf, "\\x%02X", cp);
      out += buf;
    } else if (cp < 0x10000) {
      std::snprintf(buf, sizeof buf, "\\u%04X", cp);
      out += buf;
    } else {
      std::snprintf(buf, sizeof buf, "\\U%08X", cp);
      out += buf;
    }
  }
  out += '"';
}

// A string as PyYAML's safe_dump writes it: plain when it reads back as the same string,
// else single-quoted (or double-quoted when it holds non-printable / non-ASCII characters).
std::string yaml_string(const std::string& s) {
  bool special = false;
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7F) special = true;
  }
  std::string out;
  if (special) {
    append_utf8_escaped(out, s);
    return out;
  }
  bool quote = s.empty() || resolves_to_non_string(s) || s.front() == ' ' || s.back() == ' ' ||
               s.back() == ':' || s.find(": ") != std::string::npos || s.find(" #") != std::string::npos ||
               std::string("#,[]{}&*!|>'\"%@`").find(s.front()) != std::string::npos ||
               ((s.front() == '-' || s.front() == '?' || s.front() == ':') && (s.size() == 1 || s[1] == ' '));
  if (!quote) return s;
  out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  out += "'";
  return out;
}

// ---- emitting YAML nodes in PyYAML's block style -------------------------------------------

bool node_is_string_scalar(const YAML::Node& n) {
  return n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str";
}

std::string scalar_text(const YAML::Node& n) {
  if (n.IsNull()) return "null";
  if (node_is_string_scalar(n)) return yaml_string(n.Scalar());
  // A plain scalar reads back the same way it was read; keep its text.
  if (is_yaml11_null(n.Scalar())) return "null";
  return n.Scalar();
}

void emit_node(std::ostringstream& os, const YAML::Node& n, int indent);

// A mapping's items sorted by key (PyYAML's sort_keys). YAML::Node's operator= writes through to
// the referenced node, so nodes are never assigned here: only an index vector is sorted.
std::vector<std::pair<std::string, YAML::Node>> sorted_items(const YAML::Node& map) {
  std::vector<std::string> keys;
  std::vector<YAML::Node> values;
  for (const auto& kv : map) {
    keys.push_back(kv.first.Scalar());
    values.push_back(kv.second);
  }
  std::vector<size_t> order(keys.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  std::vector<std::pair<std::string, YAML::Node>> items;
  items.reserve(order.size());
  for (size_t i : order) items.emplace_back(keys[i], values[i]);
  return items;
}

// Writes "key: value" lines of a mapping at `indent`; `first_prefix` replaces the indentation of
// the first line (used for "- key: value" inside a sequence).
void emit_map_items(std::ostringstream& os, const YAML::Node& map, int indent,
                    const std::string& first_prefix) {
  bool first = true;
  for (const auto& [key, value] : sorted_items(map)) {
    const std::string k = yaml_string(key);
    os << (first ? first_prefix : std::string(indent, ' '));
    first = false;
    if (k.size() < 128) {
      os << k << ":";
    } else {
      // As PyYAML: a key of 128 characters or more is written as an explicit "? key" / ": value"
      // pair (YAML readers refuse implicit keys over 1024 characters).
      os << "? " << k << "\n" << std::string(indent, ' ') << ":";
    }
    emit_node(os, value, indent);
  }
}

// Emits the value part after "key:" (scalars inline, collections on following lines).
void emit_node(std::ostringstream& os, const YAML::Node& n, int indent) {
  if (n.IsMap()) {
    if (n.size() == 0) {
      os << " {}\n";
      return;
    }
    os << "\n";
    emit_map_items(os, n, indent + 2, std::string(indent + 2, ' '));
  } else if (n.IsSequence()) {
    if (n.size() == 0) {
      os << " []\n";
      return;
    }
    os << "\n";
    for (const auto& item : n) {
      if (item.IsMap() && item.size() > 0) {
        emit_map_items(os, item, indent + 2, std::string(indent, ' ') + "- ");
      } else if (item.IsSequence() || item.IsMap()) {
        os << std::string(indent, ' ') << "-";
        emit_node(os, item, indent + 2);
      } else {
        os << std::string(indent, ' ') << "- " << scalar_text(item) << "\n";
      }
    }
  } else {
    os << " " << scalar_text(n) << "\n";
  }
}

// A node as standalone YAML text in the same style (the form passthrough entries are kept in).
std::string node_to_text(const YAML::Node& n) {
  std::ostringstream os;
  if (n.IsMap() && n.size() > 0) {
    emit_map_items(os, n, 0, "");
  } else if (n.IsSequence() && n.size() > 0) {
    std::ostringstream tmp;
    emit_node(tmp, n, 0);  // "\n- a\n- b\n"
    return tmp.str().substr(1);
  } else if (n.IsMap()) {
    return "{}\n";
  } else if (n.IsSequence()) {
    return "[]\n";
  } else {
    os << scalar_text(n) << "\n";
  }
  return os.str();
}

// The value of a fsdp_config / deepspeed_config entry as one string: a scalar as written, a list
// of scalars joined with ","; std::nullopt for null. `ok` is false for a mapping or nested list.
std::optional<std::string> entry_text(const YAML::Node& v, bool* ok) {
  *ok = true;
  if (v.IsNull()) return std::nullopt;
  if (v.IsScalar()) {
    if (!node_is_string_scalar(v) && is_yaml11_null(v.Scalar())) return std::nullopt;
    return fix_yaml_cpp_escapes(v.Scalar());
  }
  if (v.IsSequence()) {
    std::vector<std::string> items;
    for (const auto& item : v) {
      if (!item.IsScalar()) {
        *ok = false;
        return std::nullopt;
      }
      items.push_back(fix_yaml_cpp_escapes(item.Scalar()));
    }
    return join(items, ",");
  }
  *ok = false;
  return std::nullopt;
}

// Checks the values of a fsdp_config / deepspeed_config section as written in a file. Keys accel
// does not know are left for `accel launch` to warn about.
void check_sharding_section(const std::string& source, const std::string& section, const YAML::Node& node) {
  if (node.IsNull()) return;
  ACCEL_CHECK_INPUT(
      node.IsMap(), where(source, node.Mark()), ": ", section,
      " must be a mapping of `key: value` lines. HINT: re-create the file with `accel config`.");
  const ShardingMode mode = section == "fsdp_config" ? ShardingMode::kFsdp : ShardingMode::kDeepSpeed;
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const ShardingSetting* setting = find_sharding_setting(canonical_sharding_key(section, key));
    const bool steps_key = mode == ShardingMode::kDeepSpeed && key == "gradient_accumulation_steps";
    if (!steps_key && (setting == nullptr || setting->mode != mode)) continue;  // `accel launch` warns
    bool ok = true;
    const std::optional<std::string> text = entry_text(kv.second, &ok);
    ACCEL_CHECK_INPUT(ok, where(source, kv.second.Mark()), ": ", section, ".", key,
                      " must be a single value. HINT: write it like `", key, ": value`.");
    if (!text) continue;
    if (steps_key) {
      int steps = 0;
      auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), steps);
      ACCEL_CHECK_INPUT(ec == std::errc() && p == text->data() + text->size() && steps >= 1,
                        where(source, kv.second.Mark()), ": ", section, ".", key, " is '", *text,
                        "', expected an integer >= 1. HINT: `", key, ": 1`.");
      continue;
    }
    try {
      normalize_setting_value(*setting, *text);
    } catch (const std::invalid_argument& e) {
      throw InputError(c10::str(where(source, kv.second.Mark()), ": ", section, ".", key, " ", e.what(),
                                ". HINT: fix the value, or re-create the file with `accel config`."));
    }
  }
}

// ---- YAML -> JSON for config_to_json --------------------------------------------------------

nlohmann::ordered_json to_json(const YAML::Node& n) {
  if (n.IsNull()) return nullptr;
  if (n.IsMap()) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& [k, v] : sorted_items(n)) j[k] = to_json(v);
    return j;
  }
  if (n.IsSequence()) {
    nlohmann::ordered_json j = nlohmann::ordered_json::array();
    for (const auto& v : n) j.push_back(to_json(v));
    return j;
  }
  const std::string& s = n.Scalar();
  if (node_is_string_scalar(n)) return s;
  bool b = false;
  if (is_yaml11_bool(s, &b)) return b;
  if (is_yaml11_null(s)) return nullptr;
  long long i = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
  if (ec == std::errc() && p == s.data() + s.size()) return i;
  static const std::regex kSimpleFloat(R"([-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)");
  if (std::regex_match(s, kSimpleFloat)) return std::stod(s);
  return s;
}

// ---- typed reads ----------------------------------------------------------------------------

struct Reader {
  const std::string& source;

  [[noreturn]] void type_error(const std::string& key, const YAML::Node& v, const std::string& expected,
                               const std::string& example) const {
    std::string shown = v.IsScalar() ? "'" + v.Scalar() + "'" : (v.IsMap() ? "a mapping" : "a list");
    throw InputError(c10::str(where(source, v.Mark()), ": key '", key, "' has value ", shown, ", expected ",
                              expected, ". HINT: write it like `", key, ": ", example, "`."));
  }

  std::optional<std::string> str(const std::string& key, const YAML::Node& v) const {
    if (v.IsNull()) return std::nullopt;
    if (!v.IsScalar()) type_error(key, v, "a string", "value");
    if (!node_is_string_scalar(v) && is_yaml11_null(v.Scalar())) return std::nullopt;
    return fix_yaml_cpp_escapes(v.Scalar());
  }

  std::optional<int> integer(const std::string& key, const YAML::Node& v, const std::string& example) const {
    if (v.IsNull()) return std::nullopt;
    if (!v.IsScalar()) type_error(key, v, "an integer", example);
    const std::string& s = v.Scalar();
    if (!node_is_string_scalar(v) && is_yaml11_null(s)) return std::nullopt;
    long long value = 0;
    const char* begin = s.data() + (s.size() > 1 && s[0] == '+' ? 1 : 0);
    auto [p, ec] = std::from_chars(begin, s.data() + s.size(), value);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || value < INT32_MIN ||
        value > INT32_MAX) {
      type_error(key, v, "an integer", example);
    }
    return static_cast<int>(value);
  }

  std::optional<bool> boolean(const std::string& key, const YAML::Node& v) const {
    if (v.IsNull()) return std::nullopt;
    if (!v.IsScalar()) type_error(key, v, "a boolean (true or false)", "false");
    const std::string& s = v.Scalar();
    if (!node_is_string_scalar(v) && is_yaml11_null(s)) return std::nullopt;
    bool b = false;
    if (node_is_string_scalar(v) || !is_yaml11_bool(s, &b))
      type_error(key, v, "a boolean (true or false)", "false");
    return b;
  }
};

void check_choice(const std::string& source, const std::string& key, const std::optional<std::string>& value,
                  const std::vector<std::string>& choices) {
  if (!value || contains(choices, *value)) return;
  std::string near = closest_match(*value, choices);
  throw InputError(c10::str(source, ": ", key, " is '", *value, "', expected one of ", join(choices, ", "),
                            ". HINT: ", near.empty() ? "" : "did you mean '" + near + "'? ",
                            "Fix the file or re-create it with `accel config`."));
}

std::string home_dir() {
  if (const char* h = std::getenv("HOME"); h && *h) return h;
  if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_dir) return pw->pw_dir;
  return ".";
}

std::string expand_user(const std::string& p) {
  if (p == "~" || p.rfind("~/", 0) == 0) return home_dir() + p.substr(1);
  return p;
}

// The whole config as one YAML map (typed fields + passthrough), for emitting.
YAML::Node to_node(const ClusterConfig& c) {
  YAML::Node root(YAML::NodeType::Map);
  auto put_str = [&](const char* k, const std::optional<std::string>& v) {
    if (!v) return;
    YAML::Node n(*v);
    n.SetTag("!");  // a string, quoted when needed
    root[k] = n;
  };
  auto put_plain = [&](const char* k, const std::string& text) {
    YAML::Node n(text);
    n.SetTag("?");
    root[k] = n;
  };
  auto put_int = [&](const char* k, const std::optional<int>& v) {
    if (v) put_plain(k, std::to_string(*v));
  };
  auto put_bool = [&](const char* k, const std::optional<bool>& v) {
    if (v) put_plain(k, *v ? "true" : "false");
  };
  put_str("compute_environment", c.compute_environment);
  put_str("distributed_type", c.distributed_type);
  put_str("mixed_precision", c.mixed_precision);
  put_bool("use_cpu", c.use_cpu);
  put_bool("debug", c.debug);
  put_int("num_processes", c.num_processes);
  put_int("num_machines", c.num_machines);
  put_int("machine_rank", c.machine_rank);
  put_str("gpu_ids", c.gpu_ids);
  put_str("main_process_ip", c.main_process_ip);
  put_int("main_process_port", c.main_process_port);
  put_str("rdzv_backend", c.rdzv_backend);
  put_bool("same_network", c.same_network);
  put_str("main_training_function", c.main_training_function);
  put_bool("enable_cpu_affinity", c.enable_cpu_affinity);
  put_int("gradient_accumulation_steps", c.gradient_accumulation_steps);
  for (const auto& [k, text] : c.passthrough) {
    YAML::Node n = YAML::Load(text);
    if (n.IsNull()) continue;                  // Accelerate drops None values on write
    if (n.IsMap() && n.size() == 0) continue;  // ... and empty dicts
    root[k] = n;
  }
  return root;
}

}  // namespace

// ---- public ---------------------------------------------------------------------------------

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::string::npos;
  for (const auto& c : candidates) {
    std::vector<size_t> prev(c.size() + 1), cur(c.size() + 1);
    for (size_t j = 0; j <= c.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= word.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= c.size(); ++j) {
        size_t sub = prev[j - 1] + (std::tolower(static_cast<unsigned char>(word[i - 1])) ==
                                            std::tolower(static_cast<unsigned char>(c[j - 1]))
                                        ? 0
                                        : 1);
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
      }
      std::swap(prev, cur);
    }
    if (prev[c.size()] < best_d) {
      best_d = prev[c.size()];
      best = c;
    }
  }
  return best;
}

const std::vector<std::string>& known_config_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k = kTypedKeys;
    k.insert(k.end(), kPassthroughKeys.begin(), kPassthroughKeys.end());
    std::sort(k.begin(), k.end());
    return k;
  }();
  return keys;
}

std::string default_config_path() {
  if (const char* p = std::getenv("ACCEL_CONFIG_FILE"); p && *p) return p;
  return home_dir() + "/.cache/accel/default_config.yaml";
}

std::string accelerate_default_config_path() {
  std::string hf_home;
  if (const char* h = std::getenv("HF_HOME"); h && *h) {
    hf_home = expand_user(h);
  } else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
    hf_home = expand_user(std::string(x) + "/huggingface");
  } else {
    hf_home = home_dir() + "/.cache/huggingface";
  }
  return hf_home + "/accelerate/default_config.yaml";
}

std::string find_default_config() {
  std::string own = default_config_path();
  if (fs::is_regular_file(own)) return own;
  std::string theirs = accelerate_default_config_path();
  if (fs::is_regular_file(theirs)) return theirs;
  return "";
}

ClusterConfig parse_config_text(const std::string& text, const std::string& source) {
  // YAML files are UTF-8 (PyYAML refuses anything else); yaml-cpp does not check.
  for (size_t i = 0, line = 1, column = 1; i < text.size(); ++column) {
    uint32_t cp = 0;
    const size_t len = utf8_sequence(text, i, &cp);
    if (len == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(text[i])));
      throw InputError(c10::str(source, ":", line, ":", column, ": the file is not valid UTF-8 (byte ", hex,
                                " at offset ", i, "). HINT: save the config file as UTF-8."));
    }
    if (cp == '\n') line += 1, column = 0;
    i += len;
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw InputError(c10::str(where(source, e.mark), ": malformed YAML: ", e.msg,
                              ". HINT: check the indentation and the `key: value` syntax on that line, "
                              "or re-create the file with `accel config`."));
  }
  ACCEL_CHECK_INPUT(!root.IsNull(), source,
                    ": the config file is empty. HINT: create one with `accel config` "
                    "or `accel config default`.");
  ACCEL_CHECK_INPUT(root.IsMap(), where(source, root.Mark()),
                    ": expected a mapping of `key: value` lines at the "
                    "top level. HINT: see `accel config --help` for the format.");

  Reader r{source};
  ClusterConfig c;
  const YAML::Node env = root["compute_environment"];
  c.compute_environment = env ? r.str("compute_environment", env) : std::nullopt;
  const bool sagemaker = c.compute_environment && *c.compute_environment == "AMAZON_SAGEMAKER";

  std::optional<bool> legacy_fp16;
  std::optional<std::string> legacy_dynamo;
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (key == "compute_environment") continue;
    if (key == "distributed_type")
      c.distributed_type = r.str(key, v);
    else if (key == "mixed_precision")
      c.mixed_precision = r.str(key, v);
    else if (key == "use_cpu")
      c.use_cpu = r.boolean(key, v);
    else if (key == "debug")
      c.debug = r.boolean(key, v);
    else if (key == "num_processes")
      c.num_processes = r.integer(key, v, "2");
    else if (key == "num_machines")
      c.num_machines = r.integer(key, v, "1");
    else if (key == "machine_rank")
      c.machine_rank = r.integer(key, v, "0");
    else if (key == "gpu_ids")
      c.gpu_ids = r.str(key, v);
    else if (key == "main_process_ip")
      c.main_process_ip = r.str(key, v);
    else if (key == "main_process_port")
      c.main_process_port = r.integer(key, v, "29500");
    else if (key == "rdzv_backend")
      c.rdzv_backend = r.str(key, v);
    else if (key == "same_network")
      c.same_network = r.boolean(key, v);
    else if (key == "main_training_function")
      c.main_training_function = r.str(key, v);
    else if (key == "enable_cpu_affinity")
      c.enable_cpu_affinity = r.boolean(key, v);
    else if (key == "gradient_accumulation_steps")
      c.gradient_accumulation_steps = r.integer(key, v, "1");
    else if (key == "fp16")
      legacy_fp16 = r.boolean(key, v).value_or(false);  // accelerate < 0.8
    else if (key == "dynamo_backend")
      legacy_dynamo = r.str(key, v).value_or("NO");  // accelerate < 0.18
    else if (contains(kPassthroughKeys, key) || (sagemaker && contains(kSageMakerKeys, key))) {
      if (key == "fsdp_config" || key == "deepspeed_config") check_sharding_section(source, key, v);
      c.passthrough[key] = node_to_text(v);
    } else {
      std::vector<std::string> candidates = known_config_keys();
      if (sagemaker) candidates.insert(candidates.end(), kSageMakerKeys.begin(), kSageMakerKeys.end());
      std::string near = closest_match(key, candidates);
      throw InputError(c10::str(
          where(source, kv.first.Mark()), ": unknown key '", key, "'; did you mean '", near,
          "'? HINT: fix or remove that line (accel reads Accelerate's keys: ", "see docs/notes/cli.md)."));
    }
  }
  // Legacy migrations, as Accelerate's BaseConfig.process_config.
  if (legacy_fp16 && !c.mixed_precision) c.mixed_precision = *legacy_fp16 ? "fp16" : "no";
  if (legacy_dynamo) {
    std::string b = *legacy_dynamo;
    c.passthrough["dynamo_config"] =
        (b == "NO" || b == "no") ? "{}\n" : node_to_text(YAML::Load("dynamo_backend: " + yaml_string(b)));
  }
  validate_config(c, source);
  return c;
}

void validate_config(const ClusterConfig& c, const std::string& source) {
  check_choice(source, "compute_environment", c.compute_environment, kComputeEnvironments);
  const bool sagemaker = c.compute_environment && *c.compute_environment == "AMAZON_SAGEMAKER";
  ACCEL_CHECK_INPUT(c.distributed_type.has_value(), source,
                    ": a `distributed_type` must be specified in the config file (one of ",
                    join(kDistributedTypes, ", "),
                    "). HINT: add e.g. `distributed_type: MULTI_CPU`, or re-create "
                    "the file with `accel config`.");
  check_choice(source, "distributed_type", c.distributed_type,
               sagemaker ? kSageMakerDistributedTypes : kDistributedTypes);
  check_choice(source, "mixed_precision", c.mixed_precision, kMixedPrecisions);
  if (c.num_processes) {
    ACCEL_CHECK_INPUT(*c.num_processes >= 1 || *c.num_processes == -1, source, ": num_processes is ",
                      *c.num_processes,
                      ", expected an integer >= 1 (or -1: give it with --num_processes at launch). "
                      "HINT: `num_processes: 2`.");
  }
  if (c.num_machines) {
    ACCEL_CHECK_INPUT(*c.num_machines >= 1, source, ": num_machines is ", *c.num_machines,
                      ", expected an integer >= 1. HINT: `num_machines: 1` for a single machine.");
  }
  if (c.machine_rank) {
    const int machines = c.num_machines.value_or(1);
    ACCEL_CHECK_INPUT(*c.machine_rank >= 0 && *c.machine_rank < machines, source, ": machine_rank is ",
                      *c.machine_rank, ", expected 0..", machines - 1, " (num_machines is ", machines,
                      "). HINT: the main machine has rank 0.");
  }
  if (c.main_process_port) {
    ACCEL_CHECK_INPUT(*c.main_process_port >= 0 && *c.main_process_port <= 65535, source,
                      ": main_process_port is ", *c.main_process_port,
                      ", expected 0..65535 (0 picks a free port). HINT: `main_process_port: 29500`.");
  }
  if (c.gradient_accumulation_steps) {
    ACCEL_CHECK_INPUT(*c.gradient_accumulation_steps >= 1, source, ": gradient_accumulation_steps is ",
                      *c.gradient_accumulation_steps, ", expected an integer >= 1.");
  }
  if (c.gpu_ids && *c.gpu_ids != "all") {
    static const std::regex kIds(R"(\s*[0-9]+\s*(,\s*[0-9]+\s*)*,?)");
    ACCEL_CHECK_INPUT(std::regex_match(*c.gpu_ids, kIds), source, ": gpu_ids is '", *c.gpu_ids,
                      "', expected 'all' or a comma-separated list of device ids. HINT: `gpu_ids: 0,1`.");
  }
}

ClusterConfig load_config_file(const std::string& path) {
  ACCEL_CHECK_INPUT(fs::exists(path), "config file ", path,
                    " does not exist. HINT: create it with "
                    "`accel config --config_file ",
                    path, "` or pass an existing file to --config_file.");
  ACCEL_CHECK_INPUT(!fs::is_directory(path), "config file ", path,
                    " is a folder, expected a YAML file. "
                    "HINT: pass the file inside it, e.g. ",
                    path, "/default_config.yaml.");
  std::ifstream in(path, std::ios::binary);
  ACCEL_CHECK_INPUT(in.good(), "cannot read config file ", path, ": ", std::strerror(errno),
                    ". HINT: check its permissions.");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_config_text(ss.str(), path);
}

std::string config_to_yaml(const ClusterConfig& config) {
  std::ostringstream os;
  YAML::Node root = to_node(config);
  if (root.size() == 0) return "{}\n";
  emit_map_items(os, root, 0, "");
  return os.str();
}

std::string config_to_json(const ClusterConfig& config) {
  return to_json(to_node(config)).dump(2) + "\n";
}

void apply_accelerate_defaults(ClusterConfig& c) {
  if (!c.compute_environment) c.compute_environment = "LOCAL_MACHINE";
  if (!c.num_processes) c.num_processes = (c.distributed_type && *c.distributed_type == "NO") ? 1 : -1;
  if (!c.use_cpu) c.use_cpu = false;
  if (!c.debug) c.debug = false;
  if (!c.enable_cpu_affinity) c.enable_cpu_affinity = false;
  if (!c.machine_rank) c.machine_rank = 0;
  if (!c.num_machines) c.num_machines = 1;
  if (!c.rdzv_backend) c.rdzv_backend = "static";
  if (!c.same_network) c.same_network = false;
  if (!c.main_training_function) c.main_training_function = "main";
  for (const char* k : {"downcast_bf16", "tpu_use_cluster", "tpu_use_sudo"}) {
    if (!c.passthrough.count(k)) c.passthrough[k] = "false";
  }
}

std::optional<std::string> passthrough_scalar(const ClusterConfig& config, const std::string& key,
                                              const std::string& subkey) {
  auto it = config.passthrough.find(key);
  if (it == config.passthrough.end()) return std::nullopt;
  YAML::Node root;
  try {
    root = YAML::Load(it->second);
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
  if (!subkey.empty() && !root.IsMap()) return std::nullopt;
  const YAML::Node n = subkey.empty() ? root : root[subkey];  // copy-constructed: never assign Nodes
  if (!n || !n.IsScalar()) return std::nullopt;
  if (!node_is_string_scalar(n) && is_yaml11_null(n.Scalar())) return std::nullopt;
  return n.Scalar();
}

std::string yaml_quote(const std::string& s) {
  return yaml_string(s);
}

std::vector<std::pair<std::string, std::string>> passthrough_entries(const ClusterConfig& config,
                                                                     const std::string& key) {
  std::vector<std::pair<std::string, std::string>> out;
  auto it = config.passthrough.find(key);
  if (it == config.passthrough.end()) return out;
  YAML::Node root;
  try {
    root = YAML::Load(it->second);
  } catch (const YAML::Exception&) {
    return out;
  }
  if (!root.IsMap()) return out;
  for (const auto& kv : root) {
    bool ok = true;
    if (auto text = entry_text(kv.second, &ok)) out.emplace_back(kv.first.Scalar(), *text);
  }
  return out;
}

void save_config_file(const ClusterConfig& config, const std::string& path) {
  validate_config(config, path);
  const std::string text = ends_with(path, ".json") ? config_to_json(config) : config_to_yaml(config);
  // One durable atomic writer for every file accel writes (accel/core/fs.h): temporary file,
  // fsync, rename, fsync of the folder.
  try {
    fs::write_file_atomic(path, text);
  } catch (const Error& e) {
    throw InputError(c10::str("cannot save config file ", path, ": ", e.what_without_backtrace(),
                              " HINT: pass a writable path with --config_file."));
  }
}

}  // namespace accel::launcher
