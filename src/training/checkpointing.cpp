// Accelerator::save_state / load_state / save_model (layout: include/accel/checkpoint/state_folder.h).
#include "accel/accelerator.h"
#include "accel/checkpoint/safetensors.h"
#include "accel/checkpoint/state_folder.h"
#include "accel/core/fs.h"

#include <ATen/ATen.h>
#include <torch/version.h>

#include <csignal>
#include <cstdlib>

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
void maybe_fault(const std::string& name) {
  const char* f = std::getenv("ACCEL_FAULT_SAVE");
  if (f != nullptr && name == f) std::raise(SIGKILL);
}

void write_member(checkpoint::StateFolderWriter& w, const std::string& name, const std::string& bytes) {
  maybe_fault(name);
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

}  // namespace

std::vector<std::shared_ptr<detail::ModelState>> Accelerator::live_models() const {
  std::vector<std::shared_ptr<detail::ModelState>> out;
  for (const auto& w : models_) {
    if (auto s = w.lock()) out.push_back(s);
  }
  return out;
}

std::map<std::string, at::Tensor> Accelerator::module_state(torch::nn::Module& m) const {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = p.value().detach().cpu();
  for (const auto& b : m.named_buffers()) out[b.key()] = b.value().detach().cpu();
  return out;
}

std::vector<std::string> Accelerator::save_module(torch::nn::Module& m, const std::string& dir,
                                                  int64_t max_shard_bytes) {
  std::vector<std::string> files;
  if (is_main_process()) {
    fs::create_directories(dir);
    checkpoint::SaveCheckpointOptions o;
    o.max_shard_size(static_cast<uint64_t>(max_shard_bytes));
    files = checkpoint::save_checkpoint(to_tensor_map(module_state(m)), dir, o);
  }
  wait_for_everyone();
  return files;
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

  if (is_main_process()) {
    auto models = live_models();
    for (size_t i = 0; i < models.size(); ++i) {
      const std::string name = indexed("model", i, ".safetensors");
      maybe_fault(name);
      checkpoint::save_file(to_tensor_map(module_state(*models[i]->module)), w.member(name));
    }
    size_t oi = 0;
    for (const auto& wo : optimizers_) {
      auto o = wo.lock();
      if (!o) continue;
      auto [tensors, groups] = checkpoint::optimizer_state(o->inner());
      const std::string name = indexed("optimizer", oi, ".safetensors");
      maybe_fault(name);
      checkpoint::save_file(to_tensor_map(tensors), w.member(name));
      write_member(w, indexed("optimizer", oi, ".json"), groups.dump(1));
      ++oi;
    }
    nlohmann::json sched = nlohmann::json::array();
    for (const auto& ws : schedulers_) {
      if (auto s = ws.lock()) sched.push_back(s->steps_taken());
    }
    write_member(w, "scheduler.json", nlohmann::json{{"steps", sched}}.dump());
    if (scaler_) {
      maybe_fault("scaler.safetensors");
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
    write_member(w, "dataloader.json", nlohmann::json{{"loaders", loaders}}.dump(1));
    for (size_t i = 0; i < custom_.size(); ++i) {
      const std::string name = "custom_checkpoint_" + std::to_string(i) + ".safetensors";
      maybe_fault(name);
      checkpoint::save_file(to_tensor_map(custom_[i].save()), w.member(name));
    }
  }
  {
    const std::string name = "random_states_" + std::to_string(state_.rank) + ".safetensors";
    maybe_fault(name);
    checkpoint::save_file(to_tensor_map(checkpoint::capture_rng_states()), w.member(name));
  }
  wait_for_everyone();
  const int64_t next_iteration = project.automatic_checkpoint_naming() && dir_arg.empty() ? iteration_ + 1 : iteration_;
  if (is_main_process()) {
    maybe_fault(checkpoint::kManifestName);
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
                    " model(s) but ", models.size(),
                    " are prepared. HINT: prepare the same objects as the saved run.");
  std::vector<TensorMap> model_weights;
  for (size_t i = 0; i < models.size(); ++i) {
    const std::string f = fs::join(dir, indexed("model", i, ".safetensors"));
    TensorMap t = checkpoint::load_file(f);
    auto expected = module_state(*models[i]->module);
    for (const auto& [k, v] : expected) {
      auto it = t.find(k);
      ACCEL_CHECK_INPUT(it != t.end(), "load_state: ", f, " has no tensor '", k,
                        "'. HINT: the checkpoint is for another model.");
      ACCEL_CHECK_INPUT(it->second.sizes() == v.sizes(), "load_state: '", k, "' in ", f, " has shape ",
                        it->second.sizes(), " but the model's is ", v.sizes(), ".");
    }
    model_weights.push_back(std::move(t));
  }
  std::vector<std::pair<TensorMap, nlohmann::json>> opt_states;
  std::vector<std::shared_ptr<AcceleratedOptimizer>> opts;
  for (const auto& wo : optimizers_) {
    if (auto o = wo.lock()) opts.push_back(o);
  }
  for (size_t i = 0; i < opts.size(); ++i) {
    const std::string f = fs::join(dir, indexed("optimizer", i, ".safetensors"));
    ACCEL_CHECK_INPUT(fs::exists(f), "load_state: ", f, " is missing (", opts.size(),
                      " optimizer(s) are prepared).");
    opt_states.emplace_back(checkpoint::load_file(f),
                            read_json(fs::join(dir, indexed("optimizer", i, ".json"))));
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
  {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < models.size(); ++i) {
      auto& m = *models[i]->module;
      for (auto& p : m.named_parameters()) p.value().copy_(model_weights[i].at(p.key()));
      for (auto& b : m.named_buffers()) b.value().copy_(model_weights[i].at(b.key()));
    }
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
    checkpoint::load_optimizer_state(opts[i]->inner(), opt_states[i].first, opt_states[i].second,
                                     fs::join(dir, indexed("optimizer", i, ".safetensors")));
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
