#include "accel/checkpoint/state_folder.h"

#include "accel/checkpoint/safetensors.h"
#include "accel/core/error.h"
#include "accel/core/fs.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <torch/cuda.h>
#include <torch/optim/adagrad.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>

namespace accel::checkpoint {

std::string file_checksum(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ACCEL_CHECK_INPUT(in.good(), "cannot read ", path);
  uint64_t h = 1469598103934665603ULL;
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof(buf));
    std::streamsize n = in.gcount();
    for (std::streamsize i = 0; i < n; ++i) {
      h ^= static_cast<unsigned char>(buf[i]);
      h *= 1099511628211ULL;
    }
  }
  char out[17];
  std::snprintf(out, sizeof(out), "%016llx", static_cast<unsigned long long>(h));
  return out;
}

void check_member_name(const std::string& name, const std::string& folder) {
  const bool ok = !name.empty() && name.find('/') == std::string::npos &&
                  name.find('\\') == std::string::npos && name != "." && name != ".." &&
                  name.find('\0') == std::string::npos;
  ACCEL_CHECK_INPUT(ok, "the checkpoint manifest in ", folder, " names the file '", name,
                    "', which is not a plain file name inside the folder. HINT: the checkpoint was "
                    "tampered with or corrupted; use another checkpoint.");
}

StateFolderWriter::StateFolderWriter(std::string final_dir, const std::string& temp_suffix, bool create)
    : final_(std::move(final_dir)) {
  temp_ = final_ + (temp_suffix.empty() ? ".tmp-" + std::to_string(::getpid()) : temp_suffix);
  if (!create) return;
  std::error_code ec;
  fs::remove_all(temp_, ec);
  fs::create_directories(temp_, ec);
  ACCEL_CHECK(!ec, "save_state: cannot create ", temp_, ": ", ec.message(),
              ". HINT: check that the folder is writable and the disk is not full.");
}

std::string StateFolderWriter::member(const std::string& name) const {
  return fs::join(temp_, name);
}

void StateFolderWriter::write(const std::string& name, const std::string& bytes) {
  fs::write_file_atomic(member(name), bytes);
}

void StateFolderWriter::commit(nlohmann::json header) {
  nlohmann::json files = nlohmann::json::object();
  for (const fs::DirEntry& entry : fs::list_dir(temp_)) {
    if (entry.type != fs::FileType::kRegular) continue;
    const std::string& name = entry.name;
    if (name == kManifestName || name.find(".tmp") != std::string::npos) continue;
    const std::string p = fs::join(temp_, name);
    files[name] = {{"size", fs::file_size(p)}, {"checksum", file_checksum(p)}};
  }
  header["format_version"] = kStateFormatVersion;
  header["files"] = files;
  fs::write_file_atomic(member(kManifestName), header.dump(1));
  fs::fsync_dir(temp_);
  std::error_code ec;
  const std::string old = final_ + ".old-" + std::to_string(::getpid());
  const bool replace = fs::exists(final_);
  if (replace) {
    fs::rename(final_, old, ec);
    ACCEL_CHECK(!ec, "save_state: cannot move the previous ", final_, " aside: ", ec.message());
  }
  fs::rename(temp_, final_, ec);
  ACCEL_CHECK(!ec, "save_state: cannot rename ", temp_, " to ", final_, ": ", ec.message());
  fs::fsync_dir(fs::parent(final_));
  if (replace) fs::remove_all(old, ec);
}

nlohmann::json verify_state_folder(const std::string& dir) {
  ACCEL_CHECK_INPUT(fs::is_directory(dir), "load_state: ", dir,
                    " is not a folder. HINT: pass a folder written by save_state().");
  const std::string manifest = fs::join(dir, kManifestName);
  ACCEL_CHECK_INPUT(fs::exists(manifest), "load_state: ", dir, " has no ", kManifestName,
                    ": it is not a complete accel checkpoint (a save may have been interrupted). "
                    "HINT: load the previous checkpoint.");
  nlohmann::json m;
  try {
    m = nlohmann::json::parse(fs::read_file(manifest, "checkpoint manifest"));
  } catch (const nlohmann::json::exception& e) {
    ACCEL_CHECK_INPUT(false, "load_state: ", manifest, " is not valid JSON (", e.what(), ").");
  }
  ACCEL_CHECK_INPUT(
      m.is_object() && m.contains("format_version") && m.contains("files") && m["files"].is_object(),
      "load_state: ", manifest, " lacks format_version/files.");
  ACCEL_CHECK_INPUT(
      m["format_version"].is_number_integer() && m["format_version"].get<int>() == kStateFormatVersion,
      "load_state: ", manifest, " has format version ", m["format_version"].dump(),
      "; this accel reads version ", kStateFormatVersion, ".");
  for (auto& [name, info] : m["files"].items()) {
    check_member_name(name, dir);
    const std::string p = fs::join(dir, name);
    ACCEL_CHECK_INPUT(info.is_object() && info.contains("size") && info["size"].is_number_unsigned() &&
                          info.contains("checksum") && info["checksum"].is_string(),
                      "load_state: ", manifest, ": the entry of '", name,
                      "' needs {\"size\": <bytes>, \"checksum\": \"<hex>\"}. HINT: the checkpoint was "
                      "tampered with or corrupted; use another checkpoint.");
    // The member itself, not what a symbolic link points to: save_state writes regular files only.
    const std::optional<fs::FileInfo> st = fs::stat(p, /*follow_symlinks=*/false);
    ACCEL_CHECK_INPUT(st.has_value(), "load_state: ", p, " is missing from the checkpoint.");
    ACCEL_CHECK_INPUT(st->type == fs::FileType::kRegular, "load_state: ", p,
                      " is not a regular file (a folder or a symbolic link). HINT: the checkpoint was "
                      "tampered with or corrupted; use another checkpoint.");
    const uint64_t size = st->size;
    const uint64_t expected = info["size"].get<uint64_t>();
    ACCEL_CHECK_INPUT(expected == size, "load_state: ", p, " has ", size, " bytes but the manifest says ",
                      expected, " (truncated or modified). Nothing was loaded.");
    ACCEL_CHECK_INPUT(info["checksum"].get_ref<const std::string&>() == file_checksum(p), "load_state: ", p,
                      " does not match its checksum in the manifest (modified "
                      "or corrupted). Nothing was loaded.");
  }
  return m;
}

std::map<std::string, at::Tensor> capture_rng_states() {
  std::map<std::string, at::Tensor> out;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    out["cpu"] = gen.get_state();
  }
  if (torch::cuda::is_available()) {
    const auto devices = static_cast<size_t>(torch::cuda::device_count());
    for (size_t d = 0; d < devices; ++d) {
      auto gen =
          at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(d)));
      std::lock_guard<std::mutex> lock(gen.mutex());
      out["cuda" + std::to_string(d)] = gen.get_state();
    }
  }
  return out;
}

void restore_rng_states(const std::map<std::string, at::Tensor>& states) {
  for (const auto& [name, state] : states) {
    if (name == "cpu") {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(state.contiguous());
    } else if (name.rfind("cuda", 0) == 0 && torch::cuda::is_available()) {
      const std::string index = name.substr(4);
      if (index.empty() || index.size() > 3 || index.find_first_not_of("0123456789") != std::string::npos)
        continue;
      const size_t d = std::stoul(index);
      if (d >= static_cast<size_t>(torch::cuda::device_count())) continue;
      auto gen =
          at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(d)));
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(state.contiguous());
    }
  }
}

namespace {

template <typename State>
State* state_of(torch::optim::Optimizer& opt, const at::Tensor& p) {
  auto it = opt.state().find(p.unsafeGetTensorImpl());
  return it == opt.state().end() ? nullptr : static_cast<State*>(it->second.get());
}

at::Tensor scalar_i64(int64_t v) {
  return at::full({1}, v, at::kLong);
}

void put(std::map<std::string, at::Tensor>& m, const std::string& k, const at::Tensor& t) {
  if (t.defined()) m[k] = t.detach().cpu().contiguous();
}

}  // namespace

std::pair<std::map<std::string, at::Tensor>, nlohmann::json> optimizer_state(torch::optim::Optimizer& opt) {
  std::map<std::string, at::Tensor> t;
  nlohmann::json groups = nlohmann::json::array();
  std::string kind;
  if (dynamic_cast<torch::optim::AdamW*>(&opt))
    kind = "AdamW";
  else if (dynamic_cast<torch::optim::Adam*>(&opt))
    kind = "Adam";
  else if (dynamic_cast<torch::optim::SGD*>(&opt))
    kind = "SGD";
  else if (dynamic_cast<torch::optim::RMSprop*>(&opt))
    kind = "RMSprop";
  else if (dynamic_cast<torch::optim::Adagrad*>(&opt))
    kind = "Adagrad";
  ACCEL_CHECK(!kind.empty(),
              "save_state: this optimizer type cannot be saved (supported: AdamW, Adam, "
              "SGD, RMSprop, Adagrad). HINT: save it yourself with register_for_checkpointing.");
  int64_t index = 0;
  for (auto& g : opt.param_groups()) {
    nlohmann::json go;
    go["kind"] = kind;
    go["num_params"] = g.params().size();
    // Adam and AdamW options have the same fields.
    auto adam_like = [&go](const auto& o) {
      go.update({{"lr", o.lr()},
                 {"beta1", std::get<0>(o.betas())},
                 {"beta2", std::get<1>(o.betas())},
                 {"eps", o.eps()},
                 {"weight_decay", o.weight_decay()},
                 {"amsgrad", o.amsgrad()}});
    };
    if (kind == "AdamW") {
      adam_like(static_cast<torch::optim::AdamWOptions&>(g.options()));
    } else if (kind == "Adam") {
      adam_like(static_cast<torch::optim::AdamOptions&>(g.options()));
    } else if (kind == "SGD") {
      auto& o = static_cast<torch::optim::SGDOptions&>(g.options());
      go.update({{"lr", o.lr()},
                 {"momentum", o.momentum()},
                 {"dampening", o.dampening()},
                 {"weight_decay", o.weight_decay()},
                 {"nesterov", o.nesterov()}});
    } else if (kind == "RMSprop") {
      auto& o = static_cast<torch::optim::RMSpropOptions&>(g.options());
      go.update({{"lr", o.lr()},
                 {"alpha", o.alpha()},
                 {"eps", o.eps()},
                 {"weight_decay", o.weight_decay()},
                 {"momentum", o.momentum()},
                 {"centered", o.centered()}});
    } else {
      auto& o = static_cast<torch::optim::AdagradOptions&>(g.options());
      go.update(
          {{"lr", o.lr()}, {"lr_decay", o.lr_decay()}, {"weight_decay", o.weight_decay()}, {"eps", o.eps()}});
    }
    groups.push_back(go);
    for (auto& p : g.params()) {
      const std::string k = std::to_string(index++) + ".";
      put(t, k + "shape", at::tensor(p.sizes().vec(), at::kLong));
      if (kind == "AdamW") {
        if (auto* s = state_of<torch::optim::AdamWParamState>(opt, p)) {
          put(t, k + "step", scalar_i64(s->step()));
          put(t, k + "exp_avg", s->exp_avg());
          put(t, k + "exp_avg_sq", s->exp_avg_sq());
          put(t, k + "max_exp_avg_sq", s->max_exp_avg_sq());
        }
      } else if (kind == "Adam") {
        if (auto* s = state_of<torch::optim::AdamParamState>(opt, p)) {
          put(t, k + "step", scalar_i64(s->step()));
          put(t, k + "exp_avg", s->exp_avg());
          put(t, k + "exp_avg_sq", s->exp_avg_sq());
          put(t, k + "max_exp_avg_sq", s->max_exp_avg_sq());
        }
      } else if (kind == "SGD") {
        if (auto* s = state_of<torch::optim::SGDParamState>(opt, p))
          put(t, k + "momentum_buffer", s->momentum_buffer());
      } else if (kind == "RMSprop") {
        if (auto* s = state_of<torch::optim::RMSpropParamState>(opt, p)) {
          put(t, k + "step", scalar_i64(s->step()));
          put(t, k + "square_avg", s->square_avg());
          put(t, k + "momentum_buffer", s->momentum_buffer());
          put(t, k + "grad_avg", s->grad_avg());
        }
      } else if (auto* s = state_of<torch::optim::AdagradParamState>(opt, p)) {
        put(t, k + "step", scalar_i64(s->step()));
        put(t, k + "sum", s->sum());
      }
    }
  }
  return {t, groups};
}

void load_optimizer_state(torch::optim::Optimizer& opt, const std::map<std::string, at::Tensor>& t,
                          const nlohmann::json& groups, const std::string& where) {
  ACCEL_CHECK_INPUT(groups.is_array() && groups.size() == opt.param_groups().size(), where,
                    ": the saved optimizer has ", groups.is_array() ? groups.size() : 0,
                    " parameter group(s) but this one has ", opt.param_groups().size(),
                    ". HINT: build the optimizer as in the saved run.");
  auto get = [&](const std::string& k) -> at::Tensor {
    auto it = t.find(k);
    return it == t.end() ? at::Tensor() : it->second;
  };
  int64_t index = 0;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    auto& g = opt.param_groups()[gi];
    const auto& go = groups[gi];
    const std::string kind = go.value("kind", "");
    ACCEL_CHECK_INPUT(go.value("num_params", size_t{0}) == g.params().size(), where, ": group ", gi, " had ",
                      go.value("num_params", size_t{0}), " parameters when saved but has ", g.params().size(),
                      " now.");
    auto opt_kind_ok = [&](bool ok) {
      ACCEL_CHECK_INPUT(ok, where, ": the saved optimizer is ", kind,
                        ", which is not the optimizer being loaded.");
    };
    if (kind == "AdamW") {
      opt_kind_ok(dynamic_cast<torch::optim::AdamW*>(&opt) != nullptr);
      auto& o = static_cast<torch::optim::AdamWOptions&>(g.options());
      o.lr(go["lr"])
          .betas({go["beta1"], go["beta2"]})
          .eps(go["eps"])
          .weight_decay(go["weight_decay"])
          .amsgrad(go["amsgrad"]);
    } else if (kind == "Adam") {
      opt_kind_ok(dynamic_cast<torch::optim::Adam*>(&opt) != nullptr);
      auto& o = static_cast<torch::optim::AdamOptions&>(g.options());
      o.lr(go["lr"])
          .betas({go["beta1"], go["beta2"]})
          .eps(go["eps"])
          .weight_decay(go["weight_decay"])
          .amsgrad(go["amsgrad"]);
    } else if (kind == "SGD") {
      opt_kind_ok(dynamic_cast<torch::optim::SGD*>(&opt) != nullptr);
      auto& o = static_cast<torch::optim::SGDOptions&>(g.options());
      o.lr(go["lr"])
          .momentum(go["momentum"])
          .dampening(go["dampening"])
          .weight_decay(go["weight_decay"])
          .nesterov(go["nesterov"]);
    } else if (kind == "RMSprop") {
      opt_kind_ok(dynamic_cast<torch::optim::RMSprop*>(&opt) != nullptr);
      auto& o = static_cast<torch::optim::RMSpropOptions&>(g.options());
      o.lr(go["lr"])
          .alpha(go["alpha"])
          .eps(go["eps"])
          .weight_decay(go["weight_decay"])
          .momentum(go["momentum"])
          .centered(go["centered"]);
    } else if (kind == "Adagrad") {
      opt_kind_ok(dynamic_cast<torch::optim::Adagrad*>(&opt) != nullptr);
      auto& o = static_cast<torch::optim::AdagradOptions&>(g.options());
      o.lr(go["lr"]).lr_decay(go["lr_decay"]).weight_decay(go["weight_decay"]).eps(go["eps"]);
    } else {
      ACCEL_CHECK_INPUT(false, where, ": unknown optimizer kind '", kind, "'.");
    }
    for (auto& p : g.params()) {
      const std::string k = std::to_string(index++) + ".";
      at::Tensor shape = get(k + "shape");
      ACCEL_CHECK_INPUT(
          shape.defined() && shape.numel() == p.dim() &&
              std::equal(p.sizes().begin(), p.sizes().end(), shape.data_ptr<int64_t>()),
          where, ": parameter ", index - 1, " has shape ", p.sizes(), " but the saved state has ",
          shape.defined() ? c10::str(c10::IntArrayRef(shape.data_ptr<int64_t>(), shape.numel())) : "none",
          ". HINT: the checkpoint is for another model.");
      auto dev = [&](const at::Tensor& x) { return x.defined() ? x.to(p.device()).clone() : x; };
      void* key = p.unsafeGetTensorImpl();
      at::Tensor step = get(k + "step");
      if (kind == "AdamW" || kind == "Adam") {
        if (!get(k + "exp_avg").defined()) continue;
        std::unique_ptr<torch::optim::OptimizerParamState> st;
        if (kind == "AdamW") {
          auto s = std::make_unique<torch::optim::AdamWParamState>();
          s->step(step.item<int64_t>())
              .exp_avg(dev(get(k + "exp_avg")))
              .exp_avg_sq(dev(get(k + "exp_avg_sq")));
          if (get(k + "max_exp_avg_sq").defined()) s->max_exp_avg_sq(dev(get(k + "max_exp_avg_sq")));
          st = std::move(s);
        } else {
          auto s = std::make_unique<torch::optim::AdamParamState>();
          s->step(step.item<int64_t>())
              .exp_avg(dev(get(k + "exp_avg")))
              .exp_avg_sq(dev(get(k + "exp_avg_sq")));
          if (get(k + "max_exp_avg_sq").defined()) s->max_exp_avg_sq(dev(get(k + "max_exp_avg_sq")));
          st = std::move(s);
        }
        opt.state()[key] = std::move(st);
      } else if (kind == "SGD") {
        if (!get(k + "momentum_buffer").defined()) continue;
        auto s = std::make_unique<torch::optim::SGDParamState>();
        s->momentum_buffer(dev(get(k + "momentum_buffer")));
        opt.state()[key] = std::move(s);
      } else if (kind == "RMSprop") {
        if (!step.defined()) continue;
        auto s = std::make_unique<torch::optim::RMSpropParamState>();
        s->step(step.item<int64_t>()).square_avg(dev(get(k + "square_avg")));
        s->momentum_buffer(dev(get(k + "momentum_buffer"))).grad_avg(dev(get(k + "grad_avg")));
        opt.state()[key] = std::move(s);
      } else {
        if (!step.defined()) continue;
        auto s = std::make_unique<torch::optim::AdagradParamState>();
        s->step(step.item<int64_t>()).sum(dev(get(k + "sum")));
        opt.state()[key] = std::move(s);
      }
    }
  }
}

std::vector<std::string> list_checkpoints(const std::string& root) {
  std::vector<std::pair<int64_t, std::string>> found;
  if (!fs::is_directory(root)) return {};
  static const std::regex re("checkpoint_([0-9]+)");
  std::error_code ec;
  for (const fs::DirEntry& e : fs::list_dir(root, ec)) {
    std::smatch m;
    const std::string path = fs::join(root, e.name);
    if (e.type == fs::FileType::kDirectory && std::regex_match(e.name, m, re) &&
        fs::exists(fs::join(path, kManifestName))) {
      found.emplace_back(std::stoll(m[1]), path);
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

}  // namespace accel::checkpoint
