// safetensors reading (mmap + validation), writing (atomic, reference byte layout) and sharded
// checkpoints. Format: 8-byte little-endian header length N, N bytes of JSON, raw data.
#include "accel/checkpoint/safetensors.h"

#include "accel/core/error.h"
#include "accel/core/fs.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <regex>
#include <set>

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; big-endian hosts are not supported");

namespace accel::checkpoint {
using nlohmann::json;

namespace {

constexpr uint64_t kMaxHeaderSize = 100'000'000;  // the reference library's limit

struct DtypeInfo {
  const char* name;
  c10::ScalarType type;
  int rank;  // the reference orders tensors by descending rank (its Dtype enum order)
};

// Rank follows safetensors' `Dtype` enum (BOOL lowest ... U64 highest).
const std::vector<DtypeInfo>& dtype_table() {
  static const std::vector<DtypeInfo> table = {
      {"BOOL", c10::ScalarType::Bool, 0},
      {"U8", c10::ScalarType::Byte, 4},
      {"I8", c10::ScalarType::Char, 5},
      {"F8_E5M2", c10::ScalarType::Float8_e5m2, 6},
      {"F8_E4M3", c10::ScalarType::Float8_e4m3fn, 7},
      {"I16", c10::ScalarType::Short, 9},
      {"U16", c10::ScalarType::UInt16, 10},
      {"F16", c10::ScalarType::Half, 11},
      {"BF16", c10::ScalarType::BFloat16, 12},
      {"I32", c10::ScalarType::Int, 13},
      {"U32", c10::ScalarType::UInt32, 14},
      {"F32", c10::ScalarType::Float, 15},
      {"C64", c10::ScalarType::ComplexFloat, 16},
      {"F64", c10::ScalarType::Double, 17},
      {"I64", c10::ScalarType::Long, 18},
      {"U64", c10::ScalarType::UInt64, 19},
  };
  return table;
}

std::string accepted_dtypes() {
  std::string s;
  for (const auto& d : dtype_table()) {
    if (!s.empty()) s += ", ";
    s += d.name;
  }
  return s;
}

int dtype_rank(c10::ScalarType t) {
  for (const auto& d : dtype_table()) {
    if (d.type == t) return d.rank;
  }
  ACCEL_CHECK(false, "safetensors cannot hold tensors of dtype ", c10::toString(t),
              "; accepted: ", accepted_dtypes());
  return -1;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Header layout for a set of tensors, in the reference library's order.
struct Planned {
  std::string name;
  at::Tensor tensor;  // contiguous CPU
  uint64_t begin = 0;
  uint64_t end = 0;
};

std::vector<Planned> plan(const TensorMap& tensors) {
  std::vector<Planned> out;
  out.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    ACCEL_CHECK(t.defined(), "cannot save tensor '", name, "': it is undefined");
    dtype_rank(t.scalar_type());  // throws for unsupported dtypes
    at::Tensor c = t.detach();
    if (!c.device().is_cpu()) c = c.to(at::kCPU);
    if (c.is_conj()) c = c.resolve_conj();
    if (c.is_neg()) c = c.resolve_neg();
    c = c.contiguous();
    out.push_back({name, c, 0, 0});
  }
  std::stable_sort(out.begin(), out.end(), [](const Planned& a, const Planned& b) {
    int ra = dtype_rank(a.tensor.scalar_type()), rb = dtype_rank(b.tensor.scalar_type());
    if (ra != rb) return ra > rb;
    return a.name < b.name;
  });
  uint64_t offset = 0;
  for (auto& p : out) {
    p.begin = offset;
    offset += static_cast<uint64_t>(p.tensor.numel()) * p.tensor.element_size();
    p.end = offset;
  }
  return out;
}

std::string header_bytes(const std::vector<Planned>& planned, const Metadata& metadata) {
  // Built by hand so the bytes match the reference exactly: compact, __metadata__ first,
  // then tensors in data order, each {"dtype", "shape", "data_offsets"}.
  std::string h = "{";
  bool first = true;
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool f = true;
    for (const auto& [k, v] : metadata) {
      if (!f) h += ",";
      f = false;
      h += json(k).dump() + ":" + json(v).dump();
    }
    h += "}";
    first = false;
  }
  for (const auto& p : planned) {
    if (!first) h += ",";
    first = false;
    h += json(p.name).dump();
    h += ":{\"dtype\":\"";
    h += dtype_name(p.tensor.scalar_type());
    h += "\",\"shape\":[";
    for (int64_t d = 0; d < p.tensor.dim(); ++d) {
      if (d) h += ",";
      h += std::to_string(p.tensor.size(d));
    }
    h += "],\"data_offsets\":[" + std::to_string(p.begin) + "," + std::to_string(p.end) + "]}";
  }
  h += "}";
  h.append((8 - h.size() % 8) % 8, ' ');
  return h;
}

// A JSON value for an error message: scalars as written (cut at 80 characters), arrays and objects
// only by kind and size (dumping them would recurse once per nesting level, and headers may be big).
std::string brief(const json& v) {
  if (v.is_structured()) return c10::str("an ", v.type_name(), " of ", v.size(), " items");
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

std::string length_prefix(uint64_t n) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &n, 8);  // little-endian host (static_assert above)
  return s;
}

}  // namespace

std::string dtype_name(c10::ScalarType type) {
  for (const auto& d : dtype_table()) {
    if (d.type == type) return d.name;
  }
  ACCEL_CHECK(false, "safetensors cannot hold tensors of dtype ", c10::toString(type),
              "; accepted: ", accepted_dtypes());
  return {};
}

std::optional<c10::ScalarType> dtype_from_name(std::string_view name) {
  for (const auto& d : dtype_table()) {
    if (name == d.name) return d.type;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Reading

struct SafetensorsFile::Mapping {
  void* base = nullptr;  // the file's mapping, or the start of `owned`
  size_t size = 0;
  bool mapped = false;  // base came from mmap (else from `owned`)
  std::unique_ptr<char[]> owned;
  ~Mapping() {
    if (mapped && base != nullptr && base != MAP_FAILED) ::munmap(base, size);
  }
};

namespace {
constexpr const char* kNotSafetensorsHint =
    " HINT: the file is not a valid safetensors file (truncated, corrupted or another format); "
    "re-export it with safetensors' save_file or save_pretrained.";
}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const std::string where = c10::str("safetensors file '", path, "'");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ACCEL_CHECK_INPUT(fd >= 0, "cannot open ", where, ": ", std::strerror(errno),
                    ". HINT: check the path; a Hugging Face model folder holds model.safetensors "
                    "or model.safetensors.index.json.");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    ACCEL_CHECK_INPUT(false, "cannot stat ", where, ": ", std::strerror(errno));
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    ACCEL_CHECK_INPUT(false, where, " is ", file_size, " bytes long, shorter than the 8-byte header length.",
                      kNotSafetensorsHint);
  }
  mapping_ = std::make_shared<Mapping>();
  // Private writable mapping: views may be written in place (copy-on-write), never the file.
  mapping_->base = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int mmap_errno = errno;
  ::close(fd);
  if (mapping_->base == MAP_FAILED) {
    mapping_->base = nullptr;
    errno = mmap_errno;
    ACCEL_CHECK_INPUT(false, "cannot memory-map ", where, ": ", std::strerror(errno));
  }
  mapping_->mapped = true;
  mapping_->size = file_size;
  parse();
}

SafetensorsFile SafetensorsFile::from_bytes(std::string_view bytes, const std::string& name) {
  SafetensorsFile f;
  f.path_ = name;
  ACCEL_CHECK_INPUT(bytes.size() >= 8, "safetensors file '", name, "' is ", bytes.size(),
                    " bytes long, shorter than the 8-byte header length.", kNotSafetensorsHint);
  f.mapping_ = std::make_shared<Mapping>();
  // new[] storage: aligned for every dtype, like a page-aligned file mapping.
  f.mapping_->owned = std::make_unique<char[]>(bytes.size());
  std::memcpy(f.mapping_->owned.get(), bytes.data(), bytes.size());
  f.mapping_->base = f.mapping_->owned.get();
  f.mapping_->size = bytes.size();
  f.parse();
  return f;
}

void SafetensorsFile::parse() {
  const std::string where = c10::str("safetensors file '", path_, "'");
  const char* kHint = kNotSafetensorsHint;
  const uint64_t file_size = mapping_->size;
  const auto* bytes = static_cast<const char*>(mapping_->base);

  uint64_t n = 0;
  std::memcpy(&n, bytes, 8);
  ACCEL_CHECK_INPUT(n <= file_size - 8, where, ": header length ", n, " runs past the end of the file (",
                    file_size, " bytes).", kHint);
  ACCEL_CHECK_INPUT(n <= kMaxHeaderSize, where, ": header length ", n, " exceeds the limit of ",
                    kMaxHeaderSize, " bytes.", kHint);
  ACCEL_CHECK_INPUT(n >= 2 && bytes[8] == '{', where,
                    ": the header does not start with '{' (JSON object expected).", kHint);
  data_start_ = 8 + n;
  const uint64_t data_size = file_size - data_start_;

  // Parse, catching duplicate top-level names (nlohmann keeps the last one silently).
  std::set<std::string> seen;
  std::string duplicate;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(bytes + 8, bytes + 8 + n, cb);
  } catch (const json::exception& e) {
    ACCEL_CHECK_INPUT(false, where, ": the JSON header is not valid JSON (", e.what(), ").", kHint);
  }
  ACCEL_CHECK_INPUT(duplicate.empty(), where, ": tensor name '", duplicate, "' appears twice in the header.",
                    kHint);
  ACCEL_CHECK_INPUT(header.is_object(), where, ": the JSON header is not an object.", kHint);

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      ACCEL_CHECK_INPUT(v.is_object(), where, ": __metadata__ must be an object of strings.", kHint);
      for (auto m = v.begin(); m != v.end(); ++m) {
        ACCEL_CHECK_INPUT(m.value().is_string(), where, ": __metadata__ value of '", m.key(),
                          "' is not a string (", brief(m.value()), ").", kHint);
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string t = c10::str(where, ": tensor '", name, "'");
    ACCEL_CHECK_INPUT(
        v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"), t,
        " needs an object with dtype, shape and data_offsets, got ", brief(v), ".", kHint);
    const json& jd = v["dtype"];
    ACCEL_CHECK_INPUT(jd.is_string(), t, ": dtype is not a string.", kHint);
    auto dtype = dtype_from_name(jd.get<std::string>());
    ACCEL_CHECK_INPUT(dtype.has_value(), t, " has unknown dtype '", jd.get<std::string>(),
                      "'; accepted: ", accepted_dtypes(), ".",
                      " HINT: convert the tensor to a supported dtype before saving.");
    TensorEntry e;
    e.name = name;
    e.dtype = *dtype;
    const json& js = v["shape"];
    ACCEL_CHECK_INPUT(js.is_array(), t, ": shape is not an array.", kHint);
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : js) {
      ACCEL_CHECK_INPUT(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), t,
                        ": shape ", brief(js), " holds a value that is not a non-negative integer.", kHint);
      uint64_t dim = d.get<uint64_t>();
      ACCEL_CHECK_INPUT(dim <= static_cast<uint64_t>(INT64_MAX), t, ": shape ", brief(js), " is too large.",
                        kHint);
      e.shape.push_back(static_cast<int64_t>(dim));
      if (dim != 0 && numel > UINT64_MAX / dim) overflow = true;
      numel *= dim;
    }
    const json& jo = v["data_offsets"];
    ACCEL_CHECK_INPUT(
        jo.is_array() && jo.size() == 2 && jo[0].is_number_unsigned() && jo[1].is_number_unsigned(), t,
        ": data_offsets must be two non-negative integers, got ", brief(jo), ".", kHint);
    e.begin = jo[0].get<uint64_t>();
    e.end = jo[1].get<uint64_t>();
    ACCEL_CHECK_INPUT(e.begin <= e.end && e.end <= data_size, t, ": data_offsets [", e.begin, ", ", e.end,
                      ") are out of range (data section is ", data_size, " bytes).", kHint);
    const uint64_t item = c10::elementSize(e.dtype);
    ACCEL_CHECK_INPUT(!overflow && numel <= UINT64_MAX / item && numel * item == e.end - e.begin, t,
                      ": shape ", shape_str(e.shape), " of ", jd.get<std::string>(), " needs ",
                      overflow ? std::string("too many") : std::to_string(numel * item),
                      " bytes but data_offsets span ", e.end - e.begin, " bytes.", kHint);
    entries_.push_back(std::move(e));
  }

  std::sort(entries_.begin(), entries_.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  for (const auto& e : entries_) {
    ACCEL_CHECK_INPUT(e.begin >= expected, where, ": tensor '", e.name, "' (bytes [", e.begin, ", ", e.end,
                      ")) overlaps the tensor before it (which ends at ", expected, ").", kHint);
    ACCEL_CHECK_INPUT(e.begin == expected, where, ": tensor '", e.name, "' starts at byte ", e.begin,
                      " but the data before it ends at ", expected,
                      " (offsets must be contiguous, with no gap).", kHint);
    expected = e.end;
  }
  ACCEL_CHECK_INPUT(expected == data_size, where, ": the tensors cover ", expected,
                    " bytes but the data section holds ", data_size, " bytes.", kHint);
  for (size_t i = 0; i < entries_.size(); ++i) index_[entries_[i].name] = i;
}

SafetensorsFile::~SafetensorsFile() = default;
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [k, _] : index_) out.push_back(k);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const {
  return index_.count(name) > 0;
}

const TensorEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  ACCEL_CHECK_INPUT(it != index_.end(), "safetensors file '", path_, "' has no tensor '", name,
                    "' (it holds ", index_.size(), " tensors). HINT: list them with names().");
  return entries_[it->second];
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorEntry& e = entry(name);
  auto options = at::TensorOptions().dtype(e.dtype).device(at::kCPU);
  char* ptr = static_cast<char*>(mapping_->base) + data_start_ + e.begin;
  const size_t item = c10::elementSize(e.dtype);
  if (reinterpret_cast<uintptr_t>(ptr) % item != 0) {
    // Misaligned for the dtype (header not padded to 8 bytes by its writer): copy out.
    at::Tensor out = at::empty(e.shape, options);
    std::memcpy(out.data_ptr(), ptr, e.end - e.begin);
    return out;
  }
  std::shared_ptr<Mapping> keep = mapping_;
  return at::from_blob(
      ptr, e.shape, [keep](void*) mutable { keep.reset(); }, options);
}

TensorMap SafetensorsFile::tensors() const {
  TensorMap out;
  for (const auto& e : entries_) out.emplace(e.name, tensor(e.name));
  return out;
}

TensorMap load_file(const std::string& path, Metadata* metadata) {
  SafetensorsFile f(path);
  if (metadata != nullptr) *metadata = f.metadata();
  return f.tensors();
}

TensorMap load_bytes(std::string_view bytes, Metadata* metadata) {
  SafetensorsFile f = SafetensorsFile::from_bytes(bytes);
  if (metadata != nullptr) *metadata = f.metadata();
  return f.tensors();
}

// ---------------------------------------------------------------------------------------------
// Writing

std::string serialize(const TensorMap& tensors, const Metadata& metadata) {
  auto planned = plan(tensors);
  std::string header = header_bytes(planned, metadata);
  std::string out = length_prefix(header.size()) + header;
  out.reserve(out.size() + (planned.empty() ? 0 : planned.back().end));
  for (const auto& p : planned) {
    out.append(static_cast<const char*>(p.tensor.data_ptr()), p.end - p.begin);
  }
  return out;
}

void save_file(const TensorMap& tensors, const std::string& path, const Metadata& metadata) {
  auto planned = plan(tensors);
  std::string header = length_prefix(0) + header_bytes(planned, metadata);
  uint64_t n = header.size() - 8;
  std::memcpy(header.data(), &n, 8);
  fs::AtomicFile w(path);
  w.write(header.data(), header.size());
  for (const auto& p : planned) {
    if (p.end > p.begin) w.write(p.tensor.data_ptr(), p.end - p.begin);
  }
  w.commit();
}

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints

std::string shard_file_name(int64_t index, int64_t count, const std::string& prefix) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "-%05lld-of-%05lld.safetensors", static_cast<long long>(index),
                static_cast<long long>(count));
  return prefix + buf;
}

ShardIndex read_index(const std::string& path) {
  const std::string where = c10::str("checkpoint index '", path, "'");
  const char* kHint =
      " HINT: the index must look like {\"metadata\": {\"total_size\": N}, "
      "\"weight_map\": {\"tensor name\": \"model-00001-of-00002.safetensors\"}}; "
      "re-save the checkpoint with save_pretrained.";
  ACCEL_CHECK_INPUT(fs::is_regular_file(path), "cannot open ", where, ". HINT: check the path.");
  const std::string text = fs::read_file(path, "checkpoint index");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    ACCEL_CHECK_INPUT(false, where, " is not valid JSON (", e.what(), ").", kHint);
  }
  ACCEL_CHECK_INPUT(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), where,
                    " has no \"weight_map\" object.", kHint);
  ShardIndex idx;
  if (j.contains("metadata") && j["metadata"].is_object() && j["metadata"].contains("total_size")) {
    const json& ts = j["metadata"]["total_size"];
    ACCEL_CHECK_INPUT(ts.is_number_unsigned() || ts.is_number_integer(), where,
                      ": metadata.total_size is not an integer.", kHint);
    idx.total_size = ts.get<uint64_t>();
  }
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    ACCEL_CHECK_INPUT(it.value().is_string(), where, ": weight_map entry '", it.key(),
                      "' is not a file name.", kHint);
    std::string file = it.value().get<std::string>();
    ACCEL_CHECK_INPUT(!file.empty() && file.find('/') == std::string::npos && file != "." && file != "..",
                      where, ": weight_map entry '", it.key(), "' names '", file,
                      "', which is not a plain file name in the index's folder.", kHint);
    idx.weight_map[it.key()] = file;
  }
  return idx;
}

void write_index(const ShardIndex& index, const std::string& path) {
  json j;
  j["metadata"] = {{"total_size", index.total_size}};
  j["weight_map"] = json::object();
  for (const auto& [k, v] : index.weight_map) j["weight_map"][k] = v;
  fs::write_file_atomic(path, j.dump(2) + "\n");
}

namespace {
void remove_leftovers(const std::string& folder, const std::string& prefix,
                      const std::vector<std::string>& written);
}  // namespace

std::vector<std::string> save_checkpoint(const TensorMap& tensors, const std::string& folder,
                                         const SaveCheckpointOptions& options) {
  ACCEL_CHECK(options.max_shard_size() > 0, "save_checkpoint: max_shard_size must be > 0");
  ACCEL_CHECK(!options.prefix().empty(), "save_checkpoint: prefix must not be empty");
  fs::create_directories(folder);

  // Fill shards as huggingface_hub's split_state_dict_into_shards does.
  std::vector<TensorMap> shards;
  TensorMap current;
  uint64_t current_size = 0, total = 0;
  for (const auto& [name, t] : tensors) {
    const uint64_t size = static_cast<uint64_t>(t.numel()) * t.element_size();
    total += size;
    if (size > options.max_shard_size()) {
      shards.push_back(TensorMap{{name, t}});
      continue;
    }
    if (current_size + size > options.max_shard_size() && !current.empty()) {
      shards.push_back(std::move(current));
      current = {};
      current_size = 0;
    }
    current.emplace(name, t);
    current_size += size;
  }
  if (!current.empty() || shards.empty()) shards.push_back(std::move(current));

  const std::string& prefix = options.prefix();
  const std::string single = fs::join(folder, prefix + ".safetensors");
  const std::string index_path = fs::join(folder, prefix + ".safetensors.index.json");
  std::vector<std::string> written;
  if (shards.size() == 1) {
    save_file(shards[0], single, options.metadata());
    written.push_back(single);
  } else {
    ShardIndex index;
    index.total_size = total;
    const auto count = static_cast<int64_t>(shards.size());
    for (int64_t i = 0; i < count; ++i) {
      const std::string name = shard_file_name(i + 1, count, prefix);
      save_file(shards[i], fs::join(folder, name), options.metadata());
      for (const auto& [k, _] : shards[i]) index.weight_map[k] = name;
      written.push_back(fs::join(folder, name));
    }
    write_index(index, index_path);
    written.push_back(index_path);
  }

  remove_leftovers(folder, prefix, written);
  return written;
}

namespace {

// Removes what an earlier save with this prefix left in `folder` and this one did not write.
void remove_leftovers(const std::string& folder, const std::string& prefix,
                      const std::vector<std::string>& written) {
  const std::string single = fs::join(folder, prefix + ".safetensors");
  const std::string index_path = fs::join(folder, prefix + ".safetensors.index.json");
  std::set<std::string> keep(written.begin(), written.end());
  const std::regex shard_re(std::regex_replace(prefix, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                            R"(-\d{5}-of-\d{5}\.safetensors)");
  std::error_code ec;
  for (const fs::DirEntry& de : fs::list_dir(folder, ec)) {
    const std::string p = fs::join(folder, de.name);
    bool ours = std::regex_match(de.name, shard_re) || p == single || p == index_path;
    if (ours && keep.count(p) == 0) fs::remove(p, ec);
  }
}

}  // namespace

std::vector<std::string> save_checkpoint_streaming(
    const std::vector<TensorMeta>& layout,
    const std::function<void(const std::function<void(const std::string&, const at::Tensor&)>&)>& produce,
    const std::string& folder, const SaveCheckpointOptions& options) {
  ACCEL_CHECK(options.max_shard_size() > 0, "save_checkpoint: max_shard_size must be > 0");
  fs::create_directories(folder);
  auto bytes_of = [](const TensorMeta& m) {
    int64_t n = 1;
    for (auto d : m.shape) n *= d;
    return static_cast<uint64_t>(n) * c10::elementSize(m.dtype);
  };
  // Shards in arrival order, filled as save_checkpoint fills them.
  std::vector<std::vector<size_t>> shards;
  std::vector<size_t> current;
  uint64_t current_size = 0, total = 0;
  for (size_t i = 0; i < layout.size(); ++i) {
    const uint64_t size = bytes_of(layout[i]);
    total += size;
    if (current_size + size > options.max_shard_size() && !current.empty()) {
      shards.push_back(std::move(current));
      current.clear();
      current_size = 0;
    }
    current.push_back(i);
    current_size += size;
  }
  if (!current.empty() || shards.empty()) shards.push_back(std::move(current));
  const std::string& prefix = options.prefix();
  const auto count = static_cast<int64_t>(shards.size());
  auto file_of = [&](size_t s) {
    return count == 1 ? fs::join(folder, prefix + ".safetensors")
                      : fs::join(folder, shard_file_name(static_cast<int64_t>(s) + 1, count, prefix));
  };
  std::vector<std::string> written;
  std::unique_ptr<fs::AtomicFile> out;
  size_t shard = 0, pos = 0;  // the next tensor expected: shards[shard][pos]
  auto open_shard = [&] {
    std::vector<Planned> planned;
    uint64_t offset = 0;
    for (size_t i : shards[shard]) {
      const TensorMeta& m = layout[i];
      Planned p{m.name, at::empty(m.shape, at::TensorOptions().dtype(m.dtype).device(at::kMeta)), offset, 0};
      offset += bytes_of(m);
      p.end = offset;
      planned.push_back(std::move(p));
    }
    std::string header = length_prefix(0) + header_bytes(planned, options.metadata());
    uint64_t n = header.size() - 8;
    std::memcpy(header.data(), &n, 8);
    out = std::make_unique<fs::AtomicFile>(file_of(shard));
    out->write(header.data(), header.size());
  };
  auto close_shard = [&] {
    out->commit();
    out.reset();
    written.push_back(file_of(shard));
    ++shard;
    pos = 0;
  };
  if (!shards[0].empty()) open_shard();
  ShardIndex index;
  index.total_size = total;
  produce([&](const std::string& name, const at::Tensor& t) {
    ACCEL_CHECK(shard < shards.size(), "save_checkpoint_streaming: tensor '", name,
                "' arrived after the last one.");
    const TensorMeta& m = layout[shards[shard][pos]];
    ACCEL_CHECK(name == m.name && t.scalar_type() == m.dtype && t.sizes().vec() == m.shape,
                "save_checkpoint_streaming: expected '", m.name, "' (", m.dtype, " ",
                c10::IntArrayRef(m.shape), ") next, got '", name, "' (", t.scalar_type(), " ", t.sizes(),
                ").");
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    if (c.numel() > 0) out->write(c.data_ptr(), c.numel() * c.element_size());
    index.weight_map[name] = fs::filename(file_of(shard));
    if (++pos == shards[shard].size()) {
      close_shard();
      if (shard < shards.size()) open_shard();
    }
  });
  ACCEL_CHECK(shard == shards.size() || (shards.size() == 1 && shards[0].empty()),
              "save_checkpoint_streaming: only ", index.weight_map.size(), " of ", layout.size(),
              " tensors arrived.");
  if (shards.size() == 1 && shards[0].empty()) {
    save_file({}, file_of(0), options.metadata());
    written.push_back(file_of(0));
  }
  if (count > 1) {
    const std::string index_path = fs::join(folder, prefix + ".safetensors.index.json");
    write_index(index, index_path);
    written.push_back(index_path);
  }
  remove_leftovers(folder, prefix, written);
  return written;
}

std::optional<std::string> find_checkpoint_file(const std::string& folder, const std::string& prefix) {
  const std::string index = fs::join(folder, prefix + ".safetensors.index.json");
  if (fs::is_regular_file(index)) return index;
  const std::string single = fs::join(folder, prefix + ".safetensors");
  if (fs::is_regular_file(single)) return single;
  return std::nullopt;
}

Checkpoint::Checkpoint(const std::string& file_folder_or_index) {
  std::string p = file_folder_or_index;
  if (fs::is_directory(p)) {
    auto found = find_checkpoint_file(p);
    ACCEL_CHECK_INPUT(found.has_value(), "no checkpoint in folder '", p,
                      "': neither model.safetensors nor model.safetensors.index.json is there. "
                      "HINT: pass a Hugging Face model folder (saved with save_pretrained, "
                      "safe_serialization=True) or the .safetensors file itself; "
                      "pytorch_model.bin (pickle) is not read.");
    p = *found;
  }
  ACCEL_CHECK_INPUT(fs::exists(p), "checkpoint '", p, "' does not exist. HINT: check the path.");
  source_ = p;
  const std::string fname = fs::filename(p);
  const bool is_index = fname.size() > 11 && fname.substr(fname.size() - 11) == ".index.json";
  if (!is_index) {
    files_.emplace_back(p);
    for (const auto& e : files_[0].entries()) where_[e.name] = 0;
    return;
  }
  sharded_ = true;
  ShardIndex index = read_index(p);
  std::map<std::string, size_t> file_slot;
  for (const auto& [name, file] : index.weight_map) {
    if (file_slot.count(file) == 0) {
      const std::string shard = fs::join(fs::parent(p), file);
      ACCEL_CHECK_INPUT(fs::exists(shard), "checkpoint index '", p, "' lists shard '", file,
                        "' (for tensor '", name, "'), which is not in '", fs::parent(p),
                        "'. HINT: copy every shard next to the index.");
      file_slot[file] = files_.size();
      files_.emplace_back(shard);
    }
  }
  for (const auto& [name, file] : index.weight_map) {
    const size_t slot = file_slot[file];
    ACCEL_CHECK_INPUT(files_[slot].contains(name), "checkpoint index '", p, "' says tensor '", name,
                      "' is in '", file,
                      "', but that shard does not hold it. HINT: the index and the shards come "
                      "from different saves; re-save the checkpoint.");
    where_[name] = slot;
  }
  // Names a shard holds that the index does not list are ignored, as transformers does, unless
  // another shard holds the same name (then the checkpoint is ambiguous).
  std::map<std::string, size_t> holder;
  for (size_t s = 0; s < files_.size(); ++s) {
    for (const auto& e : files_[s].entries()) {
      auto [it, inserted] = holder.emplace(e.name, s);
      ACCEL_CHECK_INPUT(inserted, "checkpoint '", p, "': tensor '", e.name, "' is in two shards, '",
                        files_[it->second].path(), "' and '", files_[s].path(),
                        "'. HINT: re-save the checkpoint.");
    }
  }
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& [k, _] : where_) out.push_back(k);
  return out;
}

bool Checkpoint::contains(const std::string& name) const {
  return where_.count(name) > 0;
}

const SafetensorsFile& Checkpoint::file_holding(const std::string& name) const {
  auto it = where_.find(name);
  ACCEL_CHECK_INPUT(it != where_.end(), "checkpoint '", source_, "' has no tensor '", name, "' (it holds ",
                    where_.size(), " tensors). HINT: list them with names().");
  return files_[it->second];
}

const TensorEntry& Checkpoint::entry(const std::string& name) const {
  return file_holding(name).entry(name);
}

at::Tensor Checkpoint::tensor(const std::string& name) const {
  return file_holding(name).tensor(name);
}

const std::string& Checkpoint::file_of(const std::string& name) const {
  return file_holding(name).path();
}

std::vector<std::string> Checkpoint::files() const {
  std::vector<std::string> out;
  if (sharded_) out.push_back(source_);
  for (const auto& f : files_) out.push_back(f.path());
  return out;
}

TensorMap Checkpoint::tensors() const {
  TensorMap out;
  for (const auto& [name, slot] : where_) out.emplace(name, files_[slot].tensor(name));
  return out;
}

}  // namespace accel::checkpoint
