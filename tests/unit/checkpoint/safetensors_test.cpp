// Tests of the safetensors reader/writer and sharded checkpoints: every dtype round trip, files
// written by the Python safetensors library (committed fixtures) read back and re-written byte
// for byte, every malformed-file error, atomic writes, shard layout.
#include "accel/checkpoint/safetensors.h"

#include "accel/core/error.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace fs = accel::fs;
using accel::test::Path;
using namespace accel::checkpoint;

namespace {

const Path kFixtures = Path(ACCEL_SOURCE_DIR) / "tests" / "fixtures" / "bert";

using TempDir = accel::test::TempDir;  // a fresh folder per test, removed at the end

std::string read_bytes(const Path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_bytes(const Path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out << bytes;
}

// A safetensors file from a raw header and data; `declared` overrides the length field.
std::string raw_file(const std::string& header, const std::string& data, int64_t declared = -1) {
  uint64_t n = declared >= 0 ? static_cast<uint64_t>(declared) : header.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  if (a.numel() == 0) return true;  // empty tensors may have no storage (memcmp on null is UB)
  auto ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.numel() * ca.element_size()) == 0;
}

// Every dtype we support, with distinct values.
TensorMap all_dtypes() {
  TensorMap m;
  auto base = torch::arange(6, torch::kLong).reshape({2, 3});
  auto signed_base = base - 3;
  auto f = torch::tensor({-1.5, 0.0, 2.25, 3.0, -0.125, 100.0}, torch::kDouble).reshape({2, 3});
  m["f64"] = f;
  m["f32"] = f.to(torch::kFloat);
  m["f16"] = f.to(torch::kHalf);
  m["bf16"] = f.to(torch::kBFloat16);
  m["f8_e4m3"] = f.to(torch::kFloat).to(c10::ScalarType::Float8_e4m3fn);
  m["f8_e5m2"] = f.to(torch::kFloat).to(c10::ScalarType::Float8_e5m2);
  m["c64"] = torch::complex(f.to(torch::kFloat), -f.to(torch::kFloat));
  m["i64"] = signed_base * 1'000'000'000'000LL;
  m["i32"] = (signed_base * 100'000).to(torch::kInt);
  m["i16"] = (signed_base * 1000).to(torch::kShort);
  m["i8"] = signed_base.to(torch::kChar);
  m["u8"] = (base * 50).to(torch::kByte);
  m["u16"] = (base * 10000).to(c10::ScalarType::UInt16);
  m["u32"] = (base * 1'000'000'000LL).to(c10::ScalarType::UInt32);
  m["u64"] = (base * 1'000'000'000'000LL).to(c10::ScalarType::UInt64);
  m["bool"] = base.remainder(2).eq(1);
  m["scalar"] = torch::tensor(7.5f);
  m["empty"] = torch::zeros({0, 3});
  return m;
}

// Expects an accel::InputError whose message names `file`, contains `needle` and a HINT.
template <typename F>
void expect_input_error(F&& f, const Path& file, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one containing '" << needle << "'";
  } catch (const accel::InputError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(file.filename()), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "wanted '" << needle << "' in: " << msg;
    EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  }
}

}  // namespace

TEST(SafetensorsDtype, NamesRoundTrip) {
  for (const char* n : {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32",
                        "F32", "C64", "F64", "I64", "U64"}) {
    auto t = dtype_from_name(n);
    ASSERT_TRUE(t.has_value()) << n;
    EXPECT_EQ(dtype_name(*t), n);
  }
  EXPECT_FALSE(dtype_from_name("F128").has_value());
  EXPECT_THROW(dtype_name(torch::kComplexDouble), accel::Error);
}

TEST(Safetensors, RoundTripEveryDtype) {
  TempDir dir;
  auto tensors = all_dtypes();
  Metadata meta{{"format", "pt"}, {"note", "x\"y\\z\n\u00e9"}};
  save_file(tensors, dir / "all.safetensors", meta);
  SafetensorsFile f(dir / "all.safetensors");
  EXPECT_EQ(f.metadata(), meta);
  ASSERT_EQ(f.names().size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    at::Tensor r = f.tensor(name);
    EXPECT_TRUE(same_bytes(r, t)) << name;
    EXPECT_EQ(r.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(r.sizes(), t.sizes()) << name;
  }
  // Header padded to 8 bytes with spaces, data 8-byte aligned.
  std::string bytes = read_bytes(dir / "all.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.substr(8, 16), "{\"__metadata__\":");
  // In-memory serialisation is the same bytes.
  EXPECT_EQ(serialize(tensors, meta), bytes);
}

TEST(Safetensors, NonContiguousAndOrderIsDeterministic) {
  TempDir dir;
  auto t = torch::arange(12, torch::kFloat).reshape({3, 4});
  TensorMap a{{"t", t.t()}, {"b", torch::ones({2}, torch::kDouble)}, {"a", torch::zeros({1}, torch::kByte)}};
  save_file(a, dir / "x.safetensors");
  auto back = load_file(dir / "x.safetensors");
  EXPECT_TRUE(torch::equal(back["t"], t.t().contiguous()));
  // Widest dtype first (as the reference does), then by name.
  SafetensorsFile f(dir / "x.safetensors");
  ASSERT_EQ(f.entries().size(), 3u);
  EXPECT_EQ(f.entries()[0].name, "b");
  EXPECT_EQ(f.entries()[1].name, "t");
  EXPECT_EQ(f.entries()[2].name, "a");
  EXPECT_EQ(serialize(a), serialize(a));
}

TEST(Safetensors, ReadsFileWrittenByPythonAndWritesTheSameBytes) {
  const Path file = kFixtures / "safetensors" / "dtypes.safetensors";
  SafetensorsFile f(file);
  EXPECT_EQ(f.metadata().at("writer"), "safetensors-python");
  auto base = torch::arange(6, torch::kLong).reshape({2, 3});
  auto vals = torch::tensor({-1.5, 0.0, 2.25, 3.0, -0.125, 100.0}, torch::kDouble).reshape({2, 3});
  TensorMap expected{
      {"f64", vals},
      {"f32", vals.to(torch::kFloat)},
      {"f16", vals.to(torch::kHalf)},
      {"bf16", vals.to(torch::kBFloat16)},
      {"i64", (base - 3) * 1'000'000'000'000LL},
      {"i32", ((base - 3) * 100'000).to(torch::kInt)},
      {"i16", ((base - 3) * 1000).to(torch::kShort)},
      {"i8", (base - 3).to(torch::kChar)},
      {"u8", (base * 50).to(torch::kByte)},
      {"bool", base.remainder(2).eq(1)},
      {"scalar", torch::tensor(7.5f)},
      {"empty", torch::zeros({0, 3})},
  };
  ASSERT_EQ(f.names().size(), expected.size());
  for (const auto& [name, t] : expected) {
    EXPECT_TRUE(same_bytes(f.tensor(name), t)) << name << ": " << f.tensor(name);
  }
  // Our writer produces the reference's bytes exactly.
  EXPECT_EQ(serialize(expected, f.metadata()), read_bytes(file));
}

TEST(Safetensors, ViewsAreZeroCopyCopyOnWriteAndKeepTheMappingAlive) {
  TempDir dir;
  save_file({{"w", torch::arange(4, torch::kFloat)}}, dir / "v.safetensors");
  at::Tensor view;
  {
    SafetensorsFile f(dir / "v.safetensors");
    view = f.tensor("w");
    at::Tensor again = f.tensor("w");
    EXPECT_EQ(view.data_ptr(), again.data_ptr());  // same mapped bytes, no copy
  }
  EXPECT_TRUE(torch::equal(view, torch::arange(4, torch::kFloat)));  // outlives the file object
  view.mul_(10);                                                     // private mapping
  EXPECT_TRUE(
      torch::equal(SafetensorsFile(dir / "v.safetensors").tensor("w"), torch::arange(4, torch::kFloat)));
}

TEST(Safetensors, MisalignedDataIsCopied) {
  TempDir dir;
  // Header of odd length (no padding), so the F32 data starts at an odd address.
  std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_NE(header.size() % 4, 0u);
  float v[2] = {1.5f, -2.f};
  write_bytes(dir / "m.safetensors", raw_file(header, std::string(reinterpret_cast<char*>(v), 8)));
  auto t = SafetensorsFile(dir / "m.safetensors").tensor("a");
  EXPECT_TRUE(torch::equal(t, torch::tensor({1.5f, -2.f})));
}

TEST(Safetensors, AtomicWriteLeavesNoTemporaryAndReplaces) {
  TempDir dir;
  save_file({{"a", torch::ones({3})}}, dir / "x.safetensors");
  save_file({{"a", torch::zeros({5})}}, dir / "x.safetensors");
  EXPECT_EQ(load_file(dir / "x.safetensors")["a"].numel(), 5);
  EXPECT_EQ(fs::list_dir(dir.path()).size(), 1u);
  // A failing save (unsupported dtype) leaves the old file intact and no temporary.
  EXPECT_THROW(save_file({{"c", torch::zeros({1}, torch::kComplexDouble)}}, dir / "x.safetensors"),
               accel::Error);
  EXPECT_EQ(load_file(dir / "x.safetensors")["a"].numel(), 5);
  fs::write_file_atomic(dir / "sub" / "t.txt", "hello");
  EXPECT_EQ(read_bytes(dir / "sub" / "t.txt"), "hello");
}

TEST(SafetensorsMalformed, EveryCaseIsAnInputErrorWithHint) {
  TempDir dir;
  const std::string four(16, '\0');
  struct Case {
    std::string name, bytes, needle;
  };
  auto ok_entry = [](const std::string& n, int b, int e) {
    return "\"" + n + "\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string((e - b) / 4) +
           "],\"data_offsets\":[" + std::to_string(b) + "," + std::to_string(e) + "]}";
  };
  std::vector<Case> cases = {
      {"short", std::string("abc"), "shorter than the 8-byte header length"},
      {"empty", std::string(), "shorter than the 8-byte header length"},
      {"past_end", raw_file("{}", "", 1000), "runs past the end of the file"},
      {"not_object_start", raw_file("[1,2]   ", ""), "does not start with '{'"},
      {"bad_json", raw_file("{\"a\":{\"dtype\":", ""), "not valid JSON"},
      {"out_of_range", raw_file("{" + ok_entry("a", 0, 32) + "}", four), "out of range"},
      {"begin_after_end", raw_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", four),
       "out of range"},
      {"overlap", raw_file("{" + ok_entry("a", 0, 8) + "," + ok_entry("b", 4, 16) + "}", four), "overlaps"},
      {"gap", raw_file("{" + ok_entry("a", 0, 4) + "," + ok_entry("b", 8, 16) + "}", four), "contiguous"},
      {"uncovered", raw_file("{" + ok_entry("a", 0, 8) + "}", four), "data section holds 16"},
      {"unknown_dtype", raw_file(R"({"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})", four),
       "unknown dtype 'F128'"},
      {"size_mismatch", raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", four),
       "needs 12 bytes but data_offsets span 16"},
      {"duplicate", raw_file("{" + ok_entry("a", 0, 8) + "," + ok_entry("a", 8, 16) + "}", four),
       "'a' appears twice"},
      {"missing_field", raw_file(R"({"a":{"dtype":"F32","shape":[4]}})", four),
       "needs an object with dtype, shape and data_offsets"},
      {"negative_shape", raw_file(R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", four),
       "not a non-negative integer"},
      {"bad_offsets", raw_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0]}})", four),
       "data_offsets must be two"},
      {"metadata_not_string", raw_file(R"({"__metadata__":{"k":1}})", ""), "is not a string"},
      {"not_object", raw_file("{\"a\":5}", ""), "needs an object"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Path p = dir / (c.name + ".safetensors");
    write_bytes(p, c.bytes);
    expect_input_error([&] { SafetensorsFile f(p); }, p, c.needle);
  }
  // Absent file and absent tensor.
  expect_input_error([&] { SafetensorsFile f(dir / "nope.safetensors"); }, dir / "nope.safetensors",
                     "cannot open");
  save_file({{"a", torch::ones({1})}}, dir / "ok.safetensors");
  expect_input_error([&] { SafetensorsFile(dir / "ok.safetensors").tensor("b"); }, dir / "ok.safetensors",
                     "has no tensor 'b'");
}

TEST(SafetensorsSharded, SaveSplitsNamesAndIndexesLikeTransformers) {
  TempDir dir;
  TensorMap t;
  for (int i = 0; i < 5; ++i) t["w" + std::to_string(i)] = torch::full({25}, float(i));  // 100 bytes
  t["big"] = torch::zeros({100});                                                        // 400 bytes
  auto files = save_checkpoint(t, dir.path(), SaveCheckpointOptions().max_shard_size(250));
  // Name order: big (own shard, too large), w0 w1 | w2 w3 | w4.
  ASSERT_EQ(files.size(), 5u);
  EXPECT_EQ(fs::filename(files[0]), "model-00001-of-00004.safetensors");
  EXPECT_EQ(fs::filename(files[3]), "model-00004-of-00004.safetensors");
  EXPECT_EQ(fs::filename(files[4]), "model.safetensors.index.json");
  ShardIndex idx = read_index(files[4]);
  EXPECT_EQ(idx.total_size, 900u);
  EXPECT_EQ(idx.weight_map.at("big"), "model-00001-of-00004.safetensors");
  EXPECT_EQ(idx.weight_map.at("w1"), "model-00002-of-00004.safetensors");
  EXPECT_EQ(idx.weight_map.at("w2"), "model-00003-of-00004.safetensors");
  EXPECT_EQ(idx.weight_map.at("w4"), "model-00004-of-00004.safetensors");
  EXPECT_EQ(SafetensorsFile(files[0]).metadata().at("format"), "pt");

  Checkpoint ck(dir.path());
  EXPECT_EQ(ck.files().size(), 5u);
  EXPECT_EQ(fs::filename(ck.file_of("w3")), "model-00003-of-00004.safetensors");
  for (const auto& [name, v] : t) EXPECT_TRUE(torch::equal(ck.tensor(name), v)) << name;

  // Saving again unsharded removes the old shards and the index.
  save_checkpoint(t, dir.path());
  int n = 0;
  for (const auto& e : fs::list_dir(dir.path())) {
    EXPECT_EQ(e.name, "model.safetensors");
    ++n;
  }
  EXPECT_EQ(n, 1);
  EXPECT_EQ(Checkpoint(dir.path()).names().size(), t.size());
  EXPECT_EQ(shard_file_name(2, 12, "pytorch"), "pytorch-00002-of-00012.safetensors");
}

TEST(SafetensorsSharded, ReadsShardsWrittenByTransformers) {
  Checkpoint sharded(kFixtures / "sharded");
  Checkpoint single(kFixtures / "tiny" / "model.safetensors");
  EXPECT_EQ(sharded.files().size(), 5u);  // index + 4 shards
  EXPECT_EQ(sharded.names(), single.names());
  for (const auto& name : single.names()) {
    EXPECT_TRUE(torch::equal(sharded.tensor(name), single.tensor(name))) << name;
  }
  EXPECT_EQ(read_index(kFixtures / "sharded" / "model.safetensors.index.json").total_size, 94476u);
}

TEST(SafetensorsSharded, BrokenIndexesAreInputErrors) {
  TempDir dir;
  TensorMap t{{"a", torch::ones({4})}, {"b", torch::ones({4})}};
  save_checkpoint(t, dir.path(), SaveCheckpointOptions().max_shard_size(16));
  const Path index = dir / "model.safetensors.index.json";
  const std::string good = read_bytes(index);

  write_bytes(index, "{not json");
  expect_input_error([&] { Checkpoint c(dir.path()); }, index, "not valid JSON");
  write_bytes(index, R"({"metadata":{}})");
  expect_input_error([&] { Checkpoint c(dir.path()); }, index, "weight_map");
  write_bytes(index, R"({"weight_map":{"a":"../evil.safetensors"}})");
  expect_input_error([&] { Checkpoint c(dir.path()); }, index, "not a plain file name");
  write_bytes(index, R"({"weight_map":{"a":"gone.safetensors"}})");
  expect_input_error([&] { Checkpoint c(dir.path()); }, index, "gone.safetensors");
  write_bytes(index, R"({"weight_map":{"a":"model-00002-of-00002.safetensors"}})");
  expect_input_error([&] { Checkpoint c(dir.path()); }, index, "does not hold it");
  write_bytes(index, good);
  EXPECT_EQ(Checkpoint(index).names().size(), 2u);
  fs::remove_all(dir.path());
  fs::create_directories(dir.path());
  expect_input_error([&] { Checkpoint c(dir.path()); }, dir.path(), "no checkpoint in folder");
}

// The C++ -> Python direction, when the reference venv exists (CI: skipped; the reference
// script tools/reference/check_bert_reference.py covers it too).
TEST(Safetensors, PythonReadsOurFile) {
  const Path py = Path(ACCEL_SOURCE_DIR) / ".venv-ref" / "bin" / "python";
  if (!fs::exists(py)) GTEST_SKIP() << "no " << py;
  TempDir dir;
  auto tensors = all_dtypes();
  save_file(tensors, dir / "ours.safetensors", {{"format", "pt"}});
  const Path script = dir / "check.py";
  write_bytes(script, R"PY(
import sys, torch
from safetensors.torch import load_file
from safetensors import safe_open
t = load_file(sys.argv[1])
f = torch.tensor([-1.5, 0.0, 2.25, 3.0, -0.125, 100.0], dtype=torch.float64).reshape(2, 3)
base = torch.arange(6).reshape(2, 3)
assert torch.equal(t["f64"], f)
assert torch.equal(t["bf16"], f.to(torch.bfloat16))
assert torch.equal(t["f16"], f.to(torch.float16))
assert torch.equal(t["f8_e4m3"].float(), f.float().to(torch.float8_e4m3fn).float())
assert torch.equal(t["c64"], torch.complex(f.float(), -f.float()))
assert torch.equal(t["i64"], (base - 3) * 1000000000000)
assert torch.equal(t["u16"].to(torch.int64), base * 10000)
assert torch.equal(t["u64"].to(torch.int64), base * 1000000000000)
assert torch.equal(t["bool"], base % 2 == 1)
assert t["scalar"].shape == () and t["scalar"].item() == 7.5
assert t["empty"].shape == (0, 3)
assert safe_open(sys.argv[1], "pt").metadata() == {"format": "pt"}
print("python read", len(t), "tensors OK")
)PY");
  const std::string cmd = py.string() + " " + script.string() + " " + (dir / "ours.safetensors").string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}
