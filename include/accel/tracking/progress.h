// Progress bars for long loops (tqdm's shape): count/total, percentage, rate, elapsed, ETA and
// a postfix such as the running loss. One redrawn line on a terminal, occasional plain lines in
// a pipe or CI log; meant for the main process only (disable it on the others).
#pragma once

#include "accel/tracking/value.h"

#include <torch/arg.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace accel::tracking {

/// How a ProgressBar draws. Every field has a default; chain the setters:
///   ProgressBarOptions().enabled(acc.is_main_process()).unit("batch")
struct ProgressBarOptions {
  using FilePtr = std::FILE*;  // TORCH_ARG needs a one-token type

  /// Draw at all. Default true; pass false on every process but the main one.
  TORCH_ARG(bool, enabled) = true;
  /// Where to draw. Default stderr. Must stay open until the bar is closed.
  TORCH_ARG(FilePtr, stream) = stderr;
  /// Terminal mode (one line redrawn with '\r') or plain mode (whole lines). Default: unset,
  /// meaning isatty() on the stream's file descriptor decides.
  TORCH_ARG(std::optional<bool>, terminal) = std::nullopt;
  /// Terminal mode: at most one redraw per this many seconds (default 0.1, i.e. 10 per second).
  TORCH_ARG(double, min_redraw_interval_s) = 0.1;
  /// Plain mode: print a line whenever another `plain_every_percent` percent is done (default
  /// 10) ...
  TORCH_ARG(double, plain_every_percent) = 10.0;
  /// ... or when this many seconds passed since the last line (default 60; 0 = never by time).
  TORCH_ARG(double, plain_every_s) = 60.0;
  /// Width of the whole line in terminal mode; 0 (default) asks the terminal, else 80.
  TORCH_ARG(int, ncols) = 0;
  /// The unit after the rate, "it/s" by default.
  TORCH_ARG(std::string, unit) = "it";
  /// Seconds on a monotonic clock. Default: std::chrono::steady_clock. Inject one in tests.
  TORCH_ARG(std::function<double()>, clock) = nullptr;
};

/// A progress bar over `total` steps (0 = unknown total: no percentage or ETA).
/// Thread-safe: update/set_postfix/close may be called from several threads.
/// Draws nothing when options.enabled() is false. The destructor calls close().
class ProgressBar {
 public:
  explicit ProgressBar(std::int64_t total, std::string description = "",
                       ProgressBarOptions options = {});
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Advances the count by `n` (>= 0) and redraws if the rate limit allows.
  void update(std::int64_t n = 1);
  /// Text shown after the rate, e.g. "loss=0.4123"; shown from the next redraw on.
  void set_postfix(std::string postfix);
  /// Postfix from values: "loss=0.4123, lr=5e-05" (doubles with 4 significant digits).
  void set_postfix(const Values& values);
  /// Changes the description (shown from the next redraw on).
  void set_description(std::string description);
  /// Draws the final state (terminal: the line, then a newline; plain: one final line) and
  /// stops drawing. Idempotent.
  void close();

  /// Steps done so far.
  std::int64_t n() const;
  std::int64_t total() const { return total_; }
  /// Whether the bar draws in terminal mode.
  bool terminal() const { return terminal_; }
  /// The text of the bar right now, without '\r' or padding (what the next draw would show).
  std::string render() const;

 private:
  std::string render_locked(double now, int width) const;
  void draw_locked(double now, bool final);
  double now() const;

  std::int64_t total_;
  std::string description_;
  ProgressBarOptions options_;
  bool terminal_ = false;
  int width_ = 80;
  mutable std::mutex mu_;
  std::int64_t n_ = 0;
  std::string postfix_;
  double start_ = 0;
  double last_draw_ = 0;
  double next_plain_percent_ = 0;
  std::size_t last_len_ = 0;
  bool closed_ = false;
};

/// "05:07" for 307 s, "1:02:03" for 3723 s, "?" when negative or not finite.
std::string format_duration(double seconds);

}  // namespace accel::tracking
