#include "accel/core/fs.h"

#include "accel/core/error.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

namespace accel::fs {

namespace {

std::atomic<uint64_t> g_atomic_commits{0};

std::error_code errno_code(int e) {
  return {e, std::generic_category()};
}

std::string errno_text(int e) {
  return std::strerror(e);
}

FileType type_of(mode_t m) {
  if (S_ISREG(m)) return FileType::kRegular;
  if (S_ISDIR(m)) return FileType::kDirectory;
  if (S_ISLNK(m)) return FileType::kSymlink;
  return FileType::kOther;
}

// Closes a descriptor at scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// Closes a DIR* at scope exit.
struct Dir {
  DIR* d = nullptr;
  explicit Dir(DIR* x) : d(x) {}
  ~Dir() {
    if (d != nullptr) ::closedir(d);
  }
  Dir(const Dir&) = delete;
  Dir& operator=(const Dir&) = delete;
};

bool write_all(int fd, const char* data, size_t size, int* err) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *err = n < 0 ? errno : EIO;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Empties the folder open as `dfd` (consumed) and counts what it removed; entries are opened
// relative to their parent with O_NOFOLLOW, so a symlink is unlinked, never followed.
uint64_t remove_contents(int dfd, std::error_code& ec) {
  DIR* d = ::fdopendir(dfd);
  if (d == nullptr) {
    ec = errno_code(errno);
    ::close(dfd);
    return 0;
  }
  Dir dir(d);
  std::vector<std::pair<std::string, bool>> entries;  // name, is a folder
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    const char* n = e->d_name;
    if (std::strcmp(n, ".") == 0 || std::strcmp(n, "..") == 0) continue;
    struct stat st {};
    if (::fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed meanwhile
      ec = errno_code(errno);
      return 0;
    }
    entries.emplace_back(n, S_ISDIR(st.st_mode));
    errno = 0;
  }
  if (errno != 0) {
    ec = errno_code(errno);
    return 0;
  }
  uint64_t count = 0;
  for (const auto& [name, is_dir] : entries) {
    if (is_dir) {
      const int sub = ::openat(dfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        ec = errno_code(errno);
        return count;
      }
      count += remove_contents(sub, ec);
      if (ec) return count;
    }
    if (::unlinkat(dfd, name.c_str(), is_dir ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT) {
      ec = errno_code(errno);
      return count;
    }
    ++count;
  }
  return count;
}

}  // namespace

// ---- path text -------------------------------------------------------------------------------

std::string join(std::string_view a, std::string_view b) {
  if (a.empty() || (!b.empty() && b.front() == '/')) return std::string(b);
  if (b.empty()) return std::string(a);
  std::string out(a);
  if (out.back() != '/') out += '/';
  out += b;
  return out;
}

std::string join(std::string_view a, std::string_view b, std::string_view c) {
  return join(join(a, b), c);
}

std::string parent(std::string_view p) {
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  const size_t slash = p.rfind('/');
  if (slash == std::string_view::npos) return "";
  if (slash == 0) return "/";
  std::string_view head = p.substr(0, slash);
  while (head.size() > 1 && head.back() == '/') head.remove_suffix(1);
  return std::string(head);
}

std::string filename(std::string_view p) {
  const size_t slash = p.rfind('/');
  return std::string(slash == std::string_view::npos ? p : p.substr(slash + 1));
}

std::string extension(std::string_view p) {
  const std::string name = filename(p);
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos || dot == 0 || name == "..") return "";
  return name.substr(dot);
}

// ---- queries ---------------------------------------------------------------------------------

std::optional<FileInfo> stat(const PathArg& p, bool follow_symlinks) {
  struct stat st {};
  const int rc = follow_symlinks ? ::stat(p.c_str(), &st) : ::lstat(p.c_str(), &st);
  if (rc != 0) return std::nullopt;
  return FileInfo{type_of(st.st_mode), static_cast<uint64_t>(st.st_size)};
}

bool exists(const PathArg& p) {
  return stat(p).has_value();
}

bool is_directory(const PathArg& p) {
  const auto s = stat(p);
  return s && s->type == FileType::kDirectory;
}

bool is_regular_file(const PathArg& p) {
  const auto s = stat(p);
  return s && s->type == FileType::kRegular;
}

uint64_t file_size(const PathArg& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) {
    throw InputError(
        c10::str("cannot read the size of '", p.str(), "': ", errno_text(errno), ". HINT: check the path."));
  }
  ACCEL_CHECK_INPUT(S_ISREG(st.st_mode), "'", p.str(), "' is not a regular file, so it has no size. ",
                    "HINT: pass a file, not a folder.");
  return static_cast<uint64_t>(st.st_size);
}

// ---- folders ---------------------------------------------------------------------------------

bool create_directories(const PathArg& p, std::error_code& ec) noexcept {
  ec.clear();
  const std::string& path = p.str();
  if (path.empty()) {
    ec = errno_code(ENOENT);
    return false;
  }
  // Walk down from the root, making each missing part.
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    const std::string part = path.substr(0, pos);
    if (part.empty() || part == "/") continue;
    if (::mkdir(part.c_str(), 0777) == 0) continue;
    const int e = errno;
    struct stat st {};
    if (e == EEXIST || e == EROFS || e == EACCES || e == EPERM) {
      if (::stat(part.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) continue;
        ec = errno_code(pos == std::string::npos ? EEXIST : ENOTDIR);
        return false;
      }
    }
    ec = errno_code(e);
    return false;
  }
  return true;
}

void create_directories(const PathArg& p) {
  std::error_code ec;
  ACCEL_CHECK(create_directories(p, ec), "cannot create the folder '", p.str(), "': ", ec.message(),
              ". HINT: check that the parent folder is writable, that no file has that name, and "
              "that the disk is not full.");
}

uint64_t remove_all(const PathArg& p, std::error_code& ec) noexcept {
  ec.clear();
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) {
    if (errno != ENOENT) ec = errno_code(errno);
    return 0;
  }
  uint64_t count = 0;
  if (S_ISDIR(st.st_mode)) {
    const int dfd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
      ec = errno_code(errno);
      return 0;
    }
    count = remove_contents(dfd, ec);
    if (ec) return count;
    if (::rmdir(p.c_str()) != 0 && errno != ENOENT) {
      ec = errno_code(errno);
      return count;
    }
  } else if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
    ec = errno_code(errno);
    return 0;
  }
  return count + 1;
}

uint64_t remove_all(const PathArg& p) {
  std::error_code ec;
  const uint64_t n = remove_all(p, ec);
  ACCEL_CHECK(!ec, "cannot remove '", p.str(), "': ", ec.message(),
              ". HINT: check the permissions of the folder and what is inside it.");
  return n;
}

bool remove(const PathArg& p, std::error_code& ec) noexcept {
  ec.clear();
  if (::unlink(p.c_str()) == 0) return true;
  int e = errno;
  if (e == EISDIR || e == EPERM) {
    if (::rmdir(p.c_str()) == 0) return true;
    if (errno != ENOTDIR) e = errno;
  }
  if (e != ENOENT) ec = errno_code(e);
  return false;
}

bool remove(const PathArg& p) {
  std::error_code ec;
  const bool removed = remove(p, ec);
  ACCEL_CHECK(!ec, "cannot remove '", p.str(), "': ", ec.message(),
              ". HINT: check the folder's permissions (a folder must be empty).");
  return removed;
}

std::vector<DirEntry> list_dir(const PathArg& p, std::error_code& ec) noexcept {
  ec.clear();
  std::vector<DirEntry> out;
  const int dfd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    ec = errno_code(errno);
    return out;
  }
  DIR* d = ::fdopendir(dfd);
  if (d == nullptr) {
    ec = errno_code(errno);
    ::close(dfd);
    return out;
  }
  Dir dir(d);
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    const char* n = e->d_name;
    if (std::strcmp(n, ".") == 0 || std::strcmp(n, "..") == 0) continue;
    FileType t = FileType::kNone;
    switch (e->d_type) {  // the type readdir already knows; lstat only when it does not
      case DT_REG:
        t = FileType::kRegular;
        break;
      case DT_DIR:
        t = FileType::kDirectory;
        break;
      case DT_LNK:
        t = FileType::kSymlink;
        break;
      case DT_UNKNOWN: {
        struct stat st {};
        if (::fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) == 0) t = type_of(st.st_mode);
        break;
      }
      default:
        t = FileType::kOther;
    }
    out.push_back({n, t});
    errno = 0;
  }
  if (errno != 0) {
    ec = errno_code(errno);
    out.clear();
    return out;
  }
  std::sort(out.begin(), out.end(), [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return out;
}

std::vector<DirEntry> list_dir(const PathArg& p) {
  std::error_code ec;
  auto out = list_dir(p, ec);
  ACCEL_CHECK(!ec, "cannot list the folder '", p.str(), "': ", ec.message(),
              ". HINT: check that it exists and is readable.");
  return out;
}

// ---- files -----------------------------------------------------------------------------------

bool rename(const PathArg& from, const PathArg& to, std::error_code& ec) noexcept {
  ec.clear();
  if (::rename(from.c_str(), to.c_str()) == 0) return true;
  ec = errno_code(errno);
  return false;
}

void rename(const PathArg& from, const PathArg& to) {
  std::error_code ec;
  ACCEL_CHECK(rename(from, to, ec), "cannot rename '", from.str(), "' to '", to.str(), "': ", ec.message(),
              ". HINT: both must be on one file system and the folder writable.");
}

std::string read_file(const PathArg& p, std::string_view what) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw InputError(c10::str("cannot open the ", what, " '", p.str(), "': ", errno_text(errno),
                              ". HINT: check the path and its permissions."));
  }
  Fd guard(fd);
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    throw InputError(
        c10::str("the ", what, " '", p.str(), "' is a folder, not a file. HINT: pass the file inside it."));
  }
  std::string out;
  if (st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      throw InputError(c10::str("cannot read the ", what, " '", p.str(), "': ", errno_text(errno), "."));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void write_file(const PathArg& p, std::string_view bytes) {
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ACCEL_CHECK(fd >= 0, "cannot create '", p.str(), "': ", errno_text(errno),
              ". HINT: check that the folder exists and is writable.");
  Fd guard(fd);
  int err = 0;
  ACCEL_CHECK(write_all(fd, bytes.data(), bytes.size(), &err), "cannot write '", p.str(),
              "': ", errno_text(err), ". HINT: check the free disk space.");
}

void copy_file(const PathArg& from, const PathArg& to) {
  write_file(to, read_file(from));
}

void fsync_dir(const PathArg& dir) noexcept {
  const int fd = ::open(dir.str().empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  const std::string dir = parent(path_);
  if (!dir.empty()) create_directories(dir);
  static std::atomic<uint64_t> counter{0};
  // O_EXCL: two writers (threads, processes, a stale file of a crashed run) never share a file.
  for (int attempt = 0; fd_ < 0; ++attempt) {
    tmp_ = c10::str(path_, ".tmp.", ::getpid(), ".", counter++);
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0 && (errno != EEXIST || attempt > 100)) {
      ACCEL_CHECK(false, "cannot create the temporary file '", tmp_, "' for '", path_,
                  "': ", errno_text(errno),
                  ". HINT: check that the folder is writable and the disk is not full.");
    }
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
  ACCEL_CHECK(fd_ >= 0 && !committed_, "AtomicFile '", path_, "': write after commit");
  int err = 0;
  ACCEL_CHECK(write_all(fd_, static_cast<const char*>(data), size, &err), "cannot write '", tmp_,
              "': ", errno_text(err), ". HINT: check the free disk space.");
}

void AtomicFile::commit() {
  ACCEL_CHECK(fd_ >= 0 && !committed_, "AtomicFile '", path_, "': commit called twice");
  const int fd = fd_;
  fd_ = -1;
  const bool synced = ::fsync(fd) == 0;
  const int sync_err = errno;
  const bool closed = ::close(fd) == 0;
  const int close_err = errno;
  ACCEL_CHECK(synced, "cannot fsync '", tmp_, "': ", errno_text(sync_err), ". HINT: check the disk.");
  ACCEL_CHECK(closed, "cannot close '", tmp_, "': ", errno_text(close_err),
              ". HINT: check the free disk space.");
  ACCEL_CHECK(::rename(tmp_.c_str(), path_.c_str()) == 0, "cannot rename '", tmp_, "' onto '", path_,
              "': ", errno_text(errno), ". HINT: check that the folder is writable (and '", path_,
              "' is not a folder).");
  committed_ = true;
  fsync_dir(parent(path_));
  g_atomic_commits.fetch_add(1, std::memory_order_relaxed);
}

void write_file_atomic(const PathArg& path, std::string_view bytes) {
  AtomicFile f(path.str());
  f.write(bytes);
  f.commit();
}

uint64_t atomic_commit_count() {
  return g_atomic_commits.load(std::memory_order_relaxed);
}

// ---- process and temporary folders -----------------------------------------------------------

std::string temp_directory() {
  const char* t = std::getenv("TMPDIR");
  if (t != nullptr && *t != '\0' && is_directory(t)) return t;
  return "/tmp";
}

std::string make_temp_dir(std::string_view prefix) {
  std::string tmpl = join(temp_directory(), std::string(prefix) + "XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  ACCEL_CHECK(::mkdtemp(buf.data()) != nullptr, "cannot create a temporary folder '", tmpl,
              "': ", errno_text(errno), ". HINT: set TMPDIR to a writable folder.");
  return std::string(buf.data());
}

std::string current_dir() {
  std::vector<char> buf(PATH_MAX);
  for (;;) {
    if (::getcwd(buf.data(), buf.size()) != nullptr) return std::string(buf.data());
    if (errno != ERANGE) return "";
    buf.resize(buf.size() * 2);
  }
}

std::optional<std::string> read_symlink(const PathArg& p) {
  std::vector<char> buf(PATH_MAX);
  for (;;) {
    const ssize_t n = ::readlink(p.c_str(), buf.data(), buf.size());
    if (n < 0) return std::nullopt;
    if (static_cast<size_t>(n) < buf.size()) return std::string(buf.data(), static_cast<size_t>(n));
    buf.resize(buf.size() * 2);
  }
}

std::string canonical_or_self(const PathArg& p) {
  char* real = ::realpath(p.c_str(), nullptr);
  if (real == nullptr) return p.str();
  std::string out(real);
  ::free(real);
  return out;
}

TempDir::TempDir(std::string_view prefix) : path_(make_temp_dir(prefix)) {}

TempDir::~TempDir() {
  std::error_code ec;
  remove_all(path_, ec);
}

}  // namespace accel::fs
