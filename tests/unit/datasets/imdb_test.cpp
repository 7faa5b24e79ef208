// IMDb reader (order, balanced subsets, validation split), data location precedence, and the
// download path against an in-process HTTP server on 127.0.0.1 serving a small aclImdb tar.gz.
#include "accel/datasets/imdb.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "accel/core/error.h"
#include "accel/datasets/sha256.h"
#include "support/temp_dir.h"

namespace accel::datasets {
namespace {

namespace fs = accel::fs;
using accel::test::Path;

// A fresh folder per test (accel::test::TempDir), removed at the end.
struct TempDir {
  accel::test::TempDir dir{"imdb"};
  const Path& path = dir.path();
};

void write(const Path& p, const std::string& s) {
  fs::create_directories(p.parent());
  std::ofstream(p, std::ios::binary) << s;
}

/// A small aclImdb layout: train 3 neg + 2 pos (+ unsup), test 1 + 1.
void make_imdb(const Path& root) {
  write(root / "train/neg/10_2.txt", "neg ten");
  write(root / "train/neg/2_1.txt", "neg two");
  write(root / "train/neg/2_3.txt", "neg two b");
  write(root / "train/pos/7_9.txt", "pos seven");
  write(root / "train/pos/1_10.txt", "pos one");
  write(root / "train/unsup/0_0.txt", "unsup");
  write(root / "test/neg/0_4.txt", "test neg");
  write(root / "test/pos/0_8.txt", "test pos");
}

TEST(ImdbReader, OrderSubsetsAndSplits) {
  TempDir t;
  make_imdb(t.path / "aclImdb");
  auto files = list_imdb_files(t.path / "aclImdb/train/neg");
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(fs::filename(files[0]), "2_1.txt");
  EXPECT_EQ(fs::filename(files[1]), "2_3.txt");
  EXPECT_EQ(fs::filename(files[2]), "10_2.txt");  // numeric, not lexicographic

  auto train = load_imdb(t.path / "aclImdb");
  EXPECT_EQ(train.texts, (std::vector<std::string>{"neg two", "pos one", "neg two b", "pos seven", "neg ten"}));
  EXPECT_EQ(train.labels, (std::vector<int64_t>{0, 1, 0, 1, 0}));
  auto sub = load_imdb(t.path / "aclImdb", ImdbOptions().max_samples(3));
  EXPECT_EQ(sub.texts, (std::vector<std::string>{"neg two", "pos one", "neg two b"}));
  auto test = load_imdb(t.path / "aclImdb", ImdbOptions().split("test"));
  EXPECT_EQ(test.labels, (std::vector<int64_t>{0, 1}));

  auto tr = load_imdb(t.path / "aclImdb", ImdbOptions().validation_fraction(0.4).seed(3));
  auto va = load_imdb(t.path / "aclImdb", ImdbOptions().split("validation").validation_fraction(0.4).seed(3));
  EXPECT_EQ(tr.size() + va.size(), 5u);
  EXPECT_EQ(va.size(), 2u);  // round(0.4*3)=1 neg + round(0.4*2)=1 pos
  for (const auto& v : va.texts) EXPECT_EQ(std::count(tr.texts.begin(), tr.texts.end(), v), 0);

  EXPECT_THROW(load_imdb(t.path / "aclImdb", ImdbOptions().split("validation")), accel::Error);
  EXPECT_THROW(load_imdb(t.path / "aclImdb", ImdbOptions().split("dev")), accel::Error);
  try {
    load_imdb(t.path / "missing");
    FAIL();
  } catch (const accel::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos);
  }
}

TEST(ImdbLocation, Precedence) {
  TempDir t;
  make_imdb(t.path / "explicit/aclImdb");
  make_imdb(t.path / "env/aclImdb");
  make_imdb(t.path / "xdg/accel/datasets/imdb/aclImdb");
  make_imdb(t.path / "tree/shared/data/imdb/aclImdb");
  fs::create_directories(t.path / "tree/a/b/c");
  const std::vector<std::string> roots = {t.path / "tree/a/b/c"};
  EnvMap env = {{"ACCEL_DATA_DIR", (t.path / "env").string()}, {"XDG_CACHE_HOME", (t.path / "xdg").string()}};
  auto opts = ImdbLocationOptions().search_roots(roots).allow_download(false);

  auto l = resolve_imdb_dir(ImdbLocationOptions(opts).data_dir((t.path / "explicit").string()), env);
  EXPECT_EQ(l.source, "data_dir");
  EXPECT_EQ(l.dir, t.path / "explicit/aclImdb");
  l = resolve_imdb_dir(opts, env);
  EXPECT_EQ(l.source, "ACCEL_DATA_DIR");
  env.erase("ACCEL_DATA_DIR");
  l = resolve_imdb_dir(opts, env);
  EXPECT_EQ(l.source, "cache");
  EXPECT_EQ(l.dir, t.path / "xdg/accel/datasets/imdb/aclImdb");
  env["XDG_CACHE_HOME"] = (t.path / "nothing").string();
  l = resolve_imdb_dir(opts, env);
  EXPECT_EQ(l.source, "local copy");
  EXPECT_EQ(fs::canonical_or_self(l.dir), fs::canonical_or_self(t.path / "tree/shared/data/imdb/aclImdb"));

  EXPECT_EQ(default_imdb_cache_dir({{"HOME", "/home/u"}}), Path("/home/u/.cache/accel/datasets/imdb"));
  try {
    resolve_imdb_dir(ImdbLocationOptions(opts).search_roots(std::vector<std::string>{}), env);
    FAIL();
  } catch (const accel::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
  }
  // An explicit folder that holds no data is an error, not a fall-through.
  EXPECT_THROW(resolve_imdb_dir(ImdbLocationOptions(opts).data_dir((t.path / "tree").string()), env),
               accel::InputError);
  EXPECT_THROW(resolve_imdb_dir(opts, {{"ACCEL_DATA_DIR", (t.path / "nothing").string()}}), accel::InputError);
}

/// Serves one file at /aclImdb_v1.tar.gz (404 elsewhere) on 127.0.0.1, one request per connection.
class LocalHttpServer {
 public:
  explicit LocalHttpServer(std::string body) : body_(std::move(body)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 8) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~LocalHttpServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int requests() const { return requests_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      ++requests_;
      const bool ok = req.rfind("GET /aclImdb_v1.tar.gz ", 0) == 0;
      std::ostringstream head;
      head << "HTTP/1.1 " << (ok ? "200 OK" : "404 Not Found") << "\r\nContent-Type: application/gzip\r\n"
           << "Content-Length: " << (ok ? body_.size() : 0) << "\r\nConnection: close\r\n\r\n";
      std::string out = head.str() + (ok ? body_ : std::string());
      size_t sent = 0;
      while (sent < out.size()) {
        ssize_t n = ::send(c, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
      ::close(c);
    }
  }
  std::string body_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

std::string make_archive(const Path& work) {
  make_imdb(work / "src/aclImdb");
  const Path tgz = work / "aclImdb_v1.tar.gz";
  const std::string cmd = "tar -czf '" + tgz.string() + "' -C '" + (work / "src").string() + "' aclImdb";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("tar failed: " + cmd);
  std::ifstream in(tgz, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool only_aclimdb_left(const Path& cache) {
  for (const auto& e : fs::list_dir(cache)) {
    if (e.name != "aclImdb") return false;
  }
  return true;
}

TEST(ImdbDownload, FromLocalServerVerifiedAndExtractedAtomically) {
  TempDir t;
  const std::string archive = make_archive(t.path);
  LocalHttpServer server(archive);
  const Path cache = t.path / "cache";
  int64_t last_progress = -1;
  auto opts = ImdbLocationOptions()
                  .cache_dir(cache.string())
                  .search_roots(std::vector<std::string>{})
                  .url(server.url("/aclImdb_v1.tar.gz"))
                  .sha256(sha256_hex(archive))
                  .on_progress([&](int64_t done, int64_t) { last_progress = done; });
  ImdbLocation loc = resolve_imdb_dir(opts, EnvMap{});
  EXPECT_EQ(loc.source, "download");
  EXPECT_EQ(loc.dir, cache / "aclImdb");
  EXPECT_EQ(last_progress, static_cast<int64_t>(archive.size()));
  EXPECT_TRUE(only_aclimdb_left(cache));
  EXPECT_EQ(load_imdb(loc.dir).size(), 5u);
  // Second time: found in the cache, no request.
  const int before = server.requests();
  EXPECT_EQ(resolve_imdb_dir(opts, EnvMap{}).source, "cache");
  EXPECT_EQ(server.requests(), before);
}

TEST(ImdbDownload, ChecksumMismatchAndHttpErrorsLeaveNothingBehind) {
  TempDir t;
  const std::string archive = make_archive(t.path);
  LocalHttpServer server(archive);
  const Path cache = t.path / "cache";
  try {
    download_imdb(server.url("/aclImdb_v1.tar.gz"), std::string(64, '0'), cache);
    FAIL() << "expected a checksum error";
  } catch (const accel::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("checksum mismatch"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(sha256_hex(archive)), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::list_dir(cache).empty());
  try {
    download_imdb(server.url("/missing.tar.gz"), sha256_hex(archive), cache);
    FAIL() << "expected an HTTP error";
  } catch (const accel::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("404"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::list_dir(cache).empty());
  // Not a tar.gz at all (checksum matches the bytes served).
  LocalHttpServer junk("this is not an archive");
  try {
    download_imdb(junk.url("/aclImdb_v1.tar.gz"), sha256_hex("this is not an archive"), cache);
    FAIL() << "expected a tar error";
  } catch (const accel::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("tar -xzf"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::list_dir(cache).empty());
}

}  // namespace
}  // namespace accel::datasets
