// CSV / JSONL readers, label-balanced subsets and the stratified validation split.
#include "accel/datasets/text_dataset.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "accel/core/error.h"
#include "accel/core/fs.h"
#include "accel/core/strings.h"

namespace accel::datasets {

void TextClassificationDataset::add(std::string text, int64_t label, std::string source) {
  texts.push_back(std::move(text));
  labels.push_back(label);
  sources.push_back(std::move(source));
}

TextClassificationDataset TextClassificationDataset::select(const std::vector<size_t>& idx) const {
  TextClassificationDataset out;
  out.texts.reserve(idx.size());
  out.labels.reserve(idx.size());
  out.sources.reserve(idx.size());
  for (size_t i : idx) {
    ACCEL_CHECK(i < size(), "row ", i, " is out of range (dataset size ", size(), ")");
    out.texts.push_back(texts[i]);
    out.labels.push_back(labels[i]);
    out.sources.push_back(i < sources.size() ? sources[i] : std::string());
  }
  return out;
}

namespace {

std::string read_all(const std::string& path, const char* what) {
  ACCEL_CHECK_INPUT(fs::exists(path), what, " '", path, "' does not exist. HINT: check the ",
                    "path (relative paths are taken from the current directory, ", fs::current_dir(), ").");
  return fs::read_file(path, what);
}

int64_t parse_label(const std::string& raw, const TextFileOptions& o, const std::string& where) {
  const std::string v = trim(raw);
  const std::string lv = lower(v);
  if (!o.label_names().empty()) {
    for (size_t i = 0; i < o.label_names().size(); ++i) {
      if (lower(o.label_names()[i]) == lv) return static_cast<int64_t>(i);
    }
  } else {
    if (lv == "neg" || lv == "negative" || lv == "false") return 0;
    if (lv == "pos" || lv == "positive" || lv == "true") return 1;
  }
  if (!v.empty()) {
    size_t i = (v[0] == '-' || v[0] == '+') ? 1 : 0;
    bool digits = i < v.size();
    for (size_t k = i; k < v.size(); ++k) digits = digits && std::isdigit(static_cast<unsigned char>(v[k]));
    if (digits && v.size() < 19) return std::stoll(v);
  }
  std::string names;
  for (const auto& n : o.label_names()) names += (names.empty() ? "" : ", ") + n;
  ACCEL_CHECK_INPUT(
      false, where, ": cannot read label '", v, "' (column '", o.label_column(), "'). ", "Accepted: integers",
      names.empty() ? ", neg/negative/false (0), pos/positive/true (1)" : ", or one of: " + names,
      ". HINT: fix the value, or set TextFileOptions::label_names to the label strings "
      "in label order.");
  return 0;
}

}  // namespace

TextClassificationDataset parse_csv(const std::string& content, const std::string& source,
                                    const TextFileOptions& o) {
  // Split into records of fields (RFC 4180).
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> row_lines;  // line where each record starts
  std::vector<std::string> fields;
  std::string field;
  size_t line = 1, record_line = 1;
  size_t i = 0;
  const size_t n = content.size();
  if (n >= 3 && content.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // UTF-8 BOM
  bool in_record = false;
  while (i < n) {
    char c = content[i];
    if (!in_record) {
      record_line = line;
      in_record = true;
    }
    if (c == '"' && field.empty()) {
      // Quoted field.
      size_t start_line = line;
      ++i;
      bool closed = false;
      while (i < n) {
        if (content[i] == '"') {
          if (i + 1 < n && content[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        if (content[i] == '\n') ++line;
        field.push_back(content[i++]);
      }
      ACCEL_CHECK_INPUT(closed, source, ":", start_line, ": quoted field never closed. HINT: a '\"' ",
                        "inside a quoted field must be doubled (\"\"), per RFC 4180.");
      ACCEL_CHECK_INPUT(i >= n || content[i] == o.delimiter() || content[i] == '\n' || content[i] == '\r',
                        source, ":", line, ": unexpected character after a closing quote. HINT: quote ",
                        "the whole field and double the quotes inside it (\"\").");
      continue;
    }
    if (c == o.delimiter()) {
      fields.push_back(std::move(field));
      field.clear();
      ++i;
      continue;
    }
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < n && content[i + 1] == '\n') ++i;
      ++i;
      ++line;
      fields.push_back(std::move(field));
      field.clear();
      if (!(fields.size() == 1 && fields[0].empty())) {  // skip blank lines
        rows.push_back(std::move(fields));
        row_lines.push_back(record_line);
      }
      fields.clear();
      in_record = false;
      continue;
    }
    field.push_back(c);
    ++i;
  }
  if (in_record) {
    fields.push_back(std::move(field));
    if (!(fields.size() == 1 && fields[0].empty())) {
      rows.push_back(std::move(fields));
      row_lines.push_back(record_line);
    }
  }
  ACCEL_CHECK_INPUT(!rows.empty(), source, ": the CSV file is empty. HINT: it needs a header row naming ",
                    "the columns ('", o.text_column(), "', '", o.label_column(),
                    "') and one row per example.");
  const auto& header = rows[0];
  auto find_col = [&](const std::string& name) -> size_t {
    for (size_t k = 0; k < header.size(); ++k) {
      if (trim(header[k]) == name) return k;
    }
    std::string cols;
    for (const auto& h : header) cols += (cols.empty() ? "" : ", ") + ("'" + h + "'");
    ACCEL_CHECK_INPUT(false, source, ":1: no column '", name, "' in the header (columns: ", cols,
                      "). HINT: set TextFileOptions::text_column / label_column to the right names.");
    return 0;
  };
  const size_t tc = find_col(o.text_column());
  const size_t lc = find_col(o.label_column());
  TextClassificationDataset out;
  for (size_t r = 1; r < rows.size(); ++r) {
    const std::string where = source + ":" + std::to_string(row_lines[r]);
    ACCEL_CHECK_INPUT(rows[r].size() == header.size(), where, ": ", rows[r].size(),
                      " fields, the header has ", header.size(), ". HINT: quote fields that contain '",
                      std::string(1, o.delimiter()), "', quotes or newlines (RFC 4180).");
    out.add(rows[r][tc], parse_label(rows[r][lc], o, where), where);
  }
  return out;
}

TextClassificationDataset read_csv(const std::string& path, const TextFileOptions& options) {
  return parse_csv(read_all(path, "CSV file"), path, options);
}

TextClassificationDataset parse_jsonl(const std::string& content, const std::string& source,
                                      const TextFileOptions& o) {
  TextClassificationDataset out;
  size_t pos = 0, line = 0;
  while (pos < content.size()) {
    size_t nl = content.find('\n', pos);
    if (nl == std::string::npos) nl = content.size();
    std::string text = content.substr(pos, nl - pos);
    pos = nl + 1;
    ++line;
    if (trim(text).empty()) continue;
    const std::string where = source + ":" + std::to_string(line);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      ACCEL_CHECK_INPUT(false, where, ": not valid JSON (", e.what(), "). HINT: JSON Lines needs one ",
                        "complete JSON object per line.");
    }
    ACCEL_CHECK_INPUT(j.is_object(), where, ": expected a JSON object, got ", j.type_name(),
                      ". HINT: each line should look like {\"", o.text_column(), "\": \"...\", \"",
                      o.label_column(), "\": 1}.");
    auto t = j.find(o.text_column());
    ACCEL_CHECK_INPUT(t != j.end() && t->is_string(), where, ": no string field '", o.text_column(),
                      "'. HINT: set TextFileOptions::text_column to the key holding the text.");
    auto l = j.find(o.label_column());
    ACCEL_CHECK_INPUT(l != j.end() && !l->is_null(), where, ": no field '", o.label_column(),
                      "'. HINT: set TextFileOptions::label_column to the key holding the label.");
    int64_t label = 0;
    if (l->is_number_integer()) {
      label = l->get<int64_t>();
    } else if (l->is_boolean()) {
      label = l->get<bool>() ? 1 : 0;
    } else if (l->is_string()) {
      label = parse_label(l->get<std::string>(), o, where);
    } else {
      ACCEL_CHECK_INPUT(false, where, ": label '", l->dump(), "' is not an integer, bool or string. ",
                        "HINT: store labels as integers (0, 1, ...) or names listed in label_names.");
    }
    out.add(t->get<std::string>(), label, where);
  }
  return out;
}

TextClassificationDataset read_jsonl(const std::string& path, const TextFileOptions& options) {
  return parse_jsonl(read_all(path, "JSONL file"), path, options);
}

std::vector<size_t> interleave_by_label(const std::vector<int64_t>& labels) {
  std::map<int64_t, std::vector<size_t>> groups;
  for (size_t i = 0; i < labels.size(); ++i) groups[labels[i]].push_back(i);
  std::vector<size_t> out;
  out.reserve(labels.size());
  for (size_t k = 0; out.size() < labels.size(); ++k) {
    for (const auto& [label, idx] : groups) {
      if (k < idx.size()) out.push_back(idx[k]);
    }
  }
  return out;
}

TextClassificationDataset take_balanced(const TextClassificationDataset& data, size_t n) {
  std::vector<size_t> order = interleave_by_label(data.labels);
  if (n > 0 && n < order.size()) order.resize(n);
  return data.select(order);
}

std::pair<TextClassificationDataset, TextClassificationDataset> split_validation(
    const TextClassificationDataset& data, double fraction, uint64_t seed) {
  ACCEL_CHECK(fraction >= 0.0 && fraction < 1.0, "validation fraction ", fraction, " must be in [0, 1)");
  uint64_t state = seed;
  auto next = [&state] {  // SplitMix64
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  };
  std::map<int64_t, std::vector<size_t>> groups;
  for (size_t i = 0; i < data.labels.size(); ++i) groups[data.labels[i]].push_back(i);
  std::vector<bool> held(data.size(), false);
  for (auto& [label, idx] : groups) {
    for (size_t i = idx.size(); i > 1; --i) {  // Fisher-Yates
      size_t j = static_cast<size_t>(next() % i);
      std::swap(idx[i - 1], idx[j]);
    }
    size_t k = static_cast<size_t>(std::llround(fraction * static_cast<double>(idx.size())));
    for (size_t q = 0; q < k; ++q) held[idx[q]] = true;
  }
  std::vector<size_t> a, b;
  for (size_t i = 0; i < data.size(); ++i) (held[i] ? b : a).push_back(i);
  return {data.select(a), data.select(b)};
}

}  // namespace accel::datasets
