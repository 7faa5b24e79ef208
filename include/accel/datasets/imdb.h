// The IMDb movie-review dataset (Stanford aclImdb layout): reading a split, finding the data on
// this machine (--data-dir, ACCEL_DATA_DIR, the cache, local copies), and downloading the official
// archive into the cache (libcurl, SHA-256 verified, extracted atomically with `tar`).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "accel/datasets/text_dataset.h"

namespace accel::datasets {

/// Official archive and its SHA-256.
inline constexpr const char* kImdbUrl = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz";
inline constexpr const char* kImdbSha256 =
    "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe";

#define ACCEL_DATASETS_ARG(T, name, ...)             \
 public:                                             \
  auto name(const T& v)->decltype(*this) {           \
    this->name##_ = v;                               \
    return *this;                                    \
  }                                                  \
  const T& name() const noexcept { return name##_; } \
  T name##_ = __VA_ARGS__

/// Which part of IMDb to read.
///
/// Order and subsets, exactly: each label folder (neg = 0, pos = 1; `unsup` is ignored) is sorted
/// by file name "<id>_<rating>.txt" numerically (id, then rating). With validation_fraction > 0 the
/// train folder is split by split_validation(fraction, seed) (stratified). The chosen part is then
/// put in interleave_by_label order (neg, pos, neg, pos, ...) and max_samples keeps its first
/// max_samples rows: a label-balanced subset (ceil(n/2) neg, floor(n/2) pos), the lowest ids of
/// each label, unlike Hugging Face's `train[:2000]` which is all negative.
struct ImdbOptions {
  /// "train", "test" or "validation" (held out of train; needs validation_fraction > 0).
  ACCEL_DATASETS_ARG(std::string, split, "train");
  /// Keep only this many rows (0: all). Default 0.
  ACCEL_DATASETS_ARG(int64_t, max_samples, 0);
  /// Fraction of train held out as "validation", in [0, 1). Default 0 (none).
  ACCEL_DATASETS_ARG(double, validation_fraction, 0.0);
  /// Seed of the validation split. Default 42.
  ACCEL_DATASETS_ARG(uint64_t, seed, 42);
};

/// Where to look for (and how to fetch) the aclImdb folder. Precedence: data_dir > ACCEL_DATA_DIR
/// > cache folder > local copies > download.
struct ImdbLocationOptions {
  /// Explicit folder (a --data-dir value): aclImdb itself, or a folder holding aclImdb/ or
  /// imdb/aclImdb/. When set it must exist. Default "" (not given).
  ACCEL_DATASETS_ARG(std::string, data_dir, "");
  /// Cache folder; "" means $XDG_CACHE_HOME/accel/datasets/imdb, else ~/.cache/accel/datasets/imdb.
  ACCEL_DATASETS_ARG(std::string, cache_dir, "");
  /// Folders to search upward from for shared/data/imdb/aclImdb; nullopt (default) means the
  /// current directory and the executable's folder; an empty list disables the search.
  ACCEL_DATASETS_ARG(std::optional<std::vector<std::string>>, search_roots, std::nullopt);
  /// Download the archive into the cache when nothing is found. Default true.
  ACCEL_DATASETS_ARG(bool, allow_download, true);
  /// Archive URL (tests point it at a local server). Default kImdbUrl.
  ACCEL_DATASETS_ARG(std::string, url, kImdbUrl);
  /// Expected SHA-256 of the archive (lowercase hex). Default kImdbSha256.
  ACCEL_DATASETS_ARG(std::string, sha256, kImdbSha256);
  /// Called during a download with (bytes so far, total bytes or -1). Default none.
  ACCEL_DATASETS_ARG(std::function<void(int64_t, int64_t)>, on_progress, nullptr);
};

#undef ACCEL_DATASETS_ARG

/// The environment variables the resolver reads (ACCEL_DATA_DIR, XDG_CACHE_HOME, HOME).
using EnvMap = std::map<std::string, std::string>;

/// Reads ACCEL_DATA_DIR, XDG_CACHE_HOME and HOME from the process environment (the one place).
EnvMap imdb_env_from_process();

/// The cache folder for IMDb given the environment (see ImdbLocationOptions::cache_dir).
std::string default_imdb_cache_dir(const EnvMap& env);

/// True when `dir` looks like aclImdb: it has train/ or test/ with pos/ and neg/ inside.
bool is_imdb_dir(const std::string& dir);

/// Where the data was found and how.
struct ImdbLocation {
  std::string dir;            // the aclImdb folder
  std::string source;         // "data_dir", "ACCEL_DATA_DIR", "cache", "local copy" or "download"
};

/// Finds the aclImdb folder (see ImdbLocationOptions for the order), downloading it when allowed.
/// Throws accel::InputError saying where it looked, with a HINT, when it cannot.
ImdbLocation resolve_imdb_dir(const ImdbLocationOptions& options = {},
                              const EnvMap& env = imdb_env_from_process());

/// Downloads `url` to a temporary file in `cache_dir`, checks its SHA-256 against `sha256`,
/// extracts it with `tar` into a temporary folder there and renames its aclImdb/ to
/// cache_dir/aclImdb. Nothing is left behind on failure. Returns cache_dir/aclImdb. Throws
/// accel::InputError on a network error, an HTTP error status, a checksum mismatch or a bad archive.
std::string download_imdb(const std::string& url, const std::string& sha256, const std::string& cache_dir,
                          const std::function<void(int64_t, int64_t)>& on_progress = nullptr);

/// Files of one label folder (e.g. aclImdb/train/pos), sorted numerically by "<id>_<rating>.txt"
/// (other names after, by name). Throws accel::InputError when the folder is missing.
std::vector<std::string> list_imdb_files(const std::string& label_dir);

/// Reads a split of an aclImdb folder (see ImdbOptions for the exact order and subsets).
/// Throws accel::InputError when a folder is missing or the options are invalid.
TextClassificationDataset load_imdb(const std::string& aclimdb_dir, const ImdbOptions& options = {});

}  // namespace accel::datasets
