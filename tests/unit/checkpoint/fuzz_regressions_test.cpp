// Regression tests for what fuzzing the checkpoint readers found (tests/fuzz/fuzz_manifest.cpp,
// fuzz_safetensors.cpp; crashing inputs in tests/fuzz/regressions/), and the in-memory reader
// (load_bytes / SafetensorsFile::from_bytes) that the safetensors fuzz target uses.
#include "accel/checkpoint/safetensors.h"
#include "accel/checkpoint/state_folder.h"
#include "accel/core/error.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace fs = accel::fs;
using accel::test::Path;
using namespace accel::checkpoint;

namespace {

Path fresh_dir(const std::string& name) {
  Path d = Path(fs::temp_directory()) / ("accel_fuzzreg_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const Path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string load_error(const Path& dir) {
  try {
    verify_state_folder(dir);
  } catch (const accel::InputError& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

// Manifest entries that are not {"size": N, "checksum": "..."} objects used to escape as
// nlohmann::json::type_error (value() on an array, get<string>() on a number, ...).
TEST(StateFolderFuzz, MalformedEntriesAreInputErrors) {
  const Path d = fresh_dir("entries");
  write(d / "model.safetensors", "accel-fuzz\n");
  const std::string sum = file_checksum(d / "model.safetensors");
  for (const std::string& entry : std::vector<std::string>{
           "[11]", "11", "null", "{\"size\": \"11\", \"checksum\": \"" + sum + "\"}",
           "{\"size\": 11, \"checksum\": 5}", "{\"size\": -11, \"checksum\": \"" + sum + "\"}",
           "{\"size\": 11.0, \"checksum\": \"" + sum + "\"}", "{\"checksum\": \"" + sum + "\"}"}) {
    write(d / kManifestName, R"({"format_version": 1, "files": {"model.safetensors": )" + entry + "}}");
    const std::string msg = load_error(d);
    EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << entry << ": " << msg;
    EXPECT_NE(msg.find("HINT"), std::string::npos) << entry << ": " << msg;
  }
  write(d / kManifestName,
        R"({"format_version": 1, "files": {"model.safetensors": {"size": 11, "checksum": ")" + sum + "\"}}}");
  EXPECT_NO_THROW(verify_state_folder(d));
  fs::remove_all(d);
}

// Names that leave the folder are refused before anything is opened; a folder or an overlong
// name is an InputError too (std::filesystem used to throw filesystem_error for ENAMETOOLONG).
TEST(StateFolderFuzz, NamesOutsideTheFolderAndOddMembersAreRefused) {
  const Path d = fresh_dir("names");
  fs::create_directories(d / "sub");
  write(d / "sub" / "x", "x");
  write(d.parent() / ("accel_fuzzreg_secret_" + std::to_string(::getpid())), "secret\n");
  for (const std::string& name :
       std::vector<std::string>{"../accel_fuzzreg_secret_" + std::to_string(::getpid()), "/etc/hostname",
                                "sub/x", ".", "..", "", "sub", std::string(300, 'a')}) {
    nlohmann::json m = {{"format_version", 1}, {"files", {{name, {{"size", 1}, {"checksum", "0"}}}}}};
    write(d / kManifestName, m.dump());
    EXPECT_NE(load_error(d), "no error") << name;
  }
  EXPECT_THROW(check_member_name("../x", d), accel::InputError);
  EXPECT_THROW(check_member_name("/abs", d), accel::InputError);
  EXPECT_THROW(check_member_name(std::string("a\0b", 3), d), accel::InputError);
  EXPECT_NO_THROW(check_member_name("model.safetensors", d));
  fs::remove(d.parent() / ("accel_fuzzreg_secret_" + std::to_string(::getpid())));
  fs::remove_all(d);
}

// load_bytes reads what save_file writes, with the same validation as the file reader.
TEST(SafetensorsFuzz, LoadBytesMatchesLoadFile) {
  TensorMap t = {{"a", torch::arange(6, torch::kFloat32).reshape({2, 3})},
                 {"b", torch::tensor({1, 2}, torch::kInt64)}};
  const std::string bytes = serialize(t, {{"format", "pt"}});
  Metadata meta;
  TensorMap back = load_bytes(bytes, &meta);
  EXPECT_EQ(meta.at("format"), "pt");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_TRUE(torch::equal(back.at("a"), t.at("a")));
  EXPECT_TRUE(torch::equal(back.at("b"), t.at("b")));
  EXPECT_EQ(SafetensorsFile::from_bytes(bytes, "mem").path(), Path("mem"));
  // Too short, and a header length past the end: InputError naming the source.
  EXPECT_THROW(load_bytes(std::string(7, '\0')), accel::InputError);
  std::string bad = bytes;
  const uint64_t huge = 1ULL << 62;
  std::memcpy(bad.data(), &huge, 8);
  try {
    SafetensorsFile::from_bytes(bad, "mem.safetensors");
    FAIL() << "expected accel::InputError";
  } catch (const accel::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("mem.safetensors"), std::string::npos) << e.what();
  }
}

// Error messages about a malformed entry describe nested values instead of dumping them.
TEST(SafetensorsFuzz, DeeplyNestedHeaderValueIsABriefInputError) {
  std::string header = "{\"t\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes += header;
  try {
    load_bytes(bytes);
    FAIL() << "expected accel::InputError";
  } catch (const accel::InputError& e) {
    EXPECT_LT(std::string(e.what()).size(), 1000u);
  }
}
