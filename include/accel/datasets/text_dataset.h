// Labelled text datasets: an in-memory (text, label) table, CSV (RFC 4180) and JSONL readers,
// a deterministic label-balanced subset (max_samples) and a stratified, seeded validation split.
// Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace accel::datasets {

/// Texts with integer labels; sources[i] says where row i came from (file, file:line).
struct TextClassificationDataset {
  std::vector<std::string> texts;
  std::vector<int64_t> labels;
  std::vector<std::string> sources;
  size_t size() const noexcept { return texts.size(); }
  bool empty() const noexcept { return texts.empty(); }
  /// Appends one example.
  void add(std::string text, int64_t label, std::string source);
  /// Rows idx[0], idx[1], ... as a new dataset. Every index must be < size().
  TextClassificationDataset select(const std::vector<size_t>& idx) const;
};

#define ACCEL_DATASETS_ARG(T, name, ...)             \
 public:                                             \
  auto name(const T& v)->decltype(*this) {           \
    this->name##_ = v;                               \
    return *this;                                    \
  }                                                  \
  const T& name() const noexcept { return name##_; } \
  T name##_ = __VA_ARGS__

/// Columns and label spelling of a CSV or JSONL file.
struct TextFileOptions {
  /// Column (CSV header name / JSON key) holding the text. Default "text".
  ACCEL_DATASETS_ARG(std::string, text_column, "text");
  /// Column holding the label. Default "label".
  ACCEL_DATASETS_ARG(std::string, label_column, "label");
  /// CSV field separator. Default ','.
  ACCEL_DATASETS_ARG(char, delimiter, ',');
  /// Label strings; label_names[i] reads as label i (compared case-insensitively). Default empty:
  /// integers are read as they are, and "neg"/"negative"/"false" read 0, "pos"/"positive"/"true" 1.
  ACCEL_DATASETS_ARG(std::vector<std::string>, label_names, {});
};

#undef ACCEL_DATASETS_ARG

/// Reads a CSV file with a header row (RFC 4180: quoted fields, "" for a quote, newlines inside
/// quotes, CRLF or LF). Throws accel::InputError naming the file, line and a HINT when the file is
/// missing, a column is absent, a quote is unterminated, a row has the wrong number of fields or a
/// label cannot be read.
TextClassificationDataset read_csv(const std::string& path, const TextFileOptions& options = {});

/// Parses CSV text (as read_csv; `source` names it in messages).
TextClassificationDataset parse_csv(const std::string& content, const std::string& source,
                                    const TextFileOptions& options = {});

/// Reads a JSON Lines file: one object per non-empty line with the text and label keys (label an
/// integer, a bool or a string as in TextFileOptions::label_names). Errors as read_csv.
TextClassificationDataset read_jsonl(const std::string& path, const TextFileOptions& options = {});

/// Parses JSON Lines text (as read_jsonl; `source` names it in messages).
TextClassificationDataset parse_jsonl(const std::string& content, const std::string& source,
                                      const TextFileOptions& options = {});

/// Label-balanced order: rows grouped by label (labels ascending), then taken round-robin, one of
/// each label in turn, each label's rows keeping their order; a label that runs out is skipped.
/// Returns the row indices in that order.
std::vector<size_t> interleave_by_label(const std::vector<int64_t>& labels);

/// The first n rows of interleave_by_label (all rows when n == 0 or n >= size()): with two labels
/// this is ceil(n/2) rows of label 0 and floor(n/2) of label 1 (as far as each has rows), the first
/// ones in the dataset's order, alternating 0, 1, 0, 1, ...
TextClassificationDataset take_balanced(const TextClassificationDataset& data, size_t n);

/// Stratified split: for each label, its row indices are shuffled with `seed` (SplitMix64 +
/// Fisher-Yates, the same on every platform) and the first round(fraction * count) go to the second
/// (validation) part. Both parts keep the input order. fraction must be in [0, 1).
std::pair<TextClassificationDataset, TextClassificationDataset> split_validation(
    const TextClassificationDataset& data, double fraction, uint64_t seed);

}  // namespace accel::datasets
