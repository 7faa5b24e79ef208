// safetensors files (Hugging Face's tensor format) and sharded checkpoints
// (`model.safetensors.index.json`): memory-mapped zero-copy reading with full validation, and
// atomic, deterministic, byte-for-byte reference-compatible writing.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>
#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace accel::checkpoint {

/// The `__metadata__` string map of a safetensors file (transformers writes {"format": "pt"}).
using Metadata = std::map<std::string, std::string>;
/// Named tensors, ordered by name (so everything written from one is deterministic).
using TensorMap = std::map<std::string, at::Tensor>;

/// The safetensors dtype name ("F32", "BF16", "I64", "BOOL", ...) of a torch scalar type.
/// Supported: BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16 F16 BF16 I32 U32 F32 C64 F64 I64 U64.
/// Throws accel::Error for a scalar type safetensors cannot hold.
std::string dtype_name(c10::ScalarType type);

/// The torch scalar type for a safetensors dtype name; std::nullopt when the name is unknown.
std::optional<c10::ScalarType> dtype_from_name(std::string_view name);

/// One tensor's header entry. `begin`/`end` are byte offsets into the data section
/// (the bytes after the 8-byte length and the JSON header), end exclusive.
struct TensorEntry {
  std::string name;
  c10::ScalarType dtype = c10::ScalarType::Float;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

/// One safetensors file, memory-mapped and validated on construction.
///
/// Tensors returned by tensor() are zero-copy CPU views over a private (copy-on-write) mapping:
/// they keep the mapping alive after this object is gone, and writing into them never changes
/// the file. A tensor whose bytes are not aligned for its dtype (files from writers that do not
/// pad the header to 8 bytes) is copied instead. Do not truncate or rewrite the file in place
/// while views are alive (replacing it by rename, as save_file does, is safe).
class SafetensorsFile {
 public:
  /// Opens, maps and validates `path`. Throws accel::InputError naming the file and the problem
  /// (too short, header length past the end, bad JSON, unknown dtype, offsets out of range,
  /// overlapping or non-contiguous, shape/size mismatch, duplicate names).
  explicit SafetensorsFile(const std::string& path);
  /// Validates safetensors `bytes` held in memory, with the same checks and errors as the file
  /// constructor. The bytes are copied; tensor() views share the copy (and keep it alive).
  /// `name` stands for the file in messages and is what path() returns.
  static SafetensorsFile from_bytes(std::string_view bytes, const std::string& name = "<memory>");
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;

  /// The file this was opened from.
  const std::string& path() const { return path_; }
  /// All tensor entries, in data-section order.
  const std::vector<TensorEntry>& entries() const { return entries_; }
  /// Tensor names, sorted.
  std::vector<std::string> names() const;
  /// Whether a tensor called `name` is in the file.
  bool contains(const std::string& name) const;
  /// The entry of `name`; throws accel::InputError when absent.
  const TensorEntry& entry(const std::string& name) const;
  /// The `__metadata__` map (empty when the file has none).
  const Metadata& metadata() const { return metadata_; }
  /// A CPU tensor over the file's bytes (see the class comment); throws accel::InputError when absent.
  at::Tensor tensor(const std::string& name) const;
  /// Every tensor of the file, as tensor() returns them.
  TensorMap tensors() const;

 private:
  struct Mapping;
  SafetensorsFile() = default;
  // Parses and validates the header of mapping_'s bytes (shared by both ways of opening).
  void parse();
  std::string path_;
  std::shared_ptr<Mapping> mapping_;
  std::vector<TensorEntry> entries_;
  std::map<std::string, size_t> index_;
  Metadata metadata_;
  uint64_t data_start_ = 0;
};

/// Reads every tensor of one safetensors file (zero-copy views, see SafetensorsFile). When
/// `metadata` is given it receives the file's `__metadata__`.
TensorMap load_file(const std::string& path, Metadata* metadata = nullptr);

/// load_file for safetensors bytes held in memory (see SafetensorsFile::from_bytes): same
/// validation, same errors (accel::InputError); the tensors share one copy of the bytes.
TensorMap load_bytes(std::string_view bytes, Metadata* metadata = nullptr);

/// The complete safetensors bytes for `tensors` (any device, layout or stride), laid out as the
/// reference library does: tensors ordered by dtype (widest first) then name, the JSON header
/// compact with `__metadata__` first (omitted when empty) and padded with spaces to 8 bytes.
std::string serialize(const TensorMap& tensors, const Metadata& metadata = {});

/// Writes `tensors` to `path` atomically with accel::fs::AtomicFile (a temporary file in the same
/// folder, fsync, rename, fsync of the folder). The bytes are those of serialize(). Throws
/// accel::Error on I/O failure.
void save_file(const TensorMap& tensors, const std::string& path, const Metadata& metadata = {});

/// The file name of shard `index` (1-based) of `count`: `model-00001-of-00003.safetensors`.
std::string shard_file_name(int64_t index, int64_t count, const std::string& prefix = "model");

/// Contents of `<prefix>.safetensors.index.json`: {"metadata": {"total_size": N},
/// "weight_map": {tensor name: shard file name}}.
struct ShardIndex {
  uint64_t total_size = 0;
  std::map<std::string, std::string> weight_map;
};

/// Parses an index file; throws accel::InputError (file and problem named) when malformed, or
/// when a shard name is not a plain file name in the index's folder.
ShardIndex read_index(const std::string& path);

/// Writes an index file atomically (2-space indented JSON, keys sorted, as transformers does).
void write_index(const ShardIndex& index, const std::string& path);

/// Options of save_checkpoint.
struct SaveCheckpointOptions {
  /// Largest shard in bytes of tensor data (default 5 GB, transformers' historical default).
  /// A tensor larger than this gets a shard of its own. Must be > 0.
  TORCH_ARG(uint64_t, max_shard_size) = 5'000'000'000ULL;
  /// File name prefix: `<prefix>.safetensors`, `<prefix>-00001-of-00002.safetensors`,
  /// `<prefix>.safetensors.index.json` (default "model").
  TORCH_ARG(std::string, prefix) = "model";
  /// `__metadata__` written into every file (default {"format": "pt"}, which transformers wants).
  TORCH_ARG(Metadata, metadata) = Metadata{{"format", "pt"}};
};

/// Writes `tensors` into `folder` (created when missing) as one `<prefix>.safetensors` when they
/// fit in one shard, else as `<prefix>-0000i-of-0000n.safetensors` shards (filled in name order,
/// as huggingface_hub fills them) plus `<prefix>.safetensors.index.json`. Files of an earlier
/// save with the same prefix that the new one does not use are removed, so the folder never
/// mixes two checkpoints. Returns the written files (index last when sharded).
std::vector<std::string> save_checkpoint(const TensorMap& tensors, const std::string& folder,
                                         const SaveCheckpointOptions& options = {});

/// A tensor announced before its data exists (save_checkpoint_streaming).
struct TensorMeta {
  std::string name;
  c10::ScalarType dtype = at::kFloat;
  std::vector<int64_t> shape;
};

/// save_checkpoint for tensors that arrive one at a time, so the caller never holds them all:
/// `layout` lists every tensor in the order `produce` will deliver them; `produce(write)` must
/// call `write(name, tensor)` exactly once per entry, in that order (each file is written as its
/// tensors arrive, atomically). Data is laid out in arrival order; shards are filled in that order.
/// Throws accel::Error when a delivered tensor is not the next one announced or has another
/// dtype or shape.
std::vector<std::string> save_checkpoint_streaming(
    const std::vector<TensorMeta>& layout,
    const std::function<void(const std::function<void(const std::string&, const at::Tensor&)>&)>& produce,
    const std::string& folder, const SaveCheckpointOptions& options = {});

/// A checkpoint of one file or several shards, opened from a `.safetensors` file, an
/// `.index.json` file, or a folder holding `model.safetensors` or `model.safetensors.index.json`.
/// Every shard is mapped and validated on construction; tensors are views as in SafetensorsFile.
class Checkpoint {
 public:
  /// Opens the checkpoint; throws accel::InputError when nothing usable is there, when a shard
  /// is missing or malformed, when a tensor the index lists is absent from its shard, or when
  /// two shards hold the same name.
  explicit Checkpoint(const std::string& file_folder_or_index);

  /// Tensor names, sorted.
  std::vector<std::string> names() const;
  /// Whether `name` is in the checkpoint.
  bool contains(const std::string& name) const;
  /// The entry of `name`; throws accel::InputError when absent.
  const TensorEntry& entry(const std::string& name) const;
  /// The tensor `name` (a view, see SafetensorsFile); throws accel::InputError when absent.
  at::Tensor tensor(const std::string& name) const;
  /// The shard file holding `name`; throws accel::InputError when absent.
  const std::string& file_of(const std::string& name) const;
  /// Every file of the checkpoint (the index first when sharded).
  std::vector<std::string> files() const;
  /// What was opened, for messages ("<folder>/model.safetensors" or the index path).
  const std::string& source() const { return source_; }
  /// Every tensor of the checkpoint.
  TensorMap tensors() const;

 private:
  const SafetensorsFile& file_holding(const std::string& name) const;
  std::string source_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> where_;
  bool sharded_ = false;
};

/// Finds the checkpoint file in a folder: `<prefix>.safetensors.index.json` if present, else
/// `<prefix>.safetensors`; std::nullopt when neither exists.
std::optional<std::string> find_checkpoint_file(const std::string& folder,
                                                const std::string& prefix = "model");

}  // namespace accel::checkpoint
