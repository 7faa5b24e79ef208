// ProgressBar: tqdm-like progress with rate limiting, terminal and plain modes (see progress.h).
#include "accel/tracking/progress.h"

#include "accel/core/error.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace accel::tracking {

namespace {

std::string format_rate(std::int64_t n, double elapsed, const std::string& unit) {
  char buf[64];
  if (n <= 0 || elapsed <= 0) {
    std::snprintf(buf, sizeof(buf), "?%s/s", unit.c_str());
  } else {
    double rate = static_cast<double>(n) / elapsed;
    if (rate >= 1.0) {
      std::snprintf(buf, sizeof(buf), "%.2f%s/s", rate, unit.c_str());
    } else {
      std::snprintf(buf, sizeof(buf), "%.2fs/%s", 1.0 / rate, unit.c_str());
    }
  }
  return buf;
}

std::string format_number(const Value& v) {
  if (!v.is_double()) return v.to_string();
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.4g", v.to_double());
  return buf;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<long long>(seconds);
  char buf[64];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%02lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

ProgressBar::ProgressBar(std::int64_t total, std::string description, ProgressBarOptions options)
    : total_(total), description_(std::move(description)), options_(std::move(options)) {
  ACCEL_CHECK(total_ >= 0, "ProgressBar: total must be >= 0 (0 = unknown), got ", total_);
  ACCEL_CHECK(options_.min_redraw_interval_s() >= 0 && options_.plain_every_s() >= 0 &&
                  options_.plain_every_percent() > 0,
              "ProgressBar: min_redraw_interval_s and plain_every_s must be >= 0 and "
              "plain_every_percent > 0 (got ", options_.min_redraw_interval_s(), ", ",
              options_.plain_every_s(), ", ", options_.plain_every_percent(), ")");
  if (!options_.enabled()) {
    closed_ = true;
    return;
  }
  ACCEL_CHECK(options_.stream() != nullptr, "ProgressBar: the output stream is null");
  int fd = fileno(options_.stream());
  terminal_ = options_.terminal().has_value() ? *options_.terminal() : (fd >= 0 && isatty(fd));
  width_ = options_.ncols();
  if (width_ <= 0) {
    width_ = 80;
    struct winsize ws {};
    if (terminal_ && fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
      width_ = ws.ws_col;
    }
  }
  start_ = now();
  last_draw_ = start_;
  next_plain_percent_ = options_.plain_every_percent();
  std::lock_guard<std::mutex> lock(mu_);
  if (terminal_) draw_locked(start_, false);
}

ProgressBar::~ProgressBar() {
  try {
    close();
  } catch (...) {
  }
}

double ProgressBar::now() const {
  if (options_.clock()) return options_.clock()();
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

void ProgressBar::update(std::int64_t n) {
  ACCEL_CHECK(n >= 0, "ProgressBar::update: n must be >= 0, got ", n);
  std::lock_guard<std::mutex> lock(mu_);
  n_ += n;
  if (closed_) return;
  double t = now();
  bool done = total_ > 0 && n_ >= total_;
  if (terminal_) {
    if (done || t - last_draw_ >= options_.min_redraw_interval_s()) draw_locked(t, false);
    return;
  }
  // Plain mode: a line per plain_every_percent done, or per plain_every_s seconds.
  bool print = false;
  if (total_ > 0) {
    double pct = 100.0 * static_cast<double>(n_) / static_cast<double>(total_);
    if (pct >= next_plain_percent_ && !done) {
      print = true;
      double step = options_.plain_every_percent();
      next_plain_percent_ = (std::floor(pct / step) + 1) * step;
    }
  }
  if (options_.plain_every_s() > 0 && t - last_draw_ >= options_.plain_every_s() && !done) {
    print = true;
  }
  if (print) draw_locked(t, false);
}

void ProgressBar::set_postfix(std::string postfix) {
  std::lock_guard<std::mutex> lock(mu_);
  postfix_ = std::move(postfix);
}

void ProgressBar::set_postfix(const Values& values) {
  std::string s;
  for (const auto& [k, v] : values) {
    if (!s.empty()) s += ", ";
    s += k + "=" + format_number(v);
  }
  set_postfix(std::move(s));
}

void ProgressBar::set_description(std::string description) {
  std::lock_guard<std::mutex> lock(mu_);
  description_ = std::move(description);
}

void ProgressBar::close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  draw_locked(now(), true);
  closed_ = true;
}

std::int64_t ProgressBar::n() const {
  std::lock_guard<std::mutex> lock(mu_);
  return n_;
}

std::string ProgressBar::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  return render_locked(now(), terminal_ ? width_ : 0);
}

// width > 0: terminal line with a bar, at most width - 1 characters; width 0: plain line.
std::string ProgressBar::render_locked(double t, int width) const {
  double elapsed = std::max(0.0, t - start_);
  std::string prefix = description_.empty() ? "" : description_ + ": ";
  std::string rate = format_rate(n_, elapsed, options_.unit());
  std::string post;
  if (!postfix_.empty()) {
    post = ", ";
    post += postfix_;
  }
  if (total_ <= 0) {
    return prefix + std::to_string(n_) + options_.unit() + " [" + format_duration(elapsed) +
           ", " + rate + post + "]";
  }
  double frac = std::min(1.0, static_cast<double>(n_) / static_cast<double>(total_));
  double eta = (n_ > 0 && elapsed > 0)
                   ? static_cast<double>(std::max<std::int64_t>(0, total_ - n_)) * elapsed /
                         static_cast<double>(n_)
                   : -1.0;
  char pct[16];
  std::snprintf(pct, sizeof(pct), "%3d%%", static_cast<int>(std::floor(frac * 100.0)));
  std::string counts = std::to_string(n_) + "/" + std::to_string(total_);
  // Built with append: GCC 12 warns falsely on `"[" + std::string&&` (-Wstringop-overflow).
  std::string times = "[";
  times += format_duration(elapsed);
  times += '<';
  times += format_duration(eta);
  times += ", ";
  times += rate;
  times += post;
  times += ']';
  if (width <= 0) return prefix + pct + " " + counts + " " + times;
  std::string left = prefix + pct + "|";
  std::string right = "| ";
  right += counts;
  right += ' ';
  right += times;
  int bar_w = width - 1 - static_cast<int>(left.size() + right.size());
  std::string line;
  if (bar_w >= 3) {
    int filled = static_cast<int>(std::floor(frac * bar_w));
    line = left + std::string(filled, '#') + std::string(bar_w - filled, ' ') + right;
  } else {
    line = prefix + pct + " " + counts + " " + times;
  }
  // A line that wraps cannot be redrawn with '\r': cut it to the terminal's width.
  if (static_cast<int>(line.size()) > width - 1) line.resize(std::max(0, width - 1));
  return line;
}

void ProgressBar::draw_locked(double t, bool final) {
  std::FILE* f = options_.stream();
  if (terminal_) {
    std::string line = render_locked(t, width_);
    std::string out = "\r" + line;
    if (line.size() < last_len_) out += std::string(last_len_ - line.size(), ' ');
    if (final) out += "\n";
    last_len_ = line.size();
    std::fwrite(out.data(), 1, out.size(), f);
  } else {
    std::string line = render_locked(t, 0) + "\n";
    std::fwrite(line.data(), 1, line.size(), f);
  }
  std::fflush(f);
  last_draw_ = t;
}

}  // namespace accel::tracking
