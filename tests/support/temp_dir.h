// Test folders: a fresh private folder per test (mkdtemp, named after the running test), removed
// when the object goes away, and a small path value for building names inside it. Tests reach
// the file system only through accel/core/fs.h, never through std::filesystem (see
// docs/notes/toolchains.md).
#pragma once

#include "accel/core/fs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>

#include <ostream>
#include <string>
#include <string_view>

namespace accel::test {

/// A path as text: `p / "name"` joins with accel::fs::join; converts to std::string wherever one
/// is expected. No std::filesystem function is involved.
class Path {
 public:
  Path() = default;
  Path(std::string s) : s_(std::move(s)) {}  // NOLINT: implicit by design
  Path(const char* s) : s_(s) {}             // NOLINT
  Path operator/(std::string_view name) const { return Path(accel::fs::join(s_, name)); }
  operator const std::string&() const { return s_; }  // NOLINT
  operator std::string_view() const { return s_; }    // NOLINT
  const std::string& string() const { return s_; }
  const char* c_str() const { return s_.c_str(); }
  bool empty() const { return s_.empty(); }
  Path parent() const { return Path(accel::fs::parent(s_)); }
  std::string filename() const { return accel::fs::filename(s_); }
  friend bool operator==(const Path& a, const Path& b) { return a.s_ == b.s_; }
  friend std::ostream& operator<<(std::ostream& os, const Path& p) { return os << p.s_; }

 private:
  std::string s_;
};

/// `<TMPDIR or /tmp>/accel_<area>_<Suite>_<Test>_XXXXXX`, made on construction, removed (with
/// everything inside) on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view area = "test") : dir_(prefix(area)), path_(dir_.path()) {}
  const Path& path() const { return path_; }
  const std::string& str() const { return dir_.path(); }
  /// path() / name
  Path operator/(std::string_view name) const { return path_ / name; }

 private:
  static std::string prefix(std::string_view area) {
    std::string p = "accel_" + std::string(area) + "_";
    if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
      p += std::string(info->test_suite_name()) + "_" + info->name() + "_";
    }
    for (char& c : p) {
      if (c == '/') c = '_';  // parameterised test names
    }
    return p;
  }
  accel::fs::TempDir dir_;
  Path path_;
};

/// Copies a folder tree (regular files and folders; `to` is created).
inline void copy_tree(const std::string& from, const std::string& to) {
  accel::fs::create_directories(to);
  for (const auto& e : accel::fs::list_dir(from)) {
    const std::string a = accel::fs::join(from, e.name), b = accel::fs::join(to, e.name);
    if (e.type == accel::fs::FileType::kDirectory) {
      copy_tree(a, b);
    } else {
      accel::fs::copy_file(a, b);
    }
  }
}

/// Cuts or extends a file to `size` bytes (truncate(2)); false on error.
inline bool truncate_file(const std::string& p, uint64_t size) {
  return ::truncate(p.c_str(), static_cast<off_t>(size)) == 0;
}

/// A symbolic link `link` pointing at `target` (symlink(2)); false on error.
inline bool make_symlink(const std::string& target, const std::string& link) {
  return ::symlink(target.c_str(), link.c_str()) == 0;
}

/// The whole file, or "" when it cannot be read (tests then fail on the content).
inline std::string read_file(const std::string& p) {
  try {
    return accel::fs::read_file(p);
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace accel::test
