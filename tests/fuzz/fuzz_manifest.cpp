// libFuzzer target: state-folder verification (accel::checkpoint::verify_state_folder and
// check_member_name). Each input is written as the manifest (accel_state.json) of a folder on
// tmpfs holding a few small member files, a sub-folder, and next to it a file outside the folder
// ("secret"). Invariants: a manifest naming anything but a plain file inside the folder
// ("../secret", "/etc/passwd", "sub/x", ".", ...) is rejected with accel::InputError and never
// followed; a manifest that verifies names only plain members whose sizes match.
//
// Build and run (see scripts/fuzz.sh, which does all of this):
//   CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DACCEL_FUZZ=ON \
//       -DCMAKE_PREFIX_PATH=$(.venv/bin/python -c 'import torch;print(torch.utils.cmake_prefix_path)')
//   cmake --build build-fuzz --target fuzz_manifest -j2
//   LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp build-fuzz/tests/fuzz/fuzz_manifest \
//       -dict=tests/fuzz/dicts/manifest.dict build-fuzz/corpus/fuzz_manifest tests/fuzz/corpus/fuzz_manifest
#include "accel/checkpoint/state_folder.h"

#include "fuzz_common.h"

#include <cstdint>
#include <optional>
#include <string>

using namespace accel::checkpoint;
namespace fs = accel::fs;

namespace {

// Member files of the fuzzed folder (their FNV-1a checksums are in tests/fuzz/dicts/manifest.dict).
struct Folder {
  std::string root, dir;
  Folder() {
    root = accel::fuzz::scratch_dir("manifest");
    dir = fs::join(root, "checkpoint_0");
    fs::create_directories(fs::join(dir, "sub"));
    accel::fuzz::write_file(fs::join(dir, "model.safetensors"), "accel-fuzz\n");
    accel::fuzz::write_file(fs::join(dir, "optimizer.json"), "{}");
    accel::fuzz::write_file(fs::join(dir, "scheduler.json"), "");
    accel::fuzz::write_file(fs::join(dir, "sub/x"), "x");
    accel::fuzz::write_file(fs::join(root, "secret"), "secret\n");  // outside: must never verify
  }
};

// A name that, joined to a folder, names an entry directly inside it: one non-empty component,
// not "." or "..", no NUL.
bool stays_inside(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

const Folder& folder() {
  static const Folder f;
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const Folder& f = folder();

  // check_member_name on the raw bytes: what it accepts must stay inside the folder.
  bool name_ok = false;
  accel::fuzz::guarded([&] {
    check_member_name(bytes, f.dir);
    name_ok = true;
  });
  if (name_ok) {
    accel::fuzz::expect(stays_inside(bytes), "an accepted member name stays inside its folder");
  }

  // The bytes as the manifest.
  accel::fuzz::write_file(fs::join(f.dir, kManifestName), bytes);
  std::optional<nlohmann::json> m;
  accel::fuzz::guarded([&] { m = verify_state_folder(f.dir); });
  if (m) {
    accel::fuzz::must_not_throw("inspecting a verified manifest", [&] {
      for (const auto& [name, info] : m->at("files").items()) {
        const std::string p = fs::join(f.dir, name);
        accel::fuzz::expect(stays_inside(name), "a verified manifest names only files inside the folder");
        accel::fuzz::expect(fs::is_regular_file(p), "a verified member is a regular file");
        accel::fuzz::expect(info.at("size").get<uint64_t>() == fs::file_size(p), "a verified size matches");
      }
    });
  }
  return 0;
}
