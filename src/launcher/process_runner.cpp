// The local worker group of `accel launch`: fork/exec, output relay with rank prefixes, signal
// forwarding, failure detection, stop (SIGTERM -> SIGKILL) and restarts. Single-threaded: one
// poll() loop over the workers' pipes and a self-pipe written by the signal handlers.
#include "accel/launcher/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <memory>

namespace accel::launcher {
namespace {

using Clock = std::chrono::steady_clock;

// Write end of the self-pipe the signal handlers write the signal number to (-1: none).
volatile sig_atomic_t g_wake_fd = -1;

extern "C" void accel_launcher_on_signal(int sig) {
  const int saved = errno;
  const int fd = g_wake_fd;
  if (fd >= 0) {
    const unsigned char b = static_cast<unsigned char>(sig);
    [[maybe_unused]] ssize_t n = ::write(fd, &b, 1);
  }
  errno = saved;
}

// Installs the launcher's handlers for the duration of a run and restores the previous ones.
class SignalScope {
 public:
  SignalScope() {
    if (::pipe2(fds_, O_CLOEXEC | O_NONBLOCK) != 0)
      throw std::runtime_error(std::string("pipe2 failed: ") + std::strerror(errno));
    g_wake_fd = fds_[1];
    struct sigaction sa {};
    sa.sa_handler = accel_launcher_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    ::sigaction(SIGCHLD, &sa, &old_chld_);
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    ::sigaction(SIGPIPE, &ign, &old_pipe_);
  }
  ~SignalScope() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::sigaction(SIGCHLD, &old_chld_, nullptr);
    ::sigaction(SIGPIPE, &old_pipe_, nullptr);
    g_wake_fd = -1;
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;
  int read_fd() const { return fds_[0]; }

 private:
  int fds_[2] = {-1, -1};
  struct sigaction old_int_ {
  }, old_term_{}, old_chld_{}, old_pipe_{};
};

// Closes every descriptor >= `first` except `keep`. Async-signal-safe (runs between fork and exec).
void close_fds_from(int first, int keep) {
#ifdef SYS_close_range
  const bool ok = (keep <= first || ::syscall(SYS_close_range, first, keep - 1, 0) == 0) &&
                  ::syscall(SYS_close_range, std::max(first, keep + 1), ~0U, 0) == 0;
  if (ok) return;
#endif
  rlimit lim{};
  int max_fd = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
    max_fd = static_cast<int>(std::min<rlim_t>(lim.rlim_cur, 1 << 20));
  for (int fd = first; fd < max_fd; ++fd)
    if (fd != keep) ::close(fd);
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Writes everything, retrying on EINTR and waiting on EAGAIN; gives up on other errors (a
// closed terminal must not stop the launcher from supervising its workers).
void write_all(int fd, const char* p, size_t n) {
  int stalls = 0;
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && stalls++ < 50) {
        pollfd pfd{fd, POLLOUT, 0};
        ::poll(&pfd, 1, 100);
        continue;
      }
      return;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void write_all(int fd, const std::string& s) {
  write_all(fd, s.data(), s.size());
}

const char* signal_abbrev(int sig) {
  switch (sig) {
    case SIGHUP:
      return "SIGHUP";
    case SIGINT:
      return "SIGINT";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGILL:
      return "SIGILL";
    case SIGTRAP:
      return "SIGTRAP";
    case SIGABRT:
      return "SIGABRT";
    case SIGBUS:
      return "SIGBUS";
    case SIGFPE:
      return "SIGFPE";
    case SIGKILL:
      return "SIGKILL";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGSEGV:
      return "SIGSEGV";
    case SIGUSR2:
      return "SIGUSR2";
    case SIGPIPE:
      return "SIGPIPE";
    case SIGALRM:
      return "SIGALRM";
    case SIGTERM:
      return "SIGTERM";
    case SIGXCPU:
      return "SIGXCPU";
    case SIGXFSZ:
      return "SIGXFSZ";
    default:
      return "signal";
  }
}

void mkdirs(const std::string& path) {
  std::string cur;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    cur = path.substr(0, slash == std::string::npos ? path.size() : slash);
    if (!cur.empty() && ::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
      throw UsageError("cannot create log directory " + cur + ": " + std::strerror(errno));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
}

constexpr size_t kMaxLine = 64 * 1024;  // a longer line without a newline is emitted in pieces

// One of a worker's output pipes. A line holding '\r' is a progress line (a bar redrawn in
// place): its visible text is the last segment between carriage returns that is not empty.
struct Stream {
  int fd = -1;  // read end of the worker's pipe; -1 after EOF
  bool is_err = false;
  std::string partial;                // the current line since its start, or since its last '\r'
  bool progress = false;              // the current line has had a '\r'
  std::string segment;                // progress: the last complete non-empty segment
  Clock::time_point last_snapshot{};  // progress on a pipe: when it was last written out ...
  std::string snapshot;               // ... and what was written
  int log_fd = -1;
};

// What the launcher's own stdout or stderr shows. On a terminal the local main process's
// progress line is drawn in place (no newline); every other line is written above it.
struct Display {
  bool tty = false;
  size_t columns = 0;            // terminal width; 0: unknown (no cut)
  const Stream* live = nullptr;  // the stream whose progress line is shown, or none
  int live_fd = -1;
  std::string live_text;  // as shown, prefix included
};

// Columns a UTF-8 string takes (one per code point; wide characters are rare in progress bars).
size_t columns_of(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// `s` cut to at most `cols` code points (at a code point boundary).
std::string cut_to_columns(const std::string& s, size_t cols) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && n++ == cols) return s.substr(0, i);
  }
  return s;
}

struct Worker {
  int local_rank = 0;
  int rank = 0;
  pid_t pid = -1;
  bool running = false;
  int exec_errno = 0;  // set when execve failed in the child
  Stream out, err;
  std::deque<std::string> tail;  // last stderr lines
};

class Runner {
 public:
  Runner(const LaunchConfig& c, const RunOptions& o)
      : c_(c), o_(o), prefix_(c.num_processes > 1 && !c.quiet) {
    for (Display* d : {&out_display_, &err_display_}) {
      const int fd = d == &out_display_ ? o.out_fd : o.err_fd;
      d->tty = o.terminal ? *o.terminal : ::isatty(fd) == 1;
      winsize ws{};
      d->columns = o.terminal_columns > 0                          ? static_cast<size_t>(o.terminal_columns)
                   : (d->tty && ::ioctl(fd, TIOCGWINSZ, &ws) == 0) ? ws.ws_col
                                                                   : 0;
    }
    // stdout and stderr on the same terminal share one screen line for progress.
    struct stat so {
    }, se{};
    shared_display_ = out_display_.tty && err_display_.tty &&
                      (o.terminal || (::fstat(o.out_fd, &so) == 0 && ::fstat(o.err_fd, &se) == 0 &&
                                      so.st_rdev == se.st_rdev));
    parent_env_ = o.parent_env ? *o.parent_env : current_env();
    cpus_ = o.cpu_count > 0 ? o.cpu_count : available_cpu_count();
    const auto path = parent_env_.find("PATH");
    program_path_ = find_program(c.program, path == parent_env_.end() ? "" : path->second);
    if (program_path_.empty())
      throw UsageError("program '" + c.program + "' was not found on PATH. HINT: give its path, e.g. ./" +
                       c.program);
  }

  LaunchResult run() {
    SignalScope signals;
    wake_fd_ = signals.read_fd();
    try {
      return run_attempts();
    } catch (...) {
      // Never leave workers behind, whatever went wrong (a throwing callback, fork failure, ...).
      for (Worker& w : workers_) {
        send(w, SIGKILL);
        if (w.running) {
          while (::waitpid(w.pid, nullptr, 0) < 0 && errno == EINTR) {
          }
          w.running = false;
        }
      }
      close_group();
      throw;
    }
  }

 private:
  LaunchResult run_attempts() {
    LaunchResult result;
    for (int attempt = 0;; ++attempt) {
      start_group(attempt, result);
      monitor();
      close_group();
      result.exits = exits_;
      if (interrupted_ != 0) {
        result.interrupted_by = interrupted_;
        result.exit_code = 128 + interrupted_;
        result.failure = failure_;
        result.message = "accel launch: received " + std::string(signal_abbrev(interrupted_)) +
                         "; stopped all " + std::to_string(workers_.size()) +
                         " worker(s) and exiting with code " + std::to_string(result.exit_code) + "\n";
        break;
      }
      if (!failure_) {
        result.exit_code = 0;
        result.failure.reset();
        break;
      }
      result.failure = failure_;
      if (exec_failed_) {
        result.exit_code = failure_->exit_code;
        result.message =
            "accel launch: cannot execute '" + program_path_ + "': " + std::strerror(exec_failed_) + "\n";
        break;
      }
      if (attempt < c_.max_restarts) {
        ++result.restarts;
        note("accel launch: rank " + std::to_string(failure_->rank) + " failed (" + describe_exit(*failure_) +
             "); restarting all " + std::to_string(workers_.size()) + " local worker(s) (restart " +
             std::to_string(result.restarts) + " of " + std::to_string(c_.max_restarts) + ")\n");
        continue;
      }
      result.exit_code = failure_->exit_code;
      result.message = format_failure(*failure_, result.restarts);
      break;
    }
    if (!result.message.empty()) write_all(o_.err_fd, result.message);
    return result;
  }

  void note(const std::string& s) {
    if (!c_.quiet) write_all(o_.err_fd, s);
  }

  void start_group(int attempt, LaunchResult& result) {
    workers_.clear();
    exits_.clear();
    failure_.reset();
    interrupted_ = 0;
    exec_failed_ = 0;
    stopping_ = false;
    kill_sent_ = false;
    const int local = c_.local_world_size();
    workers_.resize(static_cast<size_t>(local));
    std::string log_dir;
    if (!c_.log_dir.empty()) {
      log_dir = c_.log_dir + "/attempt_" + std::to_string(attempt);
      mkdirs(log_dir);
    }
    for (int i = 0; i < local; ++i) {
      Worker& w = workers_[static_cast<size_t>(i)];
      w.local_rank = i;
      w.rank = c_.machine_rank * local + i;
      w.out.is_err = false;
      w.err.is_err = true;
      if (!log_dir.empty()) {
        const std::string base = log_dir + "/rank_" + std::to_string(w.rank);
        w.out.log_fd = open_log(base + ".stdout.log");
        w.err.log_fd = open_log(base + ".stderr.log");
      }
    }
    for (Worker& w : workers_) {
      spawn(w, attempt);
      result.worker_pids.push_back(w.pid);
      if (o_.on_worker_started) o_.on_worker_started(w.local_rank, w.pid);
      if (w.exec_errno != 0) break;  // the others would fail the same way
    }
  }

  int open_log(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw UsageError("cannot create log file " + path + ": " + std::strerror(errno));
    return fd;
  }

  void spawn(Worker& w, int attempt) {
    // Everything the child needs is prepared before fork: it only makes async-signal-safe calls.
    const std::vector<std::string> env =
        merge_env(parent_env_, worker_env(c_, w.local_rank, attempt, cpus_, parent_env_));
    std::vector<char*> envp;
    for (const auto& s : env) envp.push_back(const_cast<char*>(s.c_str()));
    envp.push_back(nullptr);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(c_.program.c_str()));
    for (const auto& s : c_.program_args) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);

    int out[2], err[2], status_pipe[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw_errno("pipe2");
    if (::pipe2(err, O_CLOEXEC) != 0) {
      ::close(out[0]), ::close(out[1]);
      throw_errno("pipe2");
    }
    if (::pipe2(status_pipe, O_CLOEXEC) != 0) {
      ::close(out[0]), ::close(out[1]), ::close(err[0]), ::close(err[1]);
      throw_errno("pipe2");
    }
    const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const pid_t parent = ::getpid();
    const char* path = program_path_.c_str();

    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Child.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);  // the launcher died before prctl took effect
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      sigemptyset(&dfl.sa_mask);
      ::sigaction(SIGINT, &dfl, nullptr);
      ::sigaction(SIGTERM, &dfl, nullptr);
      ::sigaction(SIGCHLD, &dfl, nullptr);
      ::sigaction(SIGPIPE, &dfl, nullptr);
      ::sigprocmask(SIG_SETMASK, &old, nullptr);
      if (devnull >= 0) ::dup2(devnull, 0);
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      // Like Python's Popen(close_fds=True): the worker gets stdin/stdout/stderr only, not
      // descriptors the launcher's own caller leaked without O_CLOEXEC.
      close_fds_from(3, status_pipe[1]);
      ::execve(path, argv.data(), envp.data());
      const int e = errno;
      [[maybe_unused]] ssize_t n = ::write(status_pipe[1], &e, sizeof(e));
      ::_exit(e == ENOENT ? 127 : 126);
    }
    const int fork_errno = errno;
    if (pid > 0) ::setpgid(pid, pid);  // also in the parent, so killpg works at once
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::close(out[1]);
    ::close(err[1]);
    ::close(status_pipe[1]);
    if (devnull >= 0) ::close(devnull);
    if (pid < 0) {
      ::close(out[0]), ::close(err[0]), ::close(status_pipe[0]);
      errno = fork_errno;
      throw_errno("fork");
    }
    // Wait for exec: the status pipe closes on success (O_CLOEXEC) or carries errno.
    int e = 0;
    ssize_t n;
    do {
      n = ::read(status_pipe[0], &e, sizeof(e));
    } while (n < 0 && errno == EINTR);
    ::close(status_pipe[0]);
    w.pid = pid;
    w.running = true;
    w.exec_errno = n == static_cast<ssize_t>(sizeof(e)) ? e : 0;
    w.out.fd = out[0];
    w.err.fd = err[0];
    ::fcntl(out[0], F_SETFL, ::fcntl(out[0], F_GETFL) | O_NONBLOCK);
    ::fcntl(err[0], F_SETFL, ::fcntl(err[0], F_GETFL) | O_NONBLOCK);
  }

  [[noreturn]] static void throw_errno(const char* what) {
    throw std::runtime_error(std::string("accel launch: ") + what + " failed: " + std::strerror(errno));
  }

  // ---- output ------------------------------------------------------------------------------

  // The launcher's "[rank i] " prefix, unless the line already starts with the library logger's
  // "[rank i/N]" for the same rank (one rank prefix per line).
  std::string prefixed(const Worker& w, const std::string& text) const {
    const std::string own = "[rank " + std::to_string(w.rank) + "/";
    if (text.compare(0, own.size(), own) == 0) return text;
    return "[rank " + std::to_string(w.rank) + "] " + text;
  }

  void add_tail(Worker& w, std::string line) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    w.tail.push_back(std::move(line));
    while (w.tail.size() > static_cast<size_t>(kFailureTailLines)) w.tail.pop_front();
  }

  Display& display_for(const Stream& s) { return s.is_err && !shared_display_ ? err_display_ : out_display_; }

  int fd_for(const Stream& s) const { return s.is_err ? o_.err_fd : o_.out_fd; }

  std::string fit(const Display& d, const std::string& text) const {
    return d.columns > 1 ? cut_to_columns(text, d.columns - 1) : text;
  }

  // Writes a whole line (ending in '\n'); a progress line shown in place is moved below it.
  void put_line(const Stream& s, const std::string& line) {
    Display& d = display_for(s);
    if (d.live == nullptr) {
      write_all(fd_for(s), line);
      return;
    }
    // Built by appending: GCC 12 warns falsely (-Wrestrict) on "\r" + std::string(n, ' ') here.
    std::string clear(1, '\r');
    clear.append(columns_of(d.live_text), ' ');
    clear.push_back('\r');
    write_all(d.live_fd, clear);
    write_all(fd_for(s), line);
    write_all(d.live_fd, "\r" + d.live_text);
  }

  // Draws the progress text of `s` in place: "\r[rank i] text", padded over a longer previous one.
  void show_live(const Worker& w, const Stream& s, const std::string& text) {
    Display& d = display_for(s);
    if (d.live != nullptr && d.live != &s) end_live(d);  // another stream's bar stays as a line
    const std::string shown = fit(d, prefixed(w, text));
    if (d.live == &s && shown == d.live_text) return;
    const size_t before = d.live != nullptr ? columns_of(d.live_text) : 0;
    const size_t now = columns_of(shown);
    write_all(fd_for(s), "\r" + shown + std::string(before > now ? before - now : 0, ' '));
    d.live = &s;
    d.live_fd = fd_for(s);
    d.live_text = shown;
  }

  // Ends the line of the progress text shown in place (it stays on screen as it is).
  void end_live(Display& d) {
    if (d.live == nullptr) return;
    write_all(d.live_fd, "\n");
    d.live = nullptr;
    d.live_text.clear();
  }

  bool shows_live_progress(const Worker& w, const Stream& s) {
    return prefix_ && w.local_rank == 0 && display_for(s).tty;
  }

  // A line ended ('\n', or forced at EOF / kMaxLine): a normal line, or the final state of a
  // progress line, which stays as one line.
  void end_line(Worker& w, Stream& s) {
    const std::string text = s.progress ? (s.partial.empty() ? s.segment : s.partial) : s.partial;
    if (s.is_err) add_tail(w, text);
    if (prefix_) {
      Display& d = display_for(s);
      if (s.progress && d.live == &s) {
        show_live(w, s, text);
        end_live(d);
      } else if (s.progress && text == s.snapshot) {
        // already written as the last snapshot
      } else {
        put_line(s, prefixed(w, text) + "\n");
      }
    }
    s.partial.clear();
    s.segment.clear();
    s.snapshot.clear();
    s.progress = false;
  }

  // After new data: the running progress line of `s`, if any, is shown. On a terminal the local
  // main process's bar is redrawn in place; on a pipe or file its last complete state is written
  // as a line at most every progress_interval_s (the final state always is, by end_line).
  void show_progress(Worker& w, Stream& s) {
    if (!s.progress || !prefix_) return;
    if (shows_live_progress(w, s)) {
      const std::string& text = s.partial.empty() ? s.segment : s.partial;
      if (!text.empty()) show_live(w, s, text);
      return;
    }
    if (display_for(s).tty || w.local_rank != 0 || s.segment.empty() || s.segment == s.snapshot) return;
    const auto now = Clock::now();
    if (std::chrono::duration<double>(now - s.last_snapshot).count() >= o_.progress_interval_s) {
      put_line(s, prefixed(w, s.segment) + "\n");
      s.last_snapshot = now;
      s.snapshot = s.segment;
    }
  }

  // Splits new bytes into lines ('\n') and progress segments ('\r').
  void consume(Worker& w, Stream& s, const char* p, size_t n) {
    size_t start = 0;
    for (size_t i = 0; i < n; ++i) {
      if (p[i] != '\n' && p[i] != '\r') continue;
      s.partial.append(p + start, i - start);
      start = i + 1;
      if (p[i] == '\n') {
        end_line(w, s);
      } else {
        if (!s.partial.empty()) s.segment = std::move(s.partial);
        s.partial.clear();
        if (!s.progress) {
          s.progress = true;
          s.last_snapshot = Clock::now();
        }
      }
    }
    s.partial.append(p + start, n - start);
    if (s.partial.size() >= kMaxLine) end_line(w, s);  // a very long line goes out in pieces
    show_progress(w, s);
  }

  void on_data(Worker& w, Stream& s, const char* p, size_t n) {
    if (s.log_fd >= 0) write_all(s.log_fd, p, n);
    if (!prefix_) write_all(fd_for(s), p, n);  // raw, as it comes
    if (prefix_ || s.is_err) {
      consume(w, s, p, n);
    } else {
      s.partial.clear();
    }
  }

  // Reads what is available; returns at EAGAIN, closes the stream at EOF or error.
  void read_stream(Worker& w, Stream& s, int max_reads) {
    char buf[65536];
    for (int i = 0; i < max_reads && s.fd >= 0; ++i) {
      const ssize_t n = ::read(s.fd, buf, sizeof(buf));
      if (n > 0) {
        on_data(w, s, buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      finish_stream(w, s);  // EOF or error
    }
  }

  void finish_stream(Worker& w, Stream& s) {
    if (!s.partial.empty() || s.progress) end_line(w, s);
    close_fd(s.fd);
  }

  // ---- supervision -------------------------------------------------------------------------

  void send(Worker& w, int sig) {
    if (w.pid <= 0) return;
    if (::killpg(w.pid, sig) != 0 && w.running) ::kill(w.pid, sig);
  }

  void begin_stop(int sig) {
    stopping_ = true;
    deadline_ = Clock::now() +
                std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c_.grace_period));
    for (Worker& w : workers_) {
      if (!w.running) continue;
      send(w, sig);
      send(w, SIGCONT);  // a stopped worker (SIGSTOP, a debugger's halt) must see the signal too
    }
  }

  void kill_now() {
    kill_sent_ = true;
    for (Worker& w : workers_)
      if (w.running) send(w, SIGKILL);
  }

  WorkerExit make_exit(const Worker& w, int status) const {
    WorkerExit e;
    e.local_rank = w.local_rank;
    e.rank = w.rank;
    e.pid = w.pid;
    if (WIFSIGNALED(status)) {
      e.signal = WTERMSIG(status);
      e.exit_code = 128 + e.signal;
    } else {
      e.exit_code = WEXITSTATUS(status);
    }
    e.stderr_tail.assign(w.tail.begin(), w.tail.end());
    const std::string& rest = w.err.partial.empty() ? w.err.segment : w.err.partial;
    if (!rest.empty()) {
      e.stderr_tail.push_back(rest);
      if (e.stderr_tail.size() > static_cast<size_t>(kFailureTailLines))
        e.stderr_tail.erase(e.stderr_tail.begin());
    }
    return e;
  }

  void reap() {
    for (Worker& w : workers_) {
      if (!w.running) continue;
      int status = 0;
      pid_t r;
      do {
        r = ::waitpid(w.pid, &status, WNOHANG);
      } while (r < 0 && errno == EINTR);
      if (r == 0) continue;
      w.running = false;
      if (r < 0) status = 0;  // ECHILD: someone else reaped it; nothing more to learn
      // Everything it wrote is in the pipes now.
      read_stream(w, w.out, 1024);
      read_stream(w, w.err, 1024);
      const bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
      exits_.push_back(make_exit(w, status));
      if (failed && !stopping_ && !failure_) {
        failure_ = exits_.back();
        if (w.exec_errno != 0) exec_failed_ = w.exec_errno;
        begin_stop(SIGTERM);
      }
    }
  }

  bool any_running() const {
    return std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.running; });
  }

  void handle_wake() {
    unsigned char buf[64];
    ssize_t n;
    while ((n = ::read(wake_fd_, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
      for (ssize_t i = 0; i < n; ++i) {
        const int sig = buf[i];
        if (sig != SIGINT && sig != SIGTERM) continue;  // SIGCHLD only wakes us up
        if (!stopping_) {
          interrupted_ = sig;
          begin_stop(sig);  // forward what we got
        } else if (!kill_sent_) {
          if (interrupted_ == 0 && !failure_) interrupted_ = sig;
          kill_now();  // a second signal: no more waiting
        }
      }
    }
  }

  void monitor() {
    const int interval_ms = std::max(1, static_cast<int>(c_.monitor_interval * 1000.0));
    std::vector<pollfd> fds;
    std::vector<std::pair<Worker*, Stream*>> owners;
    while (any_running()) {
      int timeout = interval_ms;
      if (stopping_ && !kill_sent_) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
        timeout = static_cast<int>(std::clamp<long long>(left, 0, interval_ms));
      }
      fds.clear();
      owners.clear();
      fds.push_back({wake_fd_, POLLIN, 0});
      owners.emplace_back(nullptr, nullptr);
      for (Worker& w : workers_)
        for (Stream* s : {&w.out, &w.err})
          if (s->fd >= 0) {
            fds.push_back({s->fd, POLLIN, 0});
            owners.emplace_back(&w, s);
          }
      const int r = ::poll(fds.data(), fds.size(), timeout);
      if (r > 0) {
        for (size_t i = 1; i < fds.size(); ++i)
          if (fds[i].revents != 0) read_stream(*owners[i].first, *owners[i].second, 4);
        if (fds[0].revents != 0) handle_wake();
      }
      reap();
      if (stopping_ && !kill_sent_ && Clock::now() >= deadline_) kill_now();
    }
    if (stopping_) {
      // Leave nothing behind: the workers' own children share their process groups (and may
      // hold the pipes open).
      for (Worker& w : workers_) send(w, SIGKILL);
    }
    // All workers reaped. Their pipes normally hit EOF at once; a grandchild still holding one
    // gets a short grace before we stop reading.
    const auto drain_end = Clock::now() + std::chrono::milliseconds(200);
    while (true) {
      fds.clear();
      owners.clear();
      for (Worker& w : workers_)
        for (Stream* s : {&w.out, &w.err})
          if (s->fd >= 0) {
            fds.push_back({s->fd, POLLIN, 0});
            owners.emplace_back(&w, s);
          }
      if (fds.empty()) break;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(drain_end - Clock::now()).count();
      if (left <= 0) break;
      if (::poll(fds.data(), fds.size(), static_cast<int>(left)) > 0)
        for (size_t i = 0; i < fds.size(); ++i)
          if (fds[i].revents != 0) read_stream(*owners[i].first, *owners[i].second, 16);
    }
  }

  void close_group() {
    for (Worker& w : workers_) {
      for (Stream* s : {&w.out, &w.err}) {
        if (s->fd >= 0) finish_stream(w, *s);
        close_fd(s->log_fd);
      }
    }
    end_live(out_display_);
    end_live(err_display_);
  }

  const LaunchConfig& c_;
  const RunOptions& o_;
  const bool prefix_;
  Display out_display_, err_display_;
  bool shared_display_ = false;  // stdout and stderr are the same terminal: err uses out_display_
  std::map<std::string, std::string> parent_env_;
  int cpus_ = 1;
  std::string program_path_;
  int wake_fd_ = -1;
  std::vector<Worker> workers_;
  std::vector<WorkerExit> exits_;
  std::optional<WorkerExit> failure_;
  int interrupted_ = 0;
  int exec_failed_ = 0;
  bool stopping_ = false;
  bool kill_sent_ = false;
  Clock::time_point deadline_{};
};

}  // namespace

std::string describe_exit(const WorkerExit& e) {
  if (e.signal != 0) {
    std::string s = "killed by signal " + std::to_string(e.signal) + " (" + signal_abbrev(e.signal) + ")";
    if (e.signal == SIGKILL) s += ", possibly by the out-of-memory killer (see dmesg)";
    return s;
  }
  return "exit code " + std::to_string(e.exit_code);
}

std::string format_failure(const WorkerExit& e, int restarts) {
  std::string m = "accel launch: rank " + std::to_string(e.rank) + " (local rank " +
                  std::to_string(e.local_rank) + ", pid " + std::to_string(e.pid) +
                  ") failed: " + describe_exit(e);
  if (restarts > 0) m += " (after " + std::to_string(restarts) + " restart(s))";
  m += "; the other workers were stopped.\n";
  if (e.stderr_tail.empty()) {
    m += "accel launch: rank " + std::to_string(e.rank) + " wrote nothing to stderr.\n";
  } else {
    m += "accel launch: last " + std::to_string(e.stderr_tail.size()) + " line(s) of rank " +
         std::to_string(e.rank) + "'s stderr:\n";
    for (const auto& l : e.stderr_tail) m += "  | " + l + "\n";
  }
  m += "accel launch: exiting with code " + std::to_string(e.exit_code) + "\n";
  return m;
}

LaunchResult run_workers(const LaunchConfig& config, const RunOptions& options) {
  if (config.num_processes < 1 || config.num_machines < 1 || config.num_processes % config.num_machines != 0)
    throw UsageError("invalid LaunchConfig: num_processes " + std::to_string(config.num_processes) +
                     ", num_machines " + std::to_string(config.num_machines));
  Runner runner(config, options);
  return runner.run();
}

}  // namespace accel::launcher
