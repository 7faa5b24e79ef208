// IMDb: reading the aclImdb layout, locating it, downloading and extracting the archive.
#include "accel/datasets/imdb.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>

#include "accel/core/error.h"
#include "accel/core/fs.h"
#include "accel/datasets/sha256.h"

extern char** environ;

namespace accel::datasets {

// ---------------------------------------------------------------------------------------------
// Reading.

namespace {

struct NameKey {
  bool numeric;
  long long id, rating;
  std::string name;
  bool operator<(const NameKey& o) const {
    if (numeric != o.numeric) return numeric;  // numeric names first
    if (numeric && id != o.id) return id < o.id;
    if (numeric && rating != o.rating) return rating < o.rating;
    return name < o.name;
  }
};

NameKey name_key(const std::string& name) {
  NameKey k{false, 0, 0, name};
  unsigned long long a = 0, b = 0;
  int consumed = 0;
  if (std::sscanf(name.c_str(), "%llu_%llu.txt%n", &a, &b, &consumed) == 2 &&
      consumed == static_cast<int>(name.size())) {
    k.numeric = true;
    k.id = static_cast<long long>(a);
    k.rating = static_cast<long long>(b);
  }
  return k;
}

std::string read_text_file(const std::string& p) {
  try {
    return fs::read_file(p, "review file");
  } catch (const InputError& e) {
    throw InputError(
        c10::str(e.what_without_backtrace(), " Or delete the folder so it is downloaded again."));
  }
}

}  // namespace

std::vector<std::string> list_imdb_files(const std::string& label_dir) {
  ACCEL_CHECK_INPUT(fs::is_directory(label_dir), "IMDb folder '", label_dir, "' is missing. ",
                    "HINT: point --data-dir (or ACCEL_DATA_DIR) at an aclImdb folder with train/{pos,neg} ",
                    "and test/{pos,neg}, or allow the download of ", kImdbUrl);
  std::vector<std::pair<NameKey, std::string>> items;
  for (const fs::DirEntry& e : fs::list_dir(label_dir)) {
    const std::string& name = e.name;
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".txt") != 0) continue;
    std::string path = fs::join(label_dir, name);
    // A symlink counts when it points at a regular file, as directory_entry::is_regular_file did.
    if (e.type != fs::FileType::kRegular && !(e.type == fs::FileType::kSymlink && fs::is_regular_file(path)))
      continue;
    items.emplace_back(name_key(name), std::move(path));
  }
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  out.reserve(items.size());
  for (auto& it : items) out.push_back(std::move(it.second));
  return out;
}

TextClassificationDataset load_imdb(const std::string& dir, const ImdbOptions& o) {
  const std::string& split = o.split();
  ACCEL_CHECK(split == "train" || split == "test" || split == "validation", "ImdbOptions.split '", split,
              "' is not one of: train, test, validation");
  ACCEL_CHECK(o.validation_fraction() >= 0.0 && o.validation_fraction() < 1.0,
              "ImdbOptions.validation_fraction ", o.validation_fraction(), " must be in [0, 1)");
  ACCEL_CHECK(split != "validation" || o.validation_fraction() > 0.0,
              "ImdbOptions.split 'validation' needs validation_fraction > 0 (it is held out of train)");
  ACCEL_CHECK(o.max_samples() >= 0, "ImdbOptions.max_samples ", o.max_samples(), " must be >= 0");
  const std::string folder = fs::join(dir, split == "test" ? "test" : "train");
  TextClassificationDataset data;
  for (const auto& [label_name, label] : {std::pair<const char*, int64_t>{"neg", 0}, {"pos", 1}}) {
    for (const auto& f : list_imdb_files(fs::join(folder, label_name))) {
      data.add(read_text_file(f), label, f);
    }
  }
  ACCEL_CHECK_INPUT(!data.empty(), "IMDb folder '", folder, "' has no reviews (*.txt). HINT: ",
                    "re-extract aclImdb_v1.tar.gz, or delete the folder so it is downloaded again.");
  if (split != "test" && o.validation_fraction() > 0.0) {
    auto parts = split_validation(data, o.validation_fraction(), o.seed());
    data = split == "validation" ? std::move(parts.second) : std::move(parts.first);
  }
  return take_balanced(data, static_cast<size_t>(o.max_samples()));
}

// ---------------------------------------------------------------------------------------------
// Locating.

EnvMap imdb_env_from_process() {
  EnvMap env;
  for (const char* k : {"ACCEL_DATA_DIR", "XDG_CACHE_HOME", "HOME"}) {
    if (const char* v = std::getenv(k)) env[k] = v;
  }
  return env;
}

std::string default_imdb_cache_dir(const EnvMap& env) {
  auto get = [&](const char* k) -> std::string {
    auto it = env.find(k);
    return it == env.end() ? std::string() : it->second;
  };
  std::string base;
  if (!get("XDG_CACHE_HOME").empty()) {
    base = get("XDG_CACHE_HOME");
  } else if (!get("HOME").empty()) {
    base = fs::join(get("HOME"), ".cache");
  } else {
    base = fs::join(fs::temp_directory(), "accel-cache");
  }
  return fs::join(base, "accel/datasets/imdb");
}

bool is_imdb_dir(const std::string& dir) {
  for (const char* split : {"train", "test"}) {
    if (fs::is_directory(fs::join(dir, split, "pos")) && fs::is_directory(fs::join(dir, split, "neg")))
      return true;
  }
  return false;
}

namespace {

std::optional<std::string> imdb_in(const std::string& d) {
  for (const std::string& c : {d, fs::join(d, "aclImdb"), fs::join(d, "imdb/aclImdb")}) {
    if (is_imdb_dir(c)) return c;
  }
  return std::nullopt;
}

std::string executable_dir() {
  auto exe = fs::read_symlink("/proc/self/exe");
  return exe ? fs::parent(*exe) : std::string();
}

}  // namespace

ImdbLocation resolve_imdb_dir(const ImdbLocationOptions& o, const EnvMap& env) {
  if (!o.data_dir().empty()) {
    auto found = imdb_in(o.data_dir());
    ACCEL_CHECK_INPUT(
        found.has_value(), "--data-dir '", o.data_dir(), "' holds no IMDb data (expected ",
        "aclImdb/ with train/{pos,neg} and test/{pos,neg}). HINT: point it at the aclImdb ",
        "folder or its parent, or leave it out to use ACCEL_DATA_DIR, the cache or a download.");
    return {*found, "data_dir"};
  }
  auto it = env.find("ACCEL_DATA_DIR");
  if (it != env.end() && !it->second.empty()) {
    auto found = imdb_in(it->second);
    ACCEL_CHECK_INPUT(
        found.has_value(), "ACCEL_DATA_DIR='", it->second, "' holds no IMDb data (expected ",
        "aclImdb/ with train/{pos,neg} and test/{pos,neg}). HINT: fix or unset ACCEL_DATA_DIR.");
    return {*found, "ACCEL_DATA_DIR"};
  }
  const std::string cache = o.cache_dir().empty() ? default_imdb_cache_dir(env) : o.cache_dir();
  if (is_imdb_dir(fs::join(cache, "aclImdb"))) return {fs::join(cache, "aclImdb"), "cache"};

  std::vector<std::string> roots;
  if (o.search_roots()) {
    roots = *o.search_roots();
  } else {
    roots.push_back(fs::current_dir());
    roots.push_back(executable_dir());
  }
  std::vector<std::string> looked;
  for (const std::string& root : roots) {
    if (root.empty()) continue;
    std::string d = fs::canonical_or_self(root);
    while (!d.empty()) {
      const std::string cand = fs::join(d, "shared/data/imdb/aclImdb");
      if (is_imdb_dir(cand)) return {cand, "local copy"};
      const std::string up = fs::parent(d);
      if (up == d) break;
      d = up;
    }
    looked.push_back(root);
  }
  std::string where = "--data-dir (not given), ACCEL_DATA_DIR (not set), the cache " + cache;
  if (!looked.empty()) {
    where += ", shared/data/imdb/aclImdb above";
    for (const auto& l : looked) where += " " + l;
  }
  ACCEL_CHECK_INPUT(o.allow_download(), "IMDb data not found; looked in ", where, ". HINT: pass --data-dir ",
                    "or set ACCEL_DATA_DIR to an aclImdb folder, or allow the download of ", o.url(), ".");
  return {download_imdb(o.url(), o.sha256(), cache, o.on_progress()), "download"};
}

// ---------------------------------------------------------------------------------------------
// Downloading.

namespace {

struct DownloadState {
  std::FILE* file = nullptr;
  Sha256 sha;
  int64_t bytes = 0;
  const std::function<void(int64_t, int64_t)>* progress = nullptr;
  int64_t total = -1;
};

size_t on_data(char* ptr, size_t size, size_t nmemb, void* user) {
  auto* st = static_cast<DownloadState*>(user);
  const size_t n = size * nmemb;
  if (std::fwrite(ptr, 1, n, st->file) != n) return 0;
  st->sha.update(ptr, n);
  st->bytes += static_cast<int64_t>(n);
  return n;
}

int on_xfer(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* st = static_cast<DownloadState*>(user);
  if (st->progress && *st->progress) (*st->progress)(dlnow, dltotal > 0 ? dltotal : -1);
  return 0;
}

void curl_global_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

/// Runs `tar -xzf archive -C dest` with its stderr in `log`; returns the exit status (-1: no run).
int run_tar(const std::string& archive, const std::string& dest, const std::string& log) {
  std::string a = archive, d = dest, l = log;
  std::vector<char*> argv = {const_cast<char*>("tar"),
                             const_cast<char*>("-xzf"),
                             a.data(),
                             const_cast<char*>("-C"),
                             d.data(),
                             nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, l.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "tar", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// Removes a path on scope exit unless released.
struct Cleanup {
  std::string path;
  ~Cleanup() {
    if (!path.empty()) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
};

}  // namespace

std::string download_imdb(const std::string& url, const std::string& sha256, const std::string& cache_dir,
                          const std::function<void(int64_t, int64_t)>& on_progress) {
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  ACCEL_CHECK_INPUT(!ec, "cannot create the cache folder '", cache_dir, "': ", ec.message(),
                    ". HINT: set XDG_CACHE_HOME to a writable folder, or pass --data-dir.");
  const std::string tag = std::to_string(::getpid());
  const std::string tmp_file = fs::join(cache_dir, "aclImdb_v1.tar.gz.part-" + tag);
  Cleanup file_guard{tmp_file};

  curl_global_once();
  DownloadState st;
  st.progress = &on_progress;
  st.file = std::fopen(tmp_file.c_str(), "wb");
  ACCEL_CHECK_INPUT(st.file != nullptr, "cannot write '", tmp_file, "'. HINT: check that the ",
                    "cache folder is writable and has ~100 MB free.");
  CURL* curl = curl_easy_init();
  ACCEL_CHECK(curl != nullptr, "curl_easy_init failed");
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &st);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_xfer);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &st);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, on_progress ? 0L : 1L);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  std::fclose(st.file);
  ACCEL_CHECK_INPUT(rc == CURLE_OK, "download of ", url,
                    " failed: ", errbuf[0] ? errbuf : curl_easy_strerror(rc),
                    status ? " (HTTP " + std::to_string(status) + ")" : std::string(),
                    ". HINT: check the network (or proxy settings), or download the archive yourself, ",
                    "extract it and pass --data-dir / set ACCEL_DATA_DIR.");
  const std::string got = st.sha.hex_digest();
  ACCEL_CHECK_INPUT(got == sha256, "checksum mismatch for ", url, ": expected SHA-256 ", sha256, ", got ",
                    got, " (", st.bytes,
                    " bytes). HINT: the download was truncated or altered; try again, or ",
                    "download and extract it yourself and pass --data-dir.");

  const std::string tmp_dir = fs::join(cache_dir, ".extract-" + tag);
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir, ec);
  Cleanup dir_guard{tmp_dir};
  const std::string tar_log = fs::join(cache_dir, ".tar-stderr-" + tag);
  Cleanup log_guard{tar_log};
  int trc = run_tar(tmp_file, tmp_dir, tar_log);
  if (trc != 0) {
    std::string msg;
    try {
      msg = fs::read_file(tar_log, "tar log");
    } catch (const Error&) {
    }
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    for (char& c : msg) c = c == '\n' ? ';' : c;
    ACCEL_CHECK_INPUT(false, "extracting ", tmp_file, " with `tar -xzf` failed (exit ", trc,
                      msg.empty() ? std::string() : ": " + msg,
                      "). HINT: the archive is damaged, or tar/gzip ",
                      "are missing, or the disk is full (~500 MB needed).");
  }
  const std::string extracted = fs::join(tmp_dir, "aclImdb");
  ACCEL_CHECK_INPUT(is_imdb_dir(extracted), "the archive from ", url, " has no aclImdb/ folder with ",
                    "train/{pos,neg}. HINT: the URL must point to aclImdb_v1.tar.gz.");
  const std::string target = fs::join(cache_dir, "aclImdb");
  fs::rename(extracted, target, ec);
  if (ec) {
    // Another process may have finished first; accept its folder.
    ACCEL_CHECK_INPUT(is_imdb_dir(target), "cannot move ", extracted, " to ", target, ": ", ec.message(),
                      ". HINT: remove ", target, " and try again.");
  }
  return target;
}

}  // namespace accel::datasets
