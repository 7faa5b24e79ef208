// Rank-aware logging: every line is prefixed `[rank i/N]`; by default only the main process
// prints, with an all-ranks mode and an in-rank-order mode (ranks take turns, separated by
// barriers). The level comes from ACCEL_LOG_LEVEL (debug|info|warning|error, default info).
// Library code logs through this and never writes to std::cout.
#pragma once

#include <c10/util/StringUtil.h>

#include <cstdio>
#include <functional>
#include <mutex>
#include <string>

namespace accel {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

/// Who prints a message.
enum class LogScope {
  kMainProcess,       // global rank 0 only (default)
  kLocalMainProcess,  // local rank 0 of every machine
  kAllRanks,          // every rank, as it comes
  kInOrder,           // every rank, rank 0 first; needs a barrier (set by the Accelerator)
};

/// Parses debug|info|warning|error (case-insensitive); throws accel::Error listing them.
LogLevel parse_log_level(const std::string& s);

class Logger {
 public:
  /// The process-wide logger.
  static Logger& instance();

  /// Sets the identity used in prefixes and for scope decisions.
  void set_rank(int rank, int world_size, int local_rank = -1);
  void set_level(LogLevel level);
  LogLevel level() const { return level_; }
  /// Output stream (default stderr). Tests redirect it.
  void set_stream(std::FILE* out);
  /// Barrier used by LogScope::kInOrder; without one, in-order falls back to all-ranks.
  void set_barrier(std::function<void()> barrier);

  /// Writes one message (may contain newlines; each line gets the prefix).
  void log(LogLevel level, LogScope scope, const std::string& message);

  template <typename... Args>
  void debug(const Args&... args) { log(LogLevel::kDebug, LogScope::kMainProcess, c10::str(args...)); }
  template <typename... Args>
  void info(const Args&... args) { log(LogLevel::kInfo, LogScope::kMainProcess, c10::str(args...)); }
  template <typename... Args>
  void warning(const Args&... args) { log(LogLevel::kWarning, LogScope::kMainProcess, c10::str(args...)); }
  /// Errors are printed by every rank: the failing rank may not be rank 0.
  template <typename... Args>
  void error(const Args&... args) { log(LogLevel::kError, LogScope::kAllRanks, c10::str(args...)); }

 private:
  Logger();
  void write_locked(LogLevel level, const std::string& message);

  int rank_ = 0;
  int world_size_ = 1;
  int local_rank_ = 0;
  LogLevel level_ = LogLevel::kInfo;
  std::FILE* out_ = stderr;
  std::function<void()> barrier_;
  std::mutex mu_;
};

/// Shorthand for Logger::instance().
inline Logger& logger() { return Logger::instance(); }

}  // namespace accel
