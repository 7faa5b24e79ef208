// Built-in trackers (JSONL, CSV, TensorBoard) and the Trackers collection (see tracker.h).
#include "accel/tracking/tracker.h"

#include "accel/core/error.h"
#include "accel/core/fs.h"
#include "accel/tracking/event_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <set>
#include <sstream>

namespace accel::tracking {

namespace {

constexpr const char* kStepKey = "step";
constexpr const char* kWallTimeKey = "wall_time";

double wall_time_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// Creates <logging_dir>/<project>/ and returns it.
std::string run_dir(const std::string& logging_dir, const std::string& project, const char* tracker) {
  const std::string dir = fs::join(logging_dir.empty() ? "." : logging_dir, project);
  std::error_code ec;
  fs::create_directories(dir, ec);
  ACCEL_CHECK(!ec, tracker, " tracker: cannot create the folder '", dir, "': ", ec.message(),
              ". HINT: check that the logging directory is writable");
  return dir;
}

std::FILE* open_file(const std::string& path, const char* mode, const char* tracker) {
  std::FILE* f = std::fopen(path.c_str(), mode);
  ACCEL_CHECK(f != nullptr, tracker, " tracker: cannot open '", path, "' (", std::strerror(errno),
              "). HINT: check that the logging directory is writable");
  return f;
}

// Writes all of `data` and flushes it to the OS, so a crash of this process loses nothing.
void write_flush(std::FILE* f, std::string_view data, const std::string& path) {
  ACCEL_CHECK(f != nullptr, "tracker: '", path, "' is not open (call start() first)");
  std::size_t n = std::fwrite(data.data(), 1, data.size(), f);
  ACCEL_CHECK(n == data.size() && std::fflush(f) == 0, "tracker: writing '", path, "' failed (",
              std::strerror(errno), ")");
}

void close_file(std::FILE*& f) {
  if (f != nullptr) {
    std::fclose(f);
    f = nullptr;
  }
}

std::string json_string(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A JSON number as Python's json module writes it (NaN / Infinity for non-finite doubles).
std::string json_value(const Value& v) {
  if (v.is_string()) return json_string(v.as_string());
  if (v.is_int()) return std::to_string(v.as_int());
  double d = v.to_double();
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  std::string s = format_double(d);
  // Keep doubles doubles when read back: 2.0 is written "2.0", not "2".
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

// config.json beside the metrics, written durably and atomically (accel::fs::write_file_atomic:
// temporary file, fsync, rename, fsync of the folder).
void write_config(const std::string& dir, const Values& config, const char* tracker) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : config) {
    if (v.is_string()) {
      j[k] = v.as_string();
    } else if (v.is_int()) {
      j[k] = v.as_int();
    } else {
      j[k] = v.to_double();  // non-finite become null
    }
  }
  try {
    fs::write_file_atomic(fs::join(dir, "config.json"),
                          j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  } catch (const Error& e) {
    throw Error(c10::str(tracker, " tracker: ", e.what_without_backtrace()));
  }
}

// ---- CSV helpers ----

std::string csv_cell(const std::string& s) {
  bool quote = s.find_first_of(",\"\r\n") != std::string::npos ||
               (!s.empty() && (s.front() == ' ' || s.back() == ' '));
  if (!quote) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

// The header line (without newline). Built with append: GCC 12 warns falsely on
// `const char* + std::string&&` (-Wstringop-overflow).
std::string csv_header(const std::vector<std::string>& columns) {
  std::string header;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i) header += ',';
    header += csv_cell(columns[i]);
  }
  return header;
}

std::string csv_value(const Value& v) {
  return v.is_string() ? csv_cell(v.as_string()) : v.to_string();
}

// Splits CSV text into records (quote-aware: a newline inside quotes belongs to the cell).
// Each record keeps its text without the terminating newline.
std::vector<std::string> csv_records(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  bool in_quotes = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') in_quotes = !in_quotes;
    if (c == '\n' && !in_quotes) {
      if (!cur.empty() && cur.back() == '\r') cur.pop_back();
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

// Splits one CSV record into unquoted cells.
std::vector<std::string> csv_cells(const std::string& record) {
  std::vector<std::string> cells;
  std::string cur;
  bool in_quotes = false;
  for (std::size_t i = 0; i < record.size(); ++i) {
    char c = record[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < record.size() && record[i + 1] == '"') {
          cur += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        cur += c;
      }
    } else if (c == '"') {
      in_quotes = true;
    } else if (c == ',') {
      cells.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  cells.push_back(std::move(cur));
  return cells;
}

std::string read_all(const std::string& path) {
  return fs::read_file(path, "tracker file");
}

std::string markdown_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += (c == '\n' || c == '\r') ? ' ' : c;
  }
  return out;
}

void check_project(const std::string& project) {
  ACCEL_CHECK(!project.empty(), "Trackers::init: the project (run) name is empty. HINT: pass a "
              "name such as \"bert-imdb\"; files go to <logging_dir>/<project>/");
  ACCEL_CHECK(project.front() != '/', "Trackers::init: the project name '", project,
              "' is an absolute path; it must be a relative folder name");
  for (size_t begin = 0; begin <= project.size();) {
    const size_t end = std::min(project.find('/', begin), project.size());
    ACCEL_CHECK(project.compare(begin, end - begin, "..") != 0, "Trackers::init: the project name '", project,
                "' contains '..'; it must stay inside the logging directory");
    begin = end + 1;
  }
}

}  // namespace

// ---- JsonlTracker ----

JsonlTracker::JsonlTracker(std::string logging_dir) : logging_dir_(std::move(logging_dir)) {}
JsonlTracker::~JsonlTracker() { close_file(file_); }

void JsonlTracker::start(const std::string& project, const Values& config) {
  ACCEL_CHECK(file_ == nullptr, "JsonlTracker::start called twice");
  auto dir = run_dir(logging_dir_, project, "jsonl");
  write_config(dir, config, "jsonl");
  path_ = fs::join(dir, "metrics.jsonl");
  file_ = open_file(path_, "ab", "jsonl");
}

void JsonlTracker::log(const Values& values, std::int64_t step) {
  std::string line = "{\"step\":";
  line += std::to_string(step);
  line += ",\"wall_time\":";
  line += json_value(Value(wall_time_now()));
  for (const auto& [k, v] : values) {
    line += ',';
    line += json_string(k);
    line += ':';
    line += json_value(v);
  }
  line += "}\n";
  write_flush(file_, line, path_);
}

void JsonlTracker::finish() { close_file(file_); }

// ---- CsvTracker ----

CsvTracker::CsvTracker(std::string logging_dir) : logging_dir_(std::move(logging_dir)) {}
CsvTracker::~CsvTracker() { close_file(file_); }

void CsvTracker::start(const std::string& project, const Values& config) {
  ACCEL_CHECK(file_ == nullptr, "CsvTracker::start called twice");
  auto dir = run_dir(logging_dir_, project, "csv");
  write_config(dir, config, "csv");
  path_ = fs::join(dir, "metrics.csv");
  columns_.clear();
  const auto existing = fs::stat(path_);
  if (existing && existing->size > 0) {
    // A resumed run: continue the existing file with its columns.
    auto records = csv_records(read_all(path_));
    ACCEL_CHECK_INPUT(!records.empty(), "csv tracker: cannot read the header of '", path_, "'");
    columns_ = csv_cells(records.front());
    ACCEL_CHECK_INPUT(columns_.size() >= 2 && columns_[0] == kStepKey &&
                          columns_[1] == kWallTimeKey,
                      "csv tracker: '", path_, "' exists but does not start with the columns "
                      "step,wall_time. HINT: move it away or choose another project name");
    std::string text = read_all(path_);
    file_ = open_file(path_, "ab", "csv");
    if (!text.empty() && text.back() != '\n') write_flush(file_, "\n", path_);
  } else {
    file_ = open_file(path_, "wb", "csv");
  }
}

void CsvTracker::add_columns(const std::vector<std::string>& new_keys) {
  close_file(file_);
  auto records = csv_records(read_all(path_));
  columns_.insert(columns_.end(), new_keys.begin(), new_keys.end());
  std::string header = csv_header(columns_);
  std::string padding(new_keys.size(), ',');
  std::string text = header + "\n";
  for (std::size_t i = 1; i < records.size(); ++i) text += records[i] + padding + "\n";
  try {
    fs::write_file_atomic(path_, text);
  } catch (const Error& e) {
    throw Error(c10::str("csv tracker: ", e.what_without_backtrace()));
  }
  file_ = open_file(path_, "ab", "csv");
}

void CsvTracker::log(const Values& values, std::int64_t step) {
  ACCEL_CHECK(file_ != nullptr, "CsvTracker::log called before start()");
  if (columns_.empty()) {
    columns_ = {kStepKey, kWallTimeKey};
    for (const auto& [k, v] : values) columns_.push_back(k);
    write_flush(file_, csv_header(columns_) + "\n", path_);
  } else {
    std::vector<std::string> new_keys;
    for (const auto& [k, v] : values) {
      if (std::find(columns_.begin(), columns_.end(), k) == columns_.end()) new_keys.push_back(k);
    }
    if (!new_keys.empty()) add_columns(new_keys);
  }
  std::string row = std::to_string(step) + "," + format_double(wall_time_now());
  for (std::size_t i = 2; i < columns_.size(); ++i) {
    row += ",";
    auto it = values.find(columns_[i]);
    if (it != values.end()) row += csv_value(it->second);
  }
  write_flush(file_, row + "\n", path_);
}

void CsvTracker::finish() { close_file(file_); }

// ---- TensorBoardTracker ----

TensorBoardTracker::TensorBoardTracker(std::string logging_dir)
    : logging_dir_(std::move(logging_dir)) {}
TensorBoardTracker::~TensorBoardTracker() { close_file(file_); }

void TensorBoardTracker::write_record(const std::string& event) {
  write_flush(file_, frame_record(event), path_);
}

void TensorBoardTracker::start(const std::string& project, const Values& config) {
  ACCEL_CHECK(file_ == nullptr, "TensorBoardTracker::start called twice");
  auto dir = run_dir(logging_dir_, project, "tensorboard");
  double now = wall_time_now();
  path_ = fs::join(dir, event_file_name(static_cast<std::int64_t>(now)));
  file_ = open_file(path_, "wb", "tensorboard");
  Event first;
  first.wall_time = now;
  first.file_version = "brain.Event:2";
  write_record(encode_event(first));
  if (!config.empty()) {
    std::string table = "| name | value |\n| --- | --- |\n";
    for (const auto& [k, v] : config) {
      table += "| " + markdown_cell(k) + " | " + markdown_cell(v.to_string()) + " |\n";
    }
    Event e;
    e.wall_time = wall_time_now();
    e.step = 0;
    e.values.push_back(SummaryValue{"config", std::nullopt, table, "text"});
    write_record(encode_event(e));
  }
}

void TensorBoardTracker::log(const Values& values, std::int64_t step) {
  ACCEL_CHECK(file_ != nullptr, "TensorBoardTracker::log called before start()");
  Event e;
  e.wall_time = wall_time_now();
  e.step = step;
  for (const auto& [k, v] : values) {
    if (v.is_string()) {
      e.values.push_back(SummaryValue{k, std::nullopt, v.as_string(), "text"});
    } else {
      e.values.push_back(SummaryValue{k, static_cast<float>(v.to_double()), std::nullopt, ""});
    }
  }
  write_record(encode_event(e));
}

void TensorBoardTracker::finish() { close_file(file_); }

// ---- factory ----

const std::vector<std::string>& builtin_tracker_names() {
  static const std::vector<std::string> names = {"jsonl", "csv", "tensorboard"};
  return names;
}

namespace {
std::string accepted_names() { return "\"jsonl\", \"csv\", \"tensorboard\", \"all\""; }
}  // namespace

std::unique_ptr<GeneralTracker> make_tracker(const std::string& name,
                                             const std::string& logging_dir) {
  if (name == "jsonl") return std::make_unique<JsonlTracker>(logging_dir);
  if (name == "csv") return std::make_unique<CsvTracker>(logging_dir);
  if (name == "tensorboard") return std::make_unique<TensorBoardTracker>(logging_dir);
  ACCEL_CHECK(name != "all", "make_tracker: \"all\" names several trackers; use make_trackers");
  ACCEL_CHECK(false, "unknown tracker \"", name, "\"; accepted names: ", accepted_names());
  return nullptr;
}

std::vector<std::unique_ptr<GeneralTracker>> make_trackers(const std::vector<std::string>& names,
                                                           const std::string& logging_dir) {
  std::vector<std::string> expanded;
  for (const auto& n : names) {
    if (n == "all") {
      for (const auto& b : builtin_tracker_names()) expanded.push_back(b);
    } else {
      ACCEL_CHECK(std::find(builtin_tracker_names().begin(), builtin_tracker_names().end(), n) !=
                      builtin_tracker_names().end(),
                  "unknown tracker \"", n, "\"; accepted names: ", accepted_names());
      expanded.push_back(n);
    }
  }
  std::vector<std::unique_ptr<GeneralTracker>> out;
  std::set<std::string> seen;
  for (const auto& n : expanded) {
    if (seen.insert(n).second) out.push_back(make_tracker(n, logging_dir));
  }
  return out;
}

// ---- Trackers ----

Trackers::Trackers(bool is_main_process) : is_main_process_(is_main_process) {}

Trackers::Trackers(bool is_main_process, const std::vector<std::string>& names,
                   const std::string& logging_dir)
    : is_main_process_(is_main_process) {
  for (auto& t : make_trackers(names, logging_dir)) add(std::move(t));
}

Trackers::~Trackers() {
  try {
    end();
  } catch (...) {
  }
}

bool Trackers::runs_here(const GeneralTracker& t) const {
  return is_main_process_ || !t.main_process_only();
}

void Trackers::add(std::unique_ptr<GeneralTracker> tracker) {
  std::lock_guard<std::mutex> lock(mu_);
  ACCEL_CHECK(tracker != nullptr, "Trackers::add: the tracker is null");
  ACCEL_CHECK(!started_, "Trackers::add: add trackers before init()");
  auto name = tracker->name();
  for (const auto& t : trackers_) {
    ACCEL_CHECK(t->name() != name, "Trackers::add: a tracker named \"", name,
                "\" was already added; names must be unique");
  }
  trackers_.push_back(std::move(tracker));
}

void Trackers::init(const std::string& project, const Values& config) {
  std::lock_guard<std::mutex> lock(mu_);
  ACCEL_CHECK(!started_, "Trackers::init: called twice; one init per run");
  check_project(project);
  started_ = true;
  for (auto& t : trackers_) {
    if (runs_here(*t)) t->start(project, config);
  }
}

void Trackers::log(const Values& values, std::int64_t step) {
  std::lock_guard<std::mutex> lock(mu_);
  ACCEL_CHECK(started_, "Trackers::log: call init(project, config) before log()");
  ACCEL_CHECK(!ended_, "Trackers::log: called after end()");
  for (const auto& [k, v] : values) {
    ACCEL_CHECK(!k.empty(), "Trackers::log: a value has an empty name");
    ACCEL_CHECK(k != kStepKey && k != kWallTimeKey, "Trackers::log: the name \"", k,
                "\" is reserved (the trackers write \"step\" and \"wall_time\" themselves); "
                "HINT: rename the value, e.g. \"train/", k, "\"");
  }
  for (auto& t : trackers_) {
    if (runs_here(*t)) t->log(values, step);
  }
}

void Trackers::end() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_ || ended_) return;
  ended_ = true;
  for (auto& t : trackers_) {
    if (runs_here(*t)) t->finish();
  }
}

GeneralTracker* Trackers::get(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& t : trackers_) {
    if (t->name() == name) return t.get();
  }
  return nullptr;
}

}  // namespace accel::tracking
