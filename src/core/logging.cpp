#include "accel/core/logging.h"

#include "accel/core/env.h"
#include "accel/core/error.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace accel {

LogLevel parse_log_level(const std::string& s) {
  std::string v = s;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v == "debug") return LogLevel::kDebug;
  if (v == "info") return LogLevel::kInfo;
  if (v == "warning" || v == "warn") return LogLevel::kWarning;
  if (v == "error") return LogLevel::kError;
  ACCEL_CHECK(false, "log level '", s, "' is not known; accepted: debug, info, warning, error.");
  return LogLevel::kInfo;
}

Logger& Logger::instance() {
  static Logger logger;
  return logger;
}

Logger::Logger() {
  // The environment decides the initial identity and level; the Accelerator refines it.
  try {
    ProcessEnv env = read_process_env(current_environment());
    rank_ = env.rank;
    world_size_ = env.world_size;
    local_rank_ = env.local_rank;
    if (env.log_level) level_ = parse_log_level(*env.log_level);
  } catch (const std::exception&) {
    // A malformed environment is reported by the Accelerator, not by the logger.
  }
}

void Logger::set_rank(int rank, int world_size, int local_rank) {
  std::lock_guard<std::mutex> g(mu_);
  rank_ = rank;
  world_size_ = world_size;
  local_rank_ = local_rank < 0 ? rank : local_rank;
}

void Logger::set_level(LogLevel level) {
  std::lock_guard<std::mutex> g(mu_);
  level_ = level;
}

void Logger::set_stream(std::FILE* out) {
  std::lock_guard<std::mutex> g(mu_);
  out_ = out;
}

void Logger::set_barrier(std::function<void()> barrier) {
  std::lock_guard<std::mutex> g(mu_);
  barrier_ = std::move(barrier);
}

void Logger::write_locked(LogLevel level, const std::string& message) {
  const char* tag = level == LogLevel::kWarning ? "WARNING: "
                    : level == LogLevel::kError ? "ERROR: "
                    : level == LogLevel::kDebug ? "DEBUG: "
                                                : "";
  std::string prefix = c10::str("[rank ", rank_, "/", world_size_, "] ", tag);
  std::string out;
  size_t start = 0;
  while (start <= message.size()) {
    size_t nl = message.find('\n', start);
    if (nl == std::string::npos) nl = message.size();
    out += prefix;
    out.append(message, start, nl - start);
    out += '\n';
    start = nl + 1;
    if (nl == message.size()) break;
  }
  std::fwrite(out.data(), 1, out.size(), out_);
  std::fflush(out_);
}

void Logger::log(LogLevel level, LogScope scope, const std::string& message) {
  if (level < level_) return;
  if (scope == LogScope::kInOrder) {
    std::function<void()> barrier;
    {
      std::lock_guard<std::mutex> g(mu_);
      barrier = barrier_;
    }
    if (!barrier || world_size_ == 1) {
      std::lock_guard<std::mutex> g(mu_);
      write_locked(level, message);
      return;
    }
    for (int r = 0; r < world_size_; ++r) {
      if (r == rank_) {
        std::lock_guard<std::mutex> g(mu_);
        write_locked(level, message);
      }
      barrier();
    }
    return;
  }
  std::lock_guard<std::mutex> g(mu_);
  if (scope == LogScope::kMainProcess && rank_ != 0) return;
  if (scope == LogScope::kLocalMainProcess && local_rank_ != 0) return;
  write_locked(level, message);
}

}  // namespace accel
