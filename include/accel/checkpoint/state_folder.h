// State folders: the on-disk layout of Accelerator::save_state, written atomically (a temporary
// folder, fsync, rename) and verified before anything is loaded (every file's size and checksum
// is in a JSON manifest). Also: RNG state capture and optimizer state as tensors, so nothing is
// pickled and nothing executes code on load.
//
// Layout of a state folder (format version 1):
//   accel_state.json                 manifest: format, world size, precision, counters, files
//   model.safetensors, model_1...    prepared models' weights (rank 0)
//   optimizer.safetensors, ...       optimizer state + "optimizer.json" param groups (rank 0)
//   scheduler.json                   scheduler step counts (rank 0)
//   scaler.safetensors               loss scaler (fp16, rank 0)
//   dataloader.json                  loaders' epoch and position (rank 0)
//   random_states_<rank>.safetensors every rank's generators
//   custom_checkpoint_<i>.safetensors objects registered for checkpointing (rank 0)
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>
#include <torch/optim/optimizer.h>

#include <map>
#include <string>
#include <vector>

namespace accel::checkpoint {

constexpr int kStateFormatVersion = 1;
constexpr const char* kManifestName = "accel_state.json";

/// 64-bit FNV-1a of a file's bytes, hex; the manifest's checksum.
std::string file_checksum(const std::string& path);

/// A file name the manifest may name: no folder parts, no "..", not absolute. Throws
/// accel::InputError otherwise (a manifest cannot point outside its folder).
void check_member_name(const std::string& name, const std::string& folder);

/// Writes a state folder: files go into `<final>.tmp-<pid>`; commit() writes the manifest and
/// renames the folder into place (replacing an older one at the same path only after the new one
/// is complete). A crash before commit() leaves any previous folder untouched.
class StateFolderWriter {
 public:
  /// `temp_suffix` names the temporary folder (default ".tmp-<pid>"); with create=false the
  /// folder must exist already (several ranks writing into one folder that rank 0 made).
  explicit StateFolderWriter(std::string final_dir, const std::string& temp_suffix = "", bool create = true);
  const std::string& temp_dir() const { return temp_; }
  const std::string& final_dir() const { return final_; }
  /// Path of a member file inside the temporary folder.
  std::string member(const std::string& name) const;
  /// Writes a member file (bytes) durably with accel::fs::write_file_atomic.
  void write(const std::string& name, const std::string& bytes);
  /// Writes the manifest (`header` plus the size and checksum of every file in the folder) and
  /// atomically moves the folder into place.
  void commit(nlohmann::json header);

 private:
  std::string final_;
  std::string temp_;
};

/// Opens a state folder: reads the manifest, checks every listed file exists with the recorded
/// size and checksum, and that no unlisted state file is expected. Throws accel::InputError
/// naming the folder and file on any problem, before the caller loads anything.
nlohmann::json verify_state_folder(const std::string& dir);

/// The generators of this process (CPU, and every CUDA device) as uint8 tensors.
std::map<std::string, at::Tensor> capture_rng_states();
/// Restores what capture_rng_states() returned.
void restore_rng_states(const std::map<std::string, at::Tensor>& states);

/// Optimizer state (per-parameter tensors, keyed "<param index>.<field>") and param-group options
/// as JSON. Supports torch::optim::AdamW, Adam, SGD, RMSprop and Adagrad; other types throw
/// accel::Error with a HINT.
std::pair<std::map<std::string, at::Tensor>, nlohmann::json> optimizer_state(torch::optim::Optimizer& opt);
/// Restores a state written by optimizer_state() into an optimizer built the same way; throws
/// accel::InputError when the parameter count or shapes do not match.
void load_optimizer_state(torch::optim::Optimizer& opt, const std::map<std::string, at::Tensor>& tensors,
                          const nlohmann::json& groups, const std::string& where);

/// Checkpoint folders `checkpoint_<N>` under `root`, sorted by N (complete ones only: those with a
/// manifest).
std::vector<std::string> list_checkpoints(const std::string& root);

}  // namespace accel::checkpoint
