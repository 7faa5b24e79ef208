// Accelerator::save_state / load_state / save_model (layout: include/accel/checkpoint/state_folder.h).
#include "accel/accelerator.h"
#include "accel/checkpoint/safetensors.h"
#include "accel/checkpoint/state_folder.h"
#include "accel/core/fs.h"
#include "accel/distributed/sharded.h"
#include "accel/distributed/strategy.h"

#include <ATen/ATen.h>
#include <torch/version.h>

#include <csignal>
#include <cstdlib>
#include <tuple>

namespace accel {

namespace {

using checkpoint::TensorMap;

std::string indexed(const std::string& base, size_t i, const std::string& ext) {
  return i == 0 ? base + ext : base + "_" + std::to_string(i) + ext;
}

TensorMap to_tensor_map(const std::map<std::string, at::Tensor>& m) {
  TensorMap out;
  for (const auto& [k, v] : m) out[k] = v.detach().cpu().contiguous();
  return out;
}

// Fault injection for tests: ACCEL_FAULT_SAVE=<file name> kills the process just before that
// file of a state folder is written (as a crash or kill -9 would).
void maybe_fault(const std::optional<std::string>& fault, const std::string& name) {
  if (fault && *fault == name) std::raise(SIGKILL);
}

void write_member(checkpoint::StateFolderWriter& w, const std::optional<std::string>& fault, const std::string& name,
                  const std::string& bytes) {
  maybe_fault(fault, name);
  w.write(name, bytes);
}

nlohmann::json read_json(const std::string& p) {
  try {
    return nlohmann::json::parse(fs::read_file(p, "checkpoint file"));
  } catch (const nlohmann::json::exception& e) {
    ACCEL_CHECK_INPUT(false, "load_state: ", p, " is not valid JSON (", e.what(), ").");
  }
  return {};
}

// Optimizer state fields that are one number per parameter, not one per element.
bool is_scalar_field(const std::string& key) {
  return key.size() > 5 && key.compare(key.size() - 5, 5, ".step") == 0;
}

// Tensors of a state folder, stored whole (one safetensors file) or in pieces (per-rank files
// and an index). Reads any flat range of any tensor, whatever the sharding it was saved with.
class SavedTensors {
 public:
  // A whole file: every tensor one piece.
  static SavedTensors whole(const std::string& file) {
    SavedTensors s;
    s.dir_ = fs::parent(file);
    const std::string f = fs::filename(file);
    for (const auto& [name, t] : s.file(f)) {
      s.entries_[name] = {t.sizes().vec(), {{f, name, 0, t.numel()}}};
      if (is_scalar_field(name)) s.scalars_[name] = t;
    }
    return s;
  }
  // An index written by save_state for a sharded model:
  // {"tensors": {name: {"shape": [...], "pieces": [{"file", "begin", "end"}]}}}.
  static SavedTensors pieces(const std::string& index_file) {
    SavedTensors s;
    s.dir_ = fs::parent(index_file);
    const nlohmann::json j = read_json(index_file);
    const std::string where = index_file;
    ACCEL_CHECK_INPUT(j.is_object() && j.contains("tensors") && j["tensors"].is_object(), "load_state: ", where,
                      " has no \"tensors\" object.");
    for (auto it = j["tensors"].begin(); it != j["tensors"].end(); ++it) {
      Entry e;
      e.shape = it.value().at("shape").get<std::vector<int64_t>>();
      for (const auto& p : it.value().at("pieces")) {
        const std::string f = p.at("file").get<std::string>();
        checkpoint::check_member_name(f, s.dir_);
        e.pieces.push_back({f, it.key(), p.at("begin").get<int64_t>(), p.at("end").get<int64_t>()});
      }
      s.entries_[it.key()] = std::move(e);
    }
    return s;
  }
  // The optimizer index: {"params": [{"name", "shape", "pieces": [...]}]}, fields "<k>.<field>" in
  // the piece files (per element) plus scalars such as "<k>.step".
  static SavedTensors optimizer_pieces(const std::string& index_file) {
    SavedTensors s;
    s.dir_ = fs::parent(index_file);
    const nlohmann::json j = read_json(index_file);
    ACCEL_CHECK_INPUT(j.is_object() && j.contains("params") && j["params"].is_array(), "load_state: ",
                      index_file, " has no \"params\" array.");
    for (size_t k = 0; k < j["params"].size(); ++k) {
      const auto& p = j["params"][k];
      const auto shape = p.at("shape").get<std::vector<int64_t>>();
      const std::string prefix = std::to_string(k) + ".";
      s.names_.push_back(p.value("name", std::string()));
      s.entries_[prefix + "shape"] = {{static_cast<int64_t>(shape.size())}, {}};
      s.scalars_[prefix + "shape"] = at::tensor(shape, at::kLong);
      for (const auto& piece : p.at("pieces")) {
        const std::string f = piece.at("file").get<std::string>();
        checkpoint::check_member_name(f, s.dir_);
        const int64_t b = piece.at("begin").get<int64_t>(), e = piece.at("end").get<int64_t>();
        for (const auto& [key, t] : s.file(f)) {
          if (key.rfind(prefix, 0) != 0 || key == prefix + "shape") continue;
          if (is_scalar_field(key)) {
            s.scalars_[key] = t;
          } else {
            s.entries_[key].shape = shape;
            s.entries_[key].pieces.push_back({f, key, b, e});
          }
        }
      }
    }
    return s;
  }

  bool has(const std::string& name) const { return entries_.count(name) || scalars_.count(name); }
  const std::vector<int64_t>& shape(const std::string& name) const { return entries_.at(name).shape; }
  // The names saved for optimizer parameter k ("" when unknown).
  std::string param_name(size_t k) const { return k < names_.size() ? names_[k] : std::string(); }
  // Keys starting with `prefix` (optimizer fields of one parameter).
  std::vector<std::string> keys_with_prefix(const std::string& prefix) const {
    std::vector<std::string> out;
    for (const auto& [k, e] : entries_) {
      if (k.rfind(prefix, 0) == 0 && !e.pieces.empty()) out.push_back(k);
    }
    for (const auto& [k, t] : scalars_) {
      if (k.rfind(prefix, 0) == 0) out.push_back(k);
    }
    return out;
  }
  bool is_scalar(const std::string& name) const { return scalars_.count(name) != 0; }
  at::Tensor scalar(const std::string& name) const { return scalars_.at(name); }

  // Elements [b, e) of the flattened tensor, from whichever pieces hold them. Throws
  // accel::InputError when they do not cover the range.
  at::Tensor range(const std::string& name, int64_t b, int64_t e) const {
    auto it = entries_.find(name);
    ACCEL_CHECK_INPUT(it != entries_.end(), "load_state: the checkpoint in ", dir_, " has no tensor '", name,
                      "'. HINT: the checkpoint is for another model.");
    const Entry& entry = it->second;
    at::Tensor out;
    int64_t covered = 0;
    for (const auto& p : entry.pieces) {
      const int64_t lo = std::max(b, p.begin), hi = std::min(e, p.end);
      if (hi <= lo) continue;
      const at::Tensor& src = file(p.file).at(p.key);
      ACCEL_CHECK_INPUT(src.numel() == p.end - p.begin, "load_state: '", p.key, "' in ", fs::join(dir_, p.file),
                        " has ", src.numel(), " elements; the index says ", p.end - p.begin, ".");
      if (!out.defined()) out = at::empty({e - b}, src.options());
      out.narrow(0, lo - b, hi - lo).copy_(src.reshape({-1}).narrow(0, lo - p.begin, hi - lo));
      covered += hi - lo;
    }
    ACCEL_CHECK_INPUT(covered == e - b, "load_state: the pieces of '", name, "' in ", dir_, " cover ", covered,
                      " of the ", e - b, " elements [", b, ", ", e, ") needed. HINT: a shard file is missing.");
    return out;
  }

 private:
  struct Piece {
    std::string file, key;
    int64_t begin = 0, end = 0;
  };
  struct Entry {
    std::vector<int64_t> shape;
    std::vector<Piece> pieces;
  };
  const TensorMap& file(const std::string& f) const {
    auto it = files_.find(f);
    if (it == files_.end()) it = files_.emplace(f, checkpoint::load_file(fs::join(dir_, f))).first;
    return it->second;
  }

  std::string dir_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, at::Tensor> scalars_;
  std::vector<std::string> names_;
  mutable std::map<std::string, TensorMap> files_;
};

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

}  // namespace

std::vector<std::shared_ptr<detail::ModelState>> Accelerator::live_models() const {
  std::vector<std::shared_ptr<detail::ModelState>> out;
  for (const auto& w : models_) {
    if (auto s = w.lock()) out.push_back(s);
  }
  return out;
}

std::map<std::string, at::Tensor> Accelerator::module_state(detail::ModelState& m, bool main_process_only) {
  return m.strategy->full_state_dict(main_process_only);
}

std::vector<std::string> Accelerator::save_module(detail::ModelState& m, const std::string& dir,
                                                  int64_t max_shard_bytes) {
  std::vector<std::string> files;
  auto& strategy = *m.strategy;
  if (is_main_process()) {
    fs::create_directories(dir);
    checkpoint::SaveCheckpointOptions o;
    o.max_shard_size(static_cast<uint64_t>(max_shard_bytes));
    std::vector<checkpoint::TensorMeta> layout;
    for (const auto& t : strategy.full_layout()) layout.push_back({t.name, t.dtype, t.shape});
    // Gathered and written one unit at a time.
    files = checkpoint::save_checkpoint_streaming(
        layout, [&](const auto& write) { strategy.for_each_full_tensor(write, false); }, dir, o);
  } else {
    strategy.for_each_full_tensor([](const std::string&, const at::Tensor&) {}, false);
  }
  wait_for_everyone();
  return files;
}

// Models: whole (rank 0 writes model.safetensors) or, for a sharded model saved as
// SHARDED_STATE_DICT, each rank's pieces (model_shard_<rank>.safetensors) with an index
// (model.shards.json). Optimizers: whole, or in pieces when they step on shards
// (optimizer_shard_<rank>.safetensors, optimizer.shards.json, optimizer.json). Collective.
void Accelerator::save_models_and_optimizers(checkpoint::StateFolderWriter& w) {
  auto models = live_models();
  const std::string rank = std::to_string(state_.rank);
  for (size_t i = 0; i < models.size(); ++i) {
    auto& strategy = *models[i]->strategy;
    if (!(strategy.sharded() && resolved_.sharding.sharded_state_dict)) {
      auto full = strategy.full_state_dict(/*rank0_only=*/true);
      if (is_main_process()) {
        const std::string name = indexed("model", i, ".safetensors");
        maybe_fault(fault_save_, name);
        checkpoint::save_file(to_tensor_map(full), w.member(name));
      }
      continue;
    }
    auto* sharded = dynamic_cast<distributed::ShardedEngine*>(&strategy);
    const bool writer = sharded == nullptr || sharded->writes_pieces();
    const std::string file = indexed("model", i, "") + "_shard_" + rank + ".safetensors";
    TensorMap tensors;
    nlohmann::json mine = nlohmann::json::array();
    if (writer) {
      for (const auto& p : strategy.parameter_pieces()) {
        if (p.end == p.begin) continue;
        tensors[p.name] = p.data.detach().to(at::kCPU).contiguous();
        mine.push_back({{"name", p.name}, {"shape", p.shape}, {"file", file}, {"begin", p.begin}, {"end", p.end}});
      }
    }
    if (is_main_process()) {
      // Whole on every rank: parameters that need no gradient, and buffers.
      auto* module = models[i]->module.get();
      for (auto& item : module->named_parameters()) {
        if (item.value().requires_grad()) continue;
        tensors[item.key()] = item.value().detach().to(at::kCPU).contiguous();
        mine.push_back({{"name", item.key()}, {"shape", item.value().sizes().vec()}, {"file", file}, {"begin", 0},
                        {"end", item.value().numel()}});
      }
      for (auto& item : module->named_buffers()) {
        tensors[item.key()] = item.value().detach().to(at::kCPU).contiguous();
        mine.push_back({{"name", item.key()}, {"shape", item.value().sizes().vec()}, {"file", file}, {"begin", 0},
                        {"end", item.value().numel()}});
      }
    }
    if (!tensors.empty()) {
      maybe_fault(fault_save_, file);
      checkpoint::save_file(tensors, w.member(file));
    }
    auto all = gather_object(mine.dump());
    if (is_main_process()) {
      nlohmann::json index = {{"format", "accel-pieces-1"}, {"world_size", state_.world_size},
                              {"tensors", nlohmann::json::object()}};
      for (const auto& bytes : all) {
        for (const auto& e : nlohmann::json::parse(bytes)) {
          auto& t = index["tensors"][e["name"].get<std::string>()];
          t["shape"] = e["shape"];
          t["pieces"].push_back({{"file", e["file"]}, {"begin", e["begin"]}, {"end", e["end"]}});
        }
      }
      write_member(w, fault_save_, indexed("model", i, ".shards.json"), index.dump(1));
    }
  }

  size_t oi = 0;
  for (const auto& wo : optimizers_) {
    auto o = wo.lock();
    if (!o) continue;
    std::map<std::string, at::Tensor> tensors;
    nlohmann::json groups;
    o->with_inner([&](torch::optim::Optimizer& inner) { std::tie(tensors, groups) = checkpoint::optimizer_state(inner); });
    // Which of its parameters are shards, and whether this rank writes them.
    const auto params = o->parameters();
    std::vector<const distributed::TensorPiece*> piece_of(params.size(), nullptr);
    std::vector<distributed::TensorPiece> pieces;
    std::vector<bool> writes(params.size(), is_main_process());
    bool any_sharded = false;
    std::map<const c10::TensorImpl*, std::pair<distributed::TensorPiece, bool>> by_impl;
    for (const auto& m : models) {
      auto* sharded = dynamic_cast<distributed::ShardedEngine*>(m->strategy.get());
      if (sharded == nullptr) continue;
      for (auto& p : sharded->parameter_pieces()) by_impl[p.data.unsafeGetTensorImpl()] = {p, sharded->writes_pieces()};
    }
    nlohmann::json mine = nlohmann::json::array();
    const std::string file = indexed("optimizer", oi, "") + "_shard_" + rank + ".safetensors";
    TensorMap out;
    for (size_t k = 0; k < params.size(); ++k) {
      auto it = by_impl.find(params[k].unsafeGetTensorImpl());
      std::string name;
      std::vector<int64_t> shape = params[k].sizes().vec();
      int64_t b = 0, e = params[k].numel();
      bool write = is_main_process();
      if (it != by_impl.end()) {
        any_sharded = true;
        name = it->second.first.name;
        shape = it->second.first.shape;
        b = it->second.first.begin;
        e = it->second.first.end;
        write = it->second.second && e > b;
      }
      if (!write) continue;
      const std::string prefix = std::to_string(k) + ".";
      for (const auto& [key, t] : tensors) {
        if (key.rfind(prefix, 0) != 0 || key == prefix + "shape") continue;
        out[key] = t.dim() == 0 ? t.detach().cpu() : t.detach().reshape({-1}).cpu().contiguous();
      }
      mine.push_back({{"index", k}, {"name", name}, {"shape", shape}, {"file", file}, {"begin", b}, {"end", e}});
    }
    if (!any_sharded) {
      if (is_main_process()) {
        const std::string name = indexed("optimizer", oi, ".safetensors");
        maybe_fault(fault_save_, name);
        checkpoint::save_file(to_tensor_map(tensors), w.member(name));
        write_member(w, fault_save_, indexed("optimizer", oi, ".json"), groups.dump(1));
      }
      ++oi;
      continue;
    }
    if (!out.empty()) {
      maybe_fault(fault_save_, file);
      checkpoint::save_file(out, w.member(file));
    }
    auto all = gather_object(mine.dump());
    if (is_main_process()) {
      nlohmann::json index = {{"format", "accel-pieces-1"}, {"world_size", state_.world_size}};
      nlohmann::json list = nlohmann::json::array();
      for (size_t k = 0; k < params.size(); ++k) list.push_back({{"name", ""}, {"shape", nlohmann::json::array()}, {"pieces", nlohmann::json::array()}});
      for (const auto& bytes : all) {
        for (const auto& e : nlohmann::json::parse(bytes)) {
          auto& entry = list[e["index"].get<size_t>()];
          entry["name"] = e["name"];
          entry["shape"] = e["shape"];
          entry["pieces"].push_back({{"file", e["file"]}, {"begin", e["begin"]}, {"end", e["end"]}});
        }
      }
      index["params"] = list;
      write_member(w, fault_save_, indexed("optimizer", oi, ".shards.json"), index.dump(1));
      write_member(w, fault_save_, indexed("optimizer", oi, ".json"), groups.dump(1));
    }
    ++oi;
  }
}

std::string Accelerator::save_state(const std::string& dir_arg) {
  const auto& project = options_.project();
  std::string dir;
  std::string checkpoints_root;
  if (!dir_arg.empty()) {
    dir = dir_arg;
  } else {
    ACCEL_CHECK(project.automatic_checkpoint_naming(),
                "save_state: no folder given and project().automatic_checkpoint_naming is off. HINT: "
                "pass a folder, or set AcceleratorOptions().project(ProjectOptions().project_dir(...)"
                ".automatic_checkpoint_naming(true)).");
    checkpoints_root = fs::join(project.project_dir().empty() ? "." : project.project_dir(), "checkpoints");
    dir = fs::join(checkpoints_root, "checkpoint_" + std::to_string(iteration_));
  }
  // Fault injection for tests (the variable may be set after construction).
  fault_save_ = read_process_env(current_environment()).fault_save;
  // Every rank writes into the same temporary folder; rank 0 prepares and commits it.
  const std::string temp = dir + ".tmp";
  if (is_main_process()) {
    std::error_code ec;
    fs::remove_all(temp, ec);
    fs::create_directories(temp, ec);
    ACCEL_CHECK(!ec, "save_state: cannot create ", temp, ": ", ec.message(),
                ". HINT: check that the folder is writable and the disk is not full.");
  }
  wait_for_everyone();
  checkpoint::StateFolderWriter w(dir, ".tmp", /*create=*/false);

  save_models_and_optimizers(w);
  if (is_main_process()) {
    nlohmann::json sched = nlohmann::json::array();
    for (const auto& ws : schedulers_) {
      if (auto s = ws.lock()) sched.push_back(s->steps_taken());
    }
    write_member(w, fault_save_, "scheduler.json", nlohmann::json{{"steps", sched}}.dump());
    if (scaler_) {
      maybe_fault(fault_save_, "scaler.safetensors");
      checkpoint::save_file(to_tensor_map(scaler_->state_dict()), w.member("scaler.safetensors"));
    }
    nlohmann::json loaders = nlohmann::json::array();
    for (const auto& wl : loaders_) {
      auto l = wl.lock();
      if (!l) continue;
      auto st = l->state();
      loaders.push_back({{"epoch", st.epoch}, {"position", st.position}, {"world_size", st.world_size},
                         {"batch_size", st.batch_size}, {"seed", st.seed}});
    }
    write_member(w, fault_save_, "dataloader.json", nlohmann::json{{"loaders", loaders}}.dump(1));
    for (size_t i = 0; i < custom_.size(); ++i) {
      const std::string name = "custom_checkpoint_" + std::to_string(i) + ".safetensors";
      maybe_fault(fault_save_, name);
      checkpoint::save_file(to_tensor_map(custom_[i].save()), w.member(name));
    }
  }
  {
    const std::string name = "random_states_" + std::to_string(state_.rank) + ".safetensors";
    maybe_fault(fault_save_, name);
    checkpoint::save_file(to_tensor_map(checkpoint::capture_rng_states()), w.member(name));
  }
  wait_for_everyone();
  const int64_t next_iteration = project.automatic_checkpoint_naming() && dir_arg.empty() ? iteration_ + 1 : iteration_;
  if (is_main_process()) {
    maybe_fault(fault_save_, checkpoint::kManifestName);
    nlohmann::json header = {{"world_size", state_.world_size},
                             {"mixed_precision", to_string(resolved_.mixed_precision)},
                             {"step", step_},
                             {"iteration", next_iteration},
                             {"num_models", live_models().size()},
                             {"num_custom", custom_.size()},
                             {"torch", TORCH_VERSION},
                             {"creator", "accel"}};
    w.commit(header);
    if (!checkpoints_root.empty() && project.total_limit() > 0) {
      auto all = checkpoint::list_checkpoints(checkpoints_root);
      while (static_cast<int64_t>(all.size()) > project.total_limit()) {
        std::error_code ec;
        fs::remove_all(all.front(), ec);
        all.erase(all.begin());
      }
    }
  }
  iteration_ = next_iteration;
  wait_for_everyone();
  logger().info("saved state to ", dir);
  return dir;
}

void Accelerator::load_state(const std::string& dir_arg) {
  std::string dir = dir_arg;
  if (dir.empty()) {
    const auto& project = options_.project();
    const std::string root =
        fs::join(project.project_dir().empty() ? "." : project.project_dir(), "checkpoints");
    auto all = checkpoint::list_checkpoints(root);
    ACCEL_CHECK_INPUT(!all.empty(), "load_state: no complete checkpoint under ", root,
                      ". HINT: pass the folder written by save_state().");
    dir = all.back();
  }
  // 1. Verify everything and read it into memory; nothing is changed until all of it is valid.
  nlohmann::json header = checkpoint::verify_state_folder(dir);
  auto models = live_models();
  const size_t saved_models = header.value("num_models", size_t{0});
  ACCEL_CHECK_INPUT(saved_models == models.size(), "load_state: ", dir, " holds ", saved_models,
                    " model(s) but ", models.size(), " are prepared. HINT: prepare the same objects as the saved run.");
  // Models: whole or in pieces, whatever the sharding now.
  std::vector<SavedTensors> model_saved;
  for (size_t i = 0; i < models.size(); ++i) {
    const std::string index = fs::join(dir, indexed("model", i, ".shards.json"));
    const std::string whole = fs::join(dir, indexed("model", i, ".safetensors"));
    model_saved.push_back(fs::exists(index) ? SavedTensors::pieces(index) : SavedTensors::whole(whole));
    const std::string where = fs::exists(index) ? index : whole;
    for (const auto& t : models[i]->strategy->full_layout()) {
      ACCEL_CHECK_INPUT(model_saved.back().has(t.name), "load_state: ", where, " has no tensor '", t.name,
                        "'. HINT: the checkpoint is for another model.");
      ACCEL_CHECK_INPUT(model_saved.back().shape(t.name) == t.shape, "load_state: '", t.name, "' in ", where,
                        " has shape ", c10::IntArrayRef(model_saved.back().shape(t.name)), " but the model's is ",
                        c10::IntArrayRef(t.shape), ".");
    }
  }
  // Optimizers: this rank's state, cut from the saved state whatever its sharding.
  std::map<const c10::TensorImpl*, distributed::TensorPiece> piece_of;
  for (const auto& m : models) {
    if (!m->strategy->sharded()) continue;
    for (auto& p : m->strategy->parameter_pieces()) piece_of[p.data.unsafeGetTensorImpl()] = p;
  }
  std::vector<std::pair<TensorMap, nlohmann::json>> opt_states;
  std::vector<std::shared_ptr<AcceleratedOptimizer>> opts;
  for (const auto& wo : optimizers_) {
    if (auto o = wo.lock()) opts.push_back(o);
  }
  for (size_t i = 0; i < opts.size(); ++i) {
    const std::string index = fs::join(dir, indexed("optimizer", i, ".shards.json"));
    const std::string whole = fs::join(dir, indexed("optimizer", i, ".safetensors"));
    ACCEL_CHECK_INPUT(fs::exists(index) || fs::exists(whole), "load_state: ", whole, " is missing (",
                      opts.size(), " optimizer(s) are prepared).");
    const bool pieces = fs::exists(index);
    SavedTensors saved = pieces ? SavedTensors::optimizer_pieces(index) : SavedTensors::whole(whole);
    const auto params = opts[i]->parameters();
    TensorMap mine;
    for (size_t k = 0; k < params.size(); ++k) {
      const std::string prefix = std::to_string(k) + ".";
      std::vector<int64_t> shape = params[k].sizes().vec();
      int64_t b = 0, e = params[k].numel();
      auto it = piece_of.find(params[k].unsafeGetTensorImpl());
      if (it != piece_of.end()) {
        b = it->second.begin;
        e = it->second.end;
        const std::string saved_name = saved.param_name(k);
        ACCEL_CHECK_INPUT(saved_name.empty() || saved_name == it->second.name, "load_state: optimizer parameter ", k,
                          " is '", it->second.name, "' but the checkpoint's is '", saved_name,
                          "'. HINT: build the optimizer over the same parameters, in the same order.");
      }
      mine[prefix + "shape"] = at::tensor(shape, at::kLong);
      if (e == b && it != piece_of.end()) continue;  // an empty shard holds no state
      for (const auto& key : saved.keys_with_prefix(prefix)) {
        if (key == prefix + "shape") continue;
        if (saved.is_scalar(key)) {
          mine[key] = saved.scalar(key);
        } else {
          ACCEL_CHECK_INPUT(numel_of(saved.shape(key)) >= e, "load_state: optimizer state '", key, "' has ",
                            numel_of(saved.shape(key)), " elements but parameter ", k, " needs [", b, ", ", e, ").");
          mine[key] = saved.range(key, b, e).view(shape);
        }
      }
    }
    opt_states.emplace_back(std::move(mine), read_json(fs::join(dir, indexed("optimizer", i, ".json"))));
  }
  nlohmann::json sched = read_json(fs::join(dir, "scheduler.json"));
  nlohmann::json loaders = read_json(fs::join(dir, "dataloader.json"));
  TensorMap scaler_state;
  if (scaler_) {
    ACCEL_CHECK_INPUT(
        fs::exists(fs::join(dir, "scaler.safetensors")), "load_state: ", dir,
        " has no scaler.safetensors but this run uses fp16. HINT: it was saved with mixed_precision=",
        header.value("mixed_precision", std::string("?")), ".");
    scaler_state = checkpoint::load_file(fs::join(dir, "scaler.safetensors"));
  }
  const int saved_world = header.value("world_size", 1);
  const std::string rng_file =
      fs::join(dir, ("random_states_" + std::to_string(state_.rank) + ".safetensors"));
  TensorMap rng;
  if (fs::exists(rng_file)) rng = checkpoint::load_file(rng_file);
  std::vector<TensorMap> custom;
  ACCEL_CHECK_INPUT(header.value("num_custom", size_t{0}) == custom_.size(), "load_state: ", dir, " holds ",
                    header.value("num_custom", size_t{0}), " registered object(s) but ", custom_.size(),
                    " are registered now.");
  for (size_t i = 0; i < custom_.size(); ++i) {
    custom.push_back(
        checkpoint::load_file(fs::join(dir, ("custom_checkpoint_" + std::to_string(i) + ".safetensors"))));
  }

  // 2. Apply.
  for (size_t i = 0; i < models.size(); ++i) {
    const SavedTensors& saved = model_saved[i];
    models[i]->strategy->load_parameters(
        [&saved](const std::string& name, int64_t b, int64_t e) { return saved.range(name, b, e); });
  }
  size_t si = 0;
  for (const auto& ws : schedulers_) {
    auto s = ws.lock();
    if (!s) continue;
    if (sched.contains("steps") && si < sched["steps"].size()) {
      const int64_t target = sched["steps"][si].get<int64_t>();
      ACCEL_CHECK_INPUT(s->steps_taken() <= target, "load_state: scheduler ", si, " has already taken ",
                        s->steps_taken(), " steps, more than the ", target,
                        " saved. HINT: load the state into a freshly built scheduler.");
      s->fast_forward(target - s->steps_taken());
    }
    ++si;
  }
  for (size_t i = 0; i < opts.size(); ++i) {
    opts[i]->with_inner([&](torch::optim::Optimizer& inner) {
      checkpoint::load_optimizer_state(inner, opt_states[i].first, opt_states[i].second,
                                       fs::join(dir, indexed("optimizer", i, ".safetensors")));
    });
  }
  if (scaler_) scaler_->load_state_dict(scaler_state);
  if (!rng.empty()) {
    checkpoint::restore_rng_states(rng);
  } else {
    logger().log(LogLevel::kWarning, LogScope::kAllRanks,
                 c10::str("load_state: no random state saved for rank ", state_.rank, " (the checkpoint has ",
                          saved_world, " rank(s)); random numbers will differ from the saved run."));
  }
  for (size_t i = 0; i < custom_.size(); ++i) custom_[i].load(custom[i]);
  size_t li = 0;
  for (const auto& wl : loaders_) {
    auto l = wl.lock();
    if (!l) continue;
    if (loaders.contains("loaders") && li < loaders["loaders"].size()) {
      const auto& j = loaders["loaders"][li];
      data::DataLoaderBase::State st;
      st.epoch = j.value("epoch", int64_t{0});
      st.position = j.value("position", int64_t{0});
      st.world_size = j.value("world_size", 1);
      st.batch_size = j.value("batch_size", int64_t{0});
      st.seed = j.value("seed", uint64_t{0});
      try {
        l->load_state(st);
      } catch (const accel::Error& e) {
        // Another world size or batch size: the position cannot be transferred; say so, restart the epoch.
        logger().warning(e.what_without_backtrace());
        st.position = 0;
        st.world_size = l->shard().world_size;
        st.batch_size = l->options().batch_size();
        l->load_state(st);
      }
    }
    ++li;
  }
  step_ = header.value("step", int64_t{0});
  iteration_ = header.value("iteration", iteration_);
  sync_gradients_ = true;
  wait_for_everyone();
  logger().info("loaded state from ", dir);
}

}  // namespace accel
