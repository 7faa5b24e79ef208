// File-system operations on POSIX calls (stat, mkdir, opendir, unlinkat, rename, open, fsync,
// mkdtemp): the one module through which accel's library, tools, examples, benchmarks and tests
// touch the file system, and the one durable atomic file writer (temp file, fsync, rename, fsync
// of the folder). Paths are plain strings.
//
// Why not std::filesystem: pip torch wheels export a statically linked copy of libstdc++'s
// std::filesystem from libtorch_cpu.so, and the dynamic linker binds a program's std::filesystem
// calls to whichever copy comes first; mixed with the system libstdc++ that crashes (see
// docs/notes/toolchains.md). libc's calls have one definition in the process.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace accel::fs {

/// A path argument: anything that converts to std::string_view (std::string, a C string, a
/// string literal). It holds a NUL-terminated copy for the system calls.
class PathArg {
 public:
  template <class T, std::enable_if_t<std::is_convertible_v<const T&, std::string_view>, int> = 0>
  PathArg(const T& s) : s_(std::string_view(s)) {}  // NOLINT: implicit by design
  const std::string& str() const { return s_; }
  const char* c_str() const { return s_.c_str(); }

 private:
  std::string s_;
};

// ---- path text (no system calls) -------------------------------------------------------------

/// `a/b`, with one separator between them; `b` absolute replaces `a`; an empty side is dropped.
std::string join(std::string_view a, std::string_view b);
/// join of several parts, left to right.
std::string join(std::string_view a, std::string_view b, std::string_view c);
/// The folder part: "a/b/c" -> "a/b", "c" -> "", "/c" -> "/", "a/b/" -> "a/b".
std::string parent(std::string_view p);
/// The last part: "a/b/c.txt" -> "c.txt", "a/b/" -> "", "/" -> "".
std::string filename(std::string_view p);
/// The extension of filename(p) with its dot: "x.tar.gz" -> ".gz", ".bashrc" -> "", "x" -> "".
std::string extension(std::string_view p);

// ---- queries (never throw; a missing path or a stat error answers false / nullopt) -----------

enum class FileType { kNone, kRegular, kDirectory, kSymlink, kOther };

struct FileInfo {
  FileType type = FileType::kNone;
  uint64_t size = 0;
};

/// stat() (follow_symlinks) or lstat(); nullopt when the path does not exist or cannot be read.
std::optional<FileInfo> stat(const PathArg& p, bool follow_symlinks = true);
bool exists(const PathArg& p);
bool is_directory(const PathArg& p);
bool is_regular_file(const PathArg& p);
/// Size of a regular file; throws accel::InputError (what, where, HINT) when it is not one.
uint64_t file_size(const PathArg& p);

// ---- folders ---------------------------------------------------------------------------------

/// mkdir -p (mode 0777 & ~umask). True when it exists as a folder afterwards; otherwise false
/// with `ec` set (EEXIST when a part is a file).
bool create_directories(const PathArg& p, std::error_code& ec) noexcept;
/// mkdir -p; throws accel::Error naming the folder and the reason.
void create_directories(const PathArg& p);
/// Removes a file, a symlink (not its target) or a folder tree (unlinkat on descriptors opened
/// with O_NOFOLLOW, so a symlink inside is removed, never followed). A missing path is not an
/// error. Returns the number of entries removed; on error sets `ec` and stops.
uint64_t remove_all(const PathArg& p, std::error_code& ec) noexcept;
/// remove_all; throws accel::Error on failure.
uint64_t remove_all(const PathArg& p);
/// unlink (or rmdir for an empty folder). False, with `ec` set, on error; a missing path gives
/// false with `ec` clear.
bool remove(const PathArg& p, std::error_code& ec) noexcept;
/// remove; throws accel::Error on an error other than "missing".
bool remove(const PathArg& p);

struct DirEntry {
  std::string name;                 // file name only
  FileType type = FileType::kNone;  // from lstat: a symlink is kSymlink
};

/// The entries of a folder (no "." or ".."), sorted by name. Throws accel::Error when it cannot
/// be opened; list_dir(p, ec) returns {} with `ec` set instead.
std::vector<DirEntry> list_dir(const PathArg& p);
std::vector<DirEntry> list_dir(const PathArg& p, std::error_code& ec) noexcept;

// ---- files -----------------------------------------------------------------------------------

/// rename(2): atomic within one file system. Throws accel::Error; the ec form does not.
void rename(const PathArg& from, const PathArg& to);
bool rename(const PathArg& from, const PathArg& to, std::error_code& ec) noexcept;
/// The whole file as bytes; throws accel::InputError naming `what` (e.g. "config file") when it
/// cannot be read.
std::string read_file(const PathArg& p, std::string_view what = "file");
/// Writes (creates or truncates) a file with plain write(2) calls, no fsync: scratch and test
/// files. Throws accel::Error.
void write_file(const PathArg& p, std::string_view bytes);
/// Copies a regular file's bytes (mode 0644); throws accel::Error.
void copy_file(const PathArg& from, const PathArg& to);
/// fsync of a folder, so a rename or a new entry inside it survives a power loss. Best effort.
void fsync_dir(const PathArg& dir) noexcept;

/// A file written durably and atomically: bytes go to a unique temporary file beside the target
/// (`<path>.tmp.<pid>.<n>`, O_EXCL); commit() fsyncs it, renames it onto the target and fsyncs the
/// folder. Readers see the old file or the complete new one, never a part. Without commit()
/// (an exception, a crash) the target is untouched and the destructor removes the temporary file.
/// The folder is created when missing. Throws accel::Error naming the file on any failure.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// Appends bytes (write(2) until done, EINTR retried).
  void write(const void* data, size_t size);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  /// fsync, close, rename onto the target, fsync the folder. Call once.
  void commit();
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }

 private:
  std::string path_;
  std::string tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

/// The one-call form of AtomicFile.
void write_file_atomic(const PathArg& path, std::string_view bytes);

/// How many AtomicFile commits this process made (tests use it to show that a writer goes
/// through this one durable path).
uint64_t atomic_commit_count();

// ---- process and temporary folders -----------------------------------------------------------

/// $TMPDIR when it names a folder, else /tmp.
std::string temp_directory();
/// A new, empty, private (0700) folder `<temp_directory()>/<prefix>XXXXXX` made by mkdtemp.
std::string make_temp_dir(std::string_view prefix);
/// getcwd; empty on error.
std::string current_dir();
/// readlink; nullopt on error.
std::optional<std::string> read_symlink(const PathArg& p);
/// realpath(3) of an existing path (absolute, no symlinks, no "." or ".."); the input unchanged
/// when it does not exist or cannot be resolved.
std::string canonical_or_self(const PathArg& p);

/// A temporary folder owned by a scope: made by make_temp_dir, removed (remove_all) by the
/// destructor.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "accel_");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  /// join(path(), name)
  std::string operator/(std::string_view name) const { return join(path_, name); }

 private:
  std::string path_;
};

}  // namespace accel::fs
