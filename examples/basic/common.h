// Shared by the two versions of the basic example's loop (train_plain.cpp, train_accel.cpp).
#pragma once

#include "toy_task.h"

#include <chrono>
#include <cstdio>
#include <string>

namespace basic {

struct Args {
  int epochs = 3;
  int64_t batch_size = 64;
  int64_t samples = 8192;
  bool quiet = false;
};

struct Result {
  double final_loss = 0;
  double samples_per_s = 0;
  double step_ms = 0;
};

Result train_plain(const Args& args);
Result train_accel(const Args& args);

using Clock = std::chrono::steady_clock;
inline double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace basic
