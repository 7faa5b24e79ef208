// Shared helpers of the libFuzzer targets in tests/fuzz: the exception policy (what a target
// accepts as "bad input, rejected properly" and what is a finding) and a per-process scratch
// folder on tmpfs for the readers that only take paths.
#pragma once

#include "accel/core/error.h"
#include "accel/core/fs.h"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

namespace accel::fuzz {

/// Runs `body` on one input. accel::Error (InputError included) is the documented way for the
/// readers to reject bad input and is accepted. Any other exception (a nlohmann::json or
/// yaml-cpp exception, std::out_of_range, std::filesystem_error, a bare c10::Error, ...) leaks
/// through the library's contract and is a finding: it is printed and the process aborts, so
/// libFuzzer saves the input. Set ACCEL_FUZZ_LENIENT=1 to accept every std::exception instead.
template <typename F>
void guarded(F&& body) {
  try {
    body();
  } catch (const ::accel::Error&) {
    // Bad input rejected with a proper message: fine.
  } catch (const std::exception& e) {
    static const bool lenient = [] {
      const char* v = std::getenv("ACCEL_FUZZ_LENIENT");
      return v != nullptr && *v != '\0' && *v != '0';
    }();
    if (lenient) return;
    std::fprintf(stderr, "==FINDING== exception outside accel::Error: %s: %.2000s\n", typeid(e).name(),
                 e.what());
    std::abort();
  }
}

/// Runs `body`, which must not throw at all (e.g. reading back what the library itself wrote):
/// any exception is a finding.
template <typename F>
void must_not_throw(const char* what, F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "==FINDING== %s threw %s: %.2000s\n", what, typeid(e).name(), e.what());
    std::abort();
  }
}

/// Aborts with `what` when `cond` is false (a broken invariant of the code under test).
inline void expect(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "==FINDING== invariant broken: %s\n", what);
    std::abort();
  }
}

/// A folder of this process on tmpfs (/dev/shm when present, else the system temp folder),
/// created on first use and removed at exit.
inline const std::string& scratch_dir(const char* target) {
  static const std::string dir = [target] {
    namespace fs = accel::fs;
    const std::string base = fs::is_directory("/dev/shm") ? std::string("/dev/shm") : fs::temp_directory();
    const std::string d =
        fs::join(base, std::string("accel_fuzz_") + target + "_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    static const std::string to_remove = d;
    std::atexit([] {
      std::error_code ec;
      accel::fs::remove_all(to_remove, ec);
    });
    return d;
  }();
  return dir;
}

/// Writes `bytes` to `path` (replacing it).
inline void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// Splits a fuzz input into parts at a separator byte sequence (the corpus and dictionaries use
/// "\n--\n"); at most `max_parts` parts, the last one keeps the rest.
inline std::vector<std::string_view> split_parts(std::string_view in, std::string_view sep,
                                                 size_t max_parts) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    size_t at = in.find(sep);
    if (at == std::string_view::npos) break;
    parts.push_back(in.substr(0, at));
    in.remove_prefix(at + sep.size());
  }
  parts.push_back(in);
  return parts;
}

}  // namespace accel::fuzz
