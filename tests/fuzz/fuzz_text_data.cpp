// libFuzzer target: the labelled-text readers of accel::datasets. The first byte picks the
// reader, the second the options:
//   mode 0  parse_csv (RFC 4180; delimiter, label names picked by the options byte);
//   mode 1  parse_jsonl;
//   mode 2  load_imdb on an aclImdb folder made on tmpfs from the rest of the input: parts
//           separated by "\n--\n" alternate file name and review text, spread over
//           train/{neg,pos} and test/{neg,pos} (the file names are what the reader parses).
// A dataset that loads also goes through take_balanced and split_validation, whose outputs
// must be permutations/partitions of the rows.
//
// Build and run (see scripts/fuzz.sh, which does all of this):
//   CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DACCEL_FUZZ=ON \
//       -DCMAKE_PREFIX_PATH=$(.venv/bin/python -c 'import torch;print(torch.utils.cmake_prefix_path)')
//   cmake --build build-fuzz --target fuzz_text_data -j2
//   LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp build-fuzz/tests/fuzz/fuzz_text_data \
//       -dict=tests/fuzz/dicts/text_data.dict build-fuzz/corpus/fuzz_text_data
//       tests/fuzz/corpus/fuzz_text_data
#include "accel/datasets/imdb.h"
#include "accel/datasets/text_dataset.h"

#include "fuzz_common.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

using namespace accel::datasets;
namespace fs = accel::fs;

namespace {

TextFileOptions file_options(uint8_t b) {
  static const char kDelims[] = {',', ';', '\t', '|'};
  TextFileOptions o;
  o.delimiter(kDelims[b & 3]);
  if (b & 4) o.label_names({"neg", "pos", "Neutral"});
  if (b & 8) o.text_column("review").label_column("sentiment");
  return o;
}

void check_dataset(const TextClassificationDataset& d, uint8_t b) {
  accel::fuzz::expect(d.texts.size() == d.labels.size() && d.texts.size() == d.sources.size(),
                      "texts, labels and sources have one length");
  accel::fuzz::must_not_throw("take_balanced / split_validation of a loaded dataset", [&] {
    const size_t n = b % 7;
    const TextClassificationDataset t = take_balanced(d, n);
    accel::fuzz::expect(t.size() == ((n == 0 || n >= d.size()) ? d.size() : n), "take_balanced size");
    static const double kFractions[] = {0.0, 0.1, 0.5, 0.99};
    auto [train, val] = split_validation(d, kFractions[(b >> 3) & 3], b);
    accel::fuzz::expect(train.size() + val.size() == d.size(), "split_validation is a partition");
  });
}

void fuzz_imdb(std::string_view rest, uint8_t b) {
  const std::string root = fs::join(accel::fuzz::scratch_dir("text_data"), "aclImdb");
  std::error_code ec;
  fs::remove_all(root, ec);
  const char* kFolders[] = {"train/neg", "train/pos", "test/neg", "test/pos"};
  for (const char* f : kFolders) fs::create_directories(fs::join(root, f));
  auto parts = accel::fuzz::split_parts(rest, "\n--\n", 16);
  for (size_t i = 0; i + 1 < parts.size(); i += 2) {
    std::string name(parts[i].substr(0, 200));
    for (char& c : name) {
      if (c == '/' || c == '\0') c = '_';
    }
    if (name.empty() || name == "." || name == "..") name = "x.txt";
    accel::fuzz::write_file(fs::join(root, kFolders[(i / 2) % 4], name), parts[i + 1]);
  }
  static const char* kSplits[] = {"train", "test", "validation", "train"};
  static const double kFractions[] = {0.0, 0.2, 0.5, 0.9};
  ImdbOptions o;
  o.split(kSplits[b & 3]).validation_fraction(kFractions[(b >> 2) & 3]).max_samples((b >> 4) % 5).seed(b);
  std::optional<TextClassificationDataset> d;
  accel::fuzz::guarded([&] { d = load_imdb(root, o); });
  if (d) check_dataset(*d, b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int mode = data[0] % 3;
  const uint8_t b = data[1];
  const std::string rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  if (mode == 2) {
    fuzz_imdb(rest, b);
    return 0;
  }
  std::optional<TextClassificationDataset> d;
  accel::fuzz::guarded([&] {
    d = mode == 0 ? parse_csv(rest, "fuzz.csv", file_options(b))
                  : parse_jsonl(rest, "fuzz.jsonl", file_options(b));
  });
  if (d) check_dataset(*d, b);
  return 0;
}
