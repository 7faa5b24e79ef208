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
#include "accel/datasets/sha256.h"

extern char** environ;

namespace accel::datasets {

namespace fs = std::filesystem;

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

std::string read_text_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  ACCEL_CHECK_INPUT(in.good(), "cannot read review file '", p.string(), "'. HINT: check permissions, or ",
                    "delete the folder so it is downloaded again.");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::vector<fs::path> list_imdb_files(const fs::path& label_dir) {
  ACCEL_CHECK_INPUT(fs::is_directory(label_dir), "IMDb folder '", label_dir.string(), "' is missing. ",
                    "HINT: point --data-dir (or ACCEL_DATA_DIR) at an aclImdb folder with train/{pos,neg} ",
                    "and test/{pos,neg}, or allow the download of ", kImdbUrl);
  std::vector<std::pair<NameKey, fs::path>> items;
  for (const auto& e : fs::directory_iterator(label_dir)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".txt") != 0) continue;
    items.emplace_back(name_key(name), e.path());
  }
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<fs::path> out;
  out.reserve(items.size());
  for (auto& it : items) out.push_back(std::move(it.second));
  return out;
}

TextClassificationDataset load_imdb(const fs::path& dir, const ImdbOptions& o) {
  const std::string& split = o.split();
  ACCEL_CHECK(split == "train" || split == "test" || split == "validation", "ImdbOptions.split '", split,
              "' is not one of: train, test, validation");
  ACCEL_CHECK(o.validation_fraction() >= 0.0 && o.validation_fraction() < 1.0,
              "ImdbOptions.validation_fraction ", o.validation_fraction(), " must be in [0, 1)");
  ACCEL_CHECK(split != "validation" || o.validation_fraction() > 0.0,
              "ImdbOptions.split 'validation' needs validation_fraction > 0 (it is held out of train)");
  ACCEL_CHECK(o.max_samples() >= 0, "ImdbOptions.max_samples ", o.max_samples(), " must be >= 0");
  const fs::path folder = dir / (split == "test" ? "test" : "train");
  TextClassificationDataset data;
  for (const auto& [label_name, label] : {std::pair<const char*, int64_t>{"neg", 0}, {"pos", 1}}) {
    for (const auto& f : list_imdb_files(folder / label_name)) {
      data.add(read_text_file(f), label, f.string());
    }
  }
  ACCEL_CHECK_INPUT(!data.empty(), "IMDb folder '", folder.string(), "' has no reviews (*.txt). HINT: ",
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

fs::path default_imdb_cache_dir(const EnvMap& env) {
  auto get = [&](const char* k) -> std::string {
    auto it = env.find(k);
    return it == env.end() ? std::string() : it->second;
  };
  fs::path base;
  if (!get("XDG_CACHE_HOME").empty()) {
    base = get("XDG_CACHE_HOME");
  } else if (!get("HOME").empty()) {
    base = fs::path(get("HOME")) / ".cache";
  } else {
    base = fs::temp_directory_path() / "accel-cache";
  }
  return base / "accel" / "datasets" / "imdb";
}

bool is_imdb_dir(const fs::path& dir) {
  std::error_code ec;
  for (const char* split : {"train", "test"}) {
    if (fs::is_directory(dir / split / "pos", ec) && fs::is_directory(dir / split / "neg", ec)) return true;
  }
  return false;
}

namespace {

std::optional<fs::path> imdb_in(const fs::path& d) {
  for (const fs::path& c : {d, d / "aclImdb", d / "imdb" / "aclImdb"}) {
    if (is_imdb_dir(c)) return c;
  }
  return std::nullopt;
}

fs::path executable_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
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
  const fs::path cache = o.cache_dir().empty() ? default_imdb_cache_dir(env) : fs::path(o.cache_dir());
  if (is_imdb_dir(cache / "aclImdb")) return {cache / "aclImdb", "cache"};

  std::vector<fs::path> roots;
  if (o.search_roots()) {
    roots = *o.search_roots();
  } else {
    std::error_code ec;
    roots.push_back(fs::current_path(ec));
    roots.push_back(executable_dir());
  }
  std::vector<std::string> looked;
  for (const fs::path& root : roots) {
    if (root.empty()) continue;
    std::error_code ec;
    fs::path d = fs::weakly_canonical(root, ec);
    if (ec) d = root;
    while (true) {
      fs::path cand = d / "shared" / "data" / "imdb" / "aclImdb";
      if (is_imdb_dir(cand)) return {cand, "local copy"};
      if (d == d.parent_path() || d.empty()) break;
      d = d.parent_path();
    }
    looked.push_back(root.string());
  }
  std::string where = "--data-dir (not given), ACCEL_DATA_DIR (not set), the cache " + cache.string();
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
int run_tar(const fs::path& archive, const fs::path& dest, const fs::path& log) {
  std::string a = archive.string(), d = dest.string(), l = log.string();
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
  fs::path path;
  ~Cleanup() {
    if (!path.empty()) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
};

}  // namespace

fs::path download_imdb(const std::string& url, const std::string& sha256, const fs::path& cache_dir,
                       const std::function<void(int64_t, int64_t)>& on_progress) {
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  ACCEL_CHECK_INPUT(!ec, "cannot create the cache folder '", cache_dir.string(), "': ", ec.message(),
                    ". HINT: set XDG_CACHE_HOME to a writable folder, or pass --data-dir.");
  const std::string tag = std::to_string(::getpid());
  const fs::path tmp_file = cache_dir / ("aclImdb_v1.tar.gz.part-" + tag);
  Cleanup file_guard{tmp_file};

  curl_global_once();
  DownloadState st;
  st.progress = &on_progress;
  st.file = std::fopen(tmp_file.c_str(), "wb");
  ACCEL_CHECK_INPUT(st.file != nullptr, "cannot write '", tmp_file.string(), "'. HINT: check that the ",
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

  const fs::path tmp_dir = cache_dir / (".extract-" + tag);
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir, ec);
  Cleanup dir_guard{tmp_dir};
  const fs::path tar_log = cache_dir / (".tar-stderr-" + tag);
  Cleanup log_guard{tar_log};
  int trc = run_tar(tmp_file, tmp_dir, tar_log);
  if (trc != 0) {
    std::ifstream in(tar_log);
    std::string msg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    for (char& c : msg) c = c == '\n' ? ';' : c;
    ACCEL_CHECK_INPUT(false, "extracting ", tmp_file.string(), " with `tar -xzf` failed (exit ", trc,
                      msg.empty() ? std::string() : ": " + msg,
                      "). HINT: the archive is damaged, or tar/gzip ",
                      "are missing, or the disk is full (~500 MB needed).");
  }
  const fs::path extracted = tmp_dir / "aclImdb";
  ACCEL_CHECK_INPUT(is_imdb_dir(extracted), "the archive from ", url, " has no aclImdb/ folder with ",
                    "train/{pos,neg}. HINT: the URL must point to aclImdb_v1.tar.gz.");
  const fs::path target = cache_dir / "aclImdb";
  fs::rename(extracted, target, ec);
  if (ec) {
    // Another process may have finished first; accept its folder.
    ACCEL_CHECK_INPUT(is_imdb_dir(target), "cannot move ", extracted.string(), " to ", target.string(), ": ",
                      ec.message(), ". HINT: remove ", target.string(), " and try again.");
  }
  return target;
}

}  // namespace accel::datasets
