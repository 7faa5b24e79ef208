// ProgressBar on a pseudo-terminal (one line redrawn with '\r', rate-limited) and on a pipe
// (plain newline-terminated lines at 10% steps and a final line), with an injected clock.
#include "accel/tracking/progress.h"

#include "accel/core/error.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace accel::tracking {
namespace {

// A pseudo-terminal: `stream` writes to its slave side, read() drains the master side.
class Pty {
 public:
  Pty() {
    master_ = posix_openpt(O_RDWR | O_NOCTTY);
    if (master_ < 0 || grantpt(master_) != 0 || unlockpt(master_) != 0) return;
    const char* name = ptsname(master_);
    if (name == nullptr) return;
    int slave = open(name, O_RDWR | O_NOCTTY);
    if (slave < 0) return;
    termios tio{};
    tcgetattr(slave, &tio);
    cfmakeraw(&tio);  // no "\n" -> "\r\n" translation: read back exactly what was written
    tcsetattr(slave, TCSANOW, &tio);
    stream = fdopen(slave, "w");
    fcntl(master_, F_SETFL, fcntl(master_, F_GETFL) | O_NONBLOCK);
  }
  ~Pty() {
    if (stream) std::fclose(stream);
    if (master_ >= 0) close(master_);
  }
  bool ok() const { return stream != nullptr; }
  // Everything written so far.
  std::string read() {
    std::string out;
    char buf[4096];
    for (;;) {
      pollfd p{master_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) break;
      ssize_t n = ::read(master_, buf, sizeof(buf));
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
  std::FILE* stream = nullptr;

 private:
  int master_ = -1;
};

// A pipe: `stream` is the write end; read() returns what was written (after closing it).
class Pipe {
 public:
  Pipe() {
    int fds[2];
    if (pipe(fds) != 0) return;
    read_fd_ = fds[0];
    stream = fdopen(fds[1], "w");
  }
  ~Pipe() {
    if (stream) std::fclose(stream);
    if (read_fd_ >= 0) close(read_fd_);
  }
  std::string read_all() {
    std::fclose(stream);
    stream = nullptr;
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(read_fd_, buf, sizeof(buf))) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out;
  }
  std::FILE* stream = nullptr;

 private:
  int read_fd_ = -1;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::string rstrip(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.pop_back();
  return s;
}

TEST(ProgressBar, FormatDuration) {
  EXPECT_EQ(format_duration(0), "00:00");
  EXPECT_EQ(format_duration(307.9), "05:07");
  EXPECT_EQ(format_duration(3723), "1:02:03");
  EXPECT_EQ(format_duration(-1), "?");
}

TEST(ProgressBar, TerminalRedrawsOneLineRateLimited) {
  Pty pty;
  ASSERT_TRUE(pty.ok()) << "cannot open a pseudo-terminal";
  double now = 100.0;
  {
    ProgressBar bar(100, "train",
                    ProgressBarOptions().stream(pty.stream).ncols(100).clock([&] { return now; }));
    EXPECT_TRUE(bar.terminal());  // isatty() on the pty
    now = 100.05;
    bar.update(1);  // too soon after the first draw: no redraw
    now = 100.2;
    bar.update(1);  // redraw
    now = 100.25;
    bar.update(3);  // too soon
    bar.set_postfix(Values{{"loss", 0.123456}, {"lr", 5e-5}});
    now = 101.0;
    bar.update(5);  // redraw: 10/100 after 1 s
    now = 110.0;
    bar.update(90);  // done: drawn at once
    now = 110.01;
    bar.close();
    bar.close();  // idempotent
  }
  std::string out = pty.read();
  // Redraws: initial, at 0.2 s, at 1 s, at completion, final on close; then one newline.
  auto draws = split(out, '\r');
  ASSERT_EQ(draws.size(), 6u) << out;
  EXPECT_EQ(draws[0], "");
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_EQ(out.back(), '\n');
  for (std::size_t i = 1; i < draws.size(); ++i) EXPECT_EQ(rstrip(draws[i]).size(), 99u) << draws[i];
  EXPECT_EQ(rstrip(draws[1]),
            "train:   0%|                                                               | 0/100 [00:00<?, ?it/s]");
  EXPECT_EQ(rstrip(draws[2]),
            "train:   2%|#                                                      | 2/100 [00:00<00:09, 10.00it/s]");
  EXPECT_EQ(rstrip(draws[3]),
            "train:  10%|###                            | 10/100 [00:01<00:09, 10.00it/s, loss=0.1235, lr=5e-05]");
  EXPECT_EQ(rstrip(draws[4]),
            "train: 100%|##############################| 100/100 [00:10<00:00, 10.00it/s, loss=0.1235, lr=5e-05]");
  EXPECT_EQ(rstrip(draws[5]),
            "train: 100%|###############################| 100/100 [00:10<00:00, 9.99it/s, loss=0.1235, lr=5e-05]");
}

TEST(ProgressBar, PipePrintsPlainLinesAtTenPercentSteps) {
  Pipe pipe;
  ASSERT_NE(pipe.stream, nullptr);
  double now = 0.0;
  {
    ProgressBar bar(50, "eval", ProgressBarOptions().stream(pipe.stream).clock([&] { return now; }));
    EXPECT_FALSE(bar.terminal());  // a pipe is not a terminal
    for (int i = 0; i < 50; ++i) {
      now += 0.5;
      bar.update(1);
      if (i == 23) bar.set_postfix("loss=0.5");
    }
    bar.close();
  }
  std::string out = pipe.read_all();
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  ASSERT_EQ(out.back(), '\n');
  auto lines = split(out.substr(0, out.size() - 1), '\n');
  // 10%, 20%, ..., 90%, then the final line.
  ASSERT_EQ(lines.size(), 10u) << out;
  EXPECT_EQ(lines[0], "eval:  10% 5/50 [00:02<00:22, 2.00it/s]");
  EXPECT_EQ(lines[4], "eval:  50% 25/50 [00:12<00:12, 2.00it/s, loss=0.5]");
  EXPECT_EQ(lines[8], "eval:  90% 45/50 [00:22<00:02, 2.00it/s, loss=0.5]");
  EXPECT_EQ(lines[9], "eval: 100% 50/50 [00:25<00:00, 2.00it/s, loss=0.5]");
}

TEST(ProgressBar, PipeUnknownTotalPrintsByTime) {
  Pipe pipe;
  double now = 0.0;
  {
    ProgressBar bar(0, "", ProgressBarOptions()
                               .stream(pipe.stream)
                               .terminal(false)
                               .plain_every_s(5)
                               .unit("batch")
                               .clock([&] { return now; }));
    for (int i = 0; i < 12; ++i) {
      now += 1.0;
      bar.update(4);
    }
  }  // the destructor closes
  auto lines = split(rstrip(pipe.read_all()), '\n');
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "20batch [00:05, 4.00batch/s]");
  EXPECT_EQ(lines[1], "40batch [00:10, 4.00batch/s]");
  EXPECT_EQ(lines[2], "48batch [00:12, 4.00batch/s]");
}

TEST(ProgressBar, SlowRateShownAsSecondsPerIteration) {
  Pipe pipe;
  double now = 0.0;
  ProgressBar bar(10, "x", ProgressBarOptions().terminal(false).stream(pipe.stream)
                               .plain_every_percent(1000).clock([&] { return now; }));
  now = 4.0;
  bar.update(1);
  EXPECT_EQ(bar.render(), "x:  10% 1/10 [00:04<00:36, 4.00s/it]");
  bar.close();
  EXPECT_EQ(pipe.read_all(), "x:  10% 1/10 [00:04<00:36, 4.00s/it]\n");
}

TEST(ProgressBar, DisabledWritesNothing) {
  Pipe pipe;
  {
    ProgressBar bar(10, "rank 1", ProgressBarOptions().enabled(false).stream(pipe.stream));
    for (int i = 0; i < 10; ++i) bar.update();
    EXPECT_EQ(bar.n(), 10);
    bar.close();
  }
  EXPECT_EQ(pipe.read_all(), "");
}

TEST(ProgressBar, ThreadSafeUpdates) {
  Pipe pipe;
  {
    ProgressBar bar(4000, "mt", ProgressBarOptions().stream(pipe.stream).clock([] { return 1.0; }));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 1000; ++i) bar.update(1);
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(bar.n(), 4000);
  }
  auto out = pipe.read_all();
  auto lines = split(rstrip(out), '\n');
  ASSERT_EQ(lines.size(), 10u) << out;  // 10%..90% and the final line, none torn
  for (const auto& l : lines) EXPECT_EQ(l.rfind("mt: ", 0), 0u) << l;
  EXPECT_EQ(lines.back().rfind("mt: 100% 4000/4000", 0), 0u) << lines.back();
}

TEST(ProgressBar, InvalidArguments) {
  EXPECT_THROW(ProgressBar(-1, "x", ProgressBarOptions().enabled(false)), accel::Error);
  ProgressBar bar(3, "x", ProgressBarOptions().enabled(false));
  EXPECT_THROW(bar.update(-1), accel::Error);
}

}  // namespace
}  // namespace accel::tracking
