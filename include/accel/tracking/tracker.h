// Experiment trackers with Accelerate's API shape: the `GeneralTracker` interface users
// implement, the built-in JSONL, CSV and TensorBoard trackers, and `Trackers`, the collection
// the training loop talks to (main process only by default, as in Accelerate).
#pragma once

#include "accel/tracking/value.h"

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace accel::tracking {

/// An experiment tracker (Accelerate's `GeneralTracker`). Implement it to send metrics anywhere.
/// Calls arrive in the order start, log*, finish, from one thread at a time (`Trackers` locks).
class GeneralTracker {
 public:
  virtual ~GeneralTracker() = default;

  /// A short unique name ("jsonl", "csv", "tensorboard", or the user's own).
  virtual std::string name() const = 0;
  /// Begins a run called `project` and records its hyper-parameters `config`. Called once.
  virtual void start(const std::string& project, const Values& config) = 0;
  /// Records `values` at training step `step`. Must make them durable against a crash of this
  /// process before returning (flush), so nothing already logged is lost.
  virtual void log(const Values& values, std::int64_t step) = 0;
  /// Ends the run and releases files/connections. Called at most once, after start.
  virtual void finish() = 0;
  /// True (the default) when only the main process should run this tracker; return false for a
  /// tracker that must run on every rank (it is then called on all ranks by `Trackers`).
  virtual bool main_process_only() const { return true; }
};

/// Writes `<logging_dir>/<project>/metrics.jsonl`: one JSON object per log call,
/// `{"step": 12, "wall_time": 1718000000.25, "loss": 0.5, "phase": "train"}` (wall_time in seconds
/// since the Unix epoch; keys after "step" and "wall_time" sorted). Non-finite doubles are written
/// as NaN / Infinity / -Infinity, as Python's json module does. The config goes to
/// `<logging_dir>/<project>/config.json`. Appends if the file exists (a resumed run continues it).
class JsonlTracker : public GeneralTracker {
 public:
  /// Nothing is created until start().
  explicit JsonlTracker(std::string logging_dir);
  ~JsonlTracker() override;
  std::string name() const override { return "jsonl"; }
  void start(const std::string& project, const Values& config) override;
  void log(const Values& values, std::int64_t step) override;
  void finish() override;
  /// The metrics file (empty before start()).
  const std::string& path() const { return path_; }

 private:
  std::string logging_dir_;
  std::string path_;
  std::FILE* file_ = nullptr;
};

/// Writes `<logging_dir>/<project>/metrics.csv` with columns `step,wall_time,<keys...>`; the
/// first log call's keys (sorted) fix the initial columns. A key that was not seen before adds a
/// column at the end: the file is rewritten once (accel::fs::write_file_atomic: temporary file,
/// fsync, rename over the
/// old one) with the longer header and empty cells for the earlier rows. A key missing from a
/// call leaves its cell empty. Strings are quoted per RFC 4180 when needed; doubles use the
/// shortest exact form ("nan", "inf"). The config goes to `<logging_dir>/<project>/config.json`.
/// Always starts a new file (an existing metrics.csv is replaced).
class CsvTracker : public GeneralTracker {
 public:
  /// Nothing is created until start().
  explicit CsvTracker(std::string logging_dir);
  ~CsvTracker() override;
  std::string name() const override { return "csv"; }
  void start(const std::string& project, const Values& config) override;
  void log(const Values& values, std::int64_t step) override;
  void finish() override;
  /// The metrics file (empty before start()).
  const std::string& path() const { return path_; }
  /// The current columns, "step" and "wall_time" first.
  const std::vector<std::string>& columns() const { return columns_; }

 private:
  void add_columns(const std::vector<std::string>& new_keys);
  std::string logging_dir_;
  std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<std::string> columns_;
};

/// Writes TensorBoard event files to `<logging_dir>/<project>/events.out.tfevents.<unix time>.
/// <hostname>.<pid>.<counter>`. Numbers become scalars (stored as float32, as TensorBoard does;
/// int64 beyond 2^24 lose precision), strings become text summaries, and the config is written at
/// step 0 as a text summary tagged "config" holding a Markdown table of the hyper-parameters.
class TensorBoardTracker : public GeneralTracker {
 public:
  /// Nothing is created until start().
  explicit TensorBoardTracker(std::string logging_dir);
  ~TensorBoardTracker() override;
  std::string name() const override { return "tensorboard"; }
  void start(const std::string& project, const Values& config) override;
  void log(const Values& values, std::int64_t step) override;
  void finish() override;
  /// The event file (empty before start()).
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& event);
  std::string logging_dir_;
  std::string path_;
  std::FILE* file_ = nullptr;
};

/// The names `make_tracker` accepts: "jsonl", "csv", "tensorboard" ("all" expands to all three).
const std::vector<std::string>& builtin_tracker_names();

/// A built-in tracker by name, writing under `logging_dir`. Throws accel::Error for an unknown
/// name (the message lists the accepted ones) and for "all" (use make_trackers).
std::unique_ptr<GeneralTracker> make_tracker(const std::string& name,
                                             const std::string& logging_dir);

/// Built-in trackers for `names` ("all" = every built-in), duplicates removed, in the order
/// given. Throws accel::Error for an unknown name.
std::vector<std::unique_ptr<GeneralTracker>> make_trackers(const std::vector<std::string>& names,
                                                           const std::string& logging_dir);

/// The trackers of one run, as Accelerate's `init_trackers` / `log` / `end_training` see them.
/// On a process that is not the main one, trackers with main_process_only() (all built-ins) are
/// never started, so nothing is written and no file or folder is created. Argument checks
/// (order of calls, reserved keys) run on every rank, so misuse fails everywhere alike.
/// Thread-safe: calls are serialised by an internal mutex.
class Trackers {
 public:
  /// `is_main_process`: whether this process is the main one (rank 0), e.g. from the
  /// Accelerator's process state.
  explicit Trackers(bool is_main_process);
  /// Built-in trackers by name (see make_trackers) writing under `logging_dir`.
  Trackers(bool is_main_process, const std::vector<std::string>& names,
           const std::string& logging_dir);
  /// Calls end() (errors are swallowed in the destructor).
  ~Trackers();
  Trackers(const Trackers&) = delete;
  Trackers& operator=(const Trackers&) = delete;

  /// Adds a tracker (built-in or user-defined). Only before init(); names must be unique.
  void add(std::unique_ptr<GeneralTracker> tracker);
  /// Starts every tracker that runs on this process with run name `project` (non-empty, no
  /// '/' or "..") and hyper-parameters `config`. Once per run.
  void init(const std::string& project, const Values& config = {});
  /// Logs `values` at `step` to every started tracker. Requires init() and no end() yet; keys
  /// must be non-empty and not "step" or "wall_time" (those columns are the trackers' own).
  void log(const Values& values, std::int64_t step);
  /// Finishes every started tracker. Idempotent.
  void end();

  /// The tracker called `name`, or nullptr (Accelerate's get_tracker).
  GeneralTracker* get(const std::string& name) const;
  /// Number of trackers added (on every rank, started or not).
  std::size_t size() const { return trackers_.size(); }
  bool is_main_process() const { return is_main_process_; }

 private:
  bool runs_here(const GeneralTracker& t) const;
  bool is_main_process_;
  bool started_ = false;
  bool ended_ = false;
  std::vector<std::unique_ptr<GeneralTracker>> trackers_;
  mutable std::mutex mu_;
};

}  // namespace accel::tracking
