// Tests of the file-system module (accel/core/fs.h): path text, folders, listing, removal that
// never follows a symlink, reading and writing, the durable atomic writer and temporary folders.
#include "accel/core/fs.h"

#include "accel/core/error.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace fs = accel::fs;
using accel::test::TempDir;

namespace {

std::vector<std::string> names(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::list_dir(dir)) out.push_back(e.name);
  return out;
}

TEST(Fs, PathText) {
  EXPECT_EQ(fs::join("a", "b"), "a/b");
  EXPECT_EQ(fs::join("a/", "b"), "a/b");
  EXPECT_EQ(fs::join("", "b"), "b");
  EXPECT_EQ(fs::join("a", ""), "a");
  EXPECT_EQ(fs::join("a", "/abs"), "/abs");
  EXPECT_EQ(fs::join("/", "x"), "/x");
  EXPECT_EQ(fs::join("a", "b", "c.txt"), "a/b/c.txt");
  EXPECT_EQ(fs::parent("a/b/c"), "a/b");
  EXPECT_EQ(fs::parent("a/b/"), "a");
  EXPECT_EQ(fs::parent("c"), "");
  EXPECT_EQ(fs::parent("/c"), "/");
  EXPECT_EQ(fs::parent("/"), "/");
  EXPECT_EQ(fs::parent("a//b"), "a");
  EXPECT_EQ(fs::filename("a/b/c.txt"), "c.txt");
  EXPECT_EQ(fs::filename("c"), "c");
  EXPECT_EQ(fs::filename("a/"), "");
  EXPECT_EQ(fs::extension("x.tar.gz"), ".gz");
  EXPECT_EQ(fs::extension("dir.d/x"), "");
  EXPECT_EQ(fs::extension(".bashrc"), "");
  EXPECT_EQ(fs::extension("tokenizer.json"), ".json");
}

TEST(Fs, CreateDirectoriesAndQueries) {
  TempDir t("fs");
  const std::string deep = t / "a/b/c";
  fs::create_directories(deep);
  EXPECT_TRUE(fs::is_directory(deep));
  fs::create_directories(deep);  // existing: fine
  std::error_code ec;
  EXPECT_TRUE(fs::create_directories(t / "a//b/./d/", ec)) << ec.message();
  EXPECT_TRUE(fs::is_directory(t / "a/b/d"));

  fs::write_file(t / "file", "12345");
  EXPECT_TRUE(fs::exists(t / "file"));
  EXPECT_TRUE(fs::is_regular_file(t / "file"));
  EXPECT_FALSE(fs::is_directory(t / "file"));
  EXPECT_EQ(fs::file_size(t / "file"), 5u);
  EXPECT_FALSE(fs::exists(t / "missing"));
  EXPECT_FALSE(fs::stat(t / "missing").has_value());
  EXPECT_THROW(fs::file_size(t / "missing"), accel::InputError);
  EXPECT_THROW(fs::file_size(t.path()), accel::InputError);  // a folder has no size

  // A file in the way is an error that names the folder, not a crash or a silent success.
  EXPECT_FALSE(fs::create_directories(t / "file/sub", ec));
  EXPECT_EQ(ec.value(), ENOTDIR);
  EXPECT_FALSE(fs::create_directories(t / "file", ec));
  EXPECT_EQ(ec.value(), EEXIST);
  try {
    fs::create_directories(t / "file/sub");
    FAIL() << "expected accel::Error";
  } catch (const accel::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("file/sub"), std::string::npos) << msg;
    EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  }
}

TEST(Fs, ListDirIsSortedAndTyped) {
  TempDir t("fs");
  fs::write_file(t / "b.txt", "b");
  fs::write_file(t / "a.txt", "a");
  fs::create_directories(t / "c");
  ASSERT_TRUE(accel::test::make_symlink(t / "a.txt", t / "d"));
  const auto entries = fs::list_dir(t.path());
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].name, "a.txt");
  EXPECT_EQ(entries[0].type, fs::FileType::kRegular);
  EXPECT_EQ(entries[1].name, "b.txt");
  EXPECT_EQ(entries[2].name, "c");
  EXPECT_EQ(entries[2].type, fs::FileType::kDirectory);
  EXPECT_EQ(entries[3].name, "d");
  EXPECT_EQ(entries[3].type, fs::FileType::kSymlink);
  std::error_code ec;
  EXPECT_TRUE(fs::list_dir(t / "missing", ec).empty());
  EXPECT_EQ(ec.value(), ENOENT);
  EXPECT_THROW(fs::list_dir(t / "missing"), accel::Error);
}

TEST(Fs, RemoveAllRemovesTreesAndNeverFollowsSymlinks) {
  TempDir t("fs");
  // Outside the tree: a folder a symlink inside points to. It must survive.
  fs::create_directories(t / "outside");
  fs::write_file(t / "outside/keep.txt", "keep");
  const std::string tree = t / "tree";
  fs::create_directories(tree + "/x/y/z");
  fs::write_file(tree + "/x/y/z/f1", "1");
  fs::write_file(tree + "/x/f2", "2");
  fs::write_file(tree + "/f3", "3");
  ASSERT_TRUE(accel::test::make_symlink(t / "outside", tree + "/x/link_to_outside"));
  ASSERT_TRUE(accel::test::make_symlink(t / "nowhere", tree + "/dangling"));
  // tree, x, y, z, f1, f2, f3, link_to_outside, dangling
  EXPECT_EQ(fs::remove_all(tree), 9u);
  EXPECT_FALSE(fs::exists(tree));
  EXPECT_EQ(fs::read_file(t / "outside/keep.txt"), "keep");

  // A symlink to a folder given directly: the link goes, the folder stays.
  ASSERT_TRUE(accel::test::make_symlink(t / "outside", t / "link"));
  EXPECT_EQ(fs::remove_all(t / "link"), 1u);
  EXPECT_TRUE(fs::is_directory(t / "outside"));
  // Missing: nothing to do, no error. A plain file: removed.
  std::error_code ec;
  EXPECT_EQ(fs::remove_all(t / "missing", ec), 0u);
  EXPECT_FALSE(ec);
  fs::write_file(t / "one", "1");
  EXPECT_EQ(fs::remove_all(t / "one"), 1u);
  EXPECT_FALSE(fs::exists(t / "one"));
}

TEST(Fs, RemoveRenameReadWrite) {
  TempDir t("fs");
  fs::write_file(t / "a", std::string("bytes\0with nul", 14));
  EXPECT_EQ(fs::read_file(t / "a"), std::string("bytes\0with nul", 14));
  fs::rename(t / "a", t / "b");
  EXPECT_FALSE(fs::exists(t / "a"));
  EXPECT_EQ(fs::read_file(t / "b").size(), 14u);
  std::error_code ec;
  EXPECT_FALSE(fs::rename(t / "a", t / "c", ec));
  EXPECT_EQ(ec.value(), ENOENT);
  EXPECT_THROW(fs::rename(t / "a", t / "c"), accel::Error);
  EXPECT_TRUE(fs::remove(t / "b"));
  EXPECT_FALSE(fs::remove(t / "b"));  // missing: false, no throw
  fs::create_directories(t / "d");
  EXPECT_TRUE(fs::remove(t / "d"));  // an empty folder
  fs::create_directories(t / "e/f");
  EXPECT_THROW(fs::remove(t / "e"), accel::Error);  // not empty
  fs::write_file(t / "c1", "copy me");
  fs::copy_file(t / "c1", t / "c2");
  EXPECT_EQ(fs::read_file(t / "c2"), "copy me");
}

TEST(Fs, ReadFileErrorsAreInputErrors) {
  TempDir t("fs");
  try {
    fs::read_file(t / "missing.json", "config file");
    FAIL() << "expected InputError";
  } catch (const accel::InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("config file"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  }
  EXPECT_THROW(fs::read_file(t.path()), accel::InputError);  // a folder
}

TEST(Fs, AtomicFileReplacesOnlyOnCommit) {
  TempDir t("fs");
  const std::string target = t / "sub/dir/out.bin";  // folders are made
  fs::write_file_atomic(target, "old");
  EXPECT_EQ(fs::read_file(target), "old");
  const uint64_t commits = fs::atomic_commit_count();
  {
    fs::AtomicFile f(target);
    f.write("new ");
    f.write(std::string(1 << 20, 'x'));
    // Until commit the target is the old file and the bytes are in a temporary beside it.
    EXPECT_EQ(fs::read_file(target), "old");
    EXPECT_EQ(fs::parent(f.temp_path()), fs::parent(target));
    EXPECT_TRUE(fs::exists(f.temp_path()));
    f.commit();
    EXPECT_FALSE(fs::exists(f.temp_path()));
  }
  EXPECT_EQ(fs::atomic_commit_count(), commits + 1);
  EXPECT_EQ(fs::file_size(target), 4u + (1u << 20));
  std::string temp;
  {
    fs::AtomicFile abandoned(target);  // an exception or a crash before commit
    abandoned.write("partial");
    temp = abandoned.temp_path();
  }
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_EQ(fs::file_size(target), 4u + (1u << 20));
  EXPECT_EQ(names(t / "sub/dir"), std::vector<std::string>{"out.bin"});
  // A target that is a folder: the error names it, nothing is left behind.
  fs::create_directories(t / "sub/dir/folder");
  EXPECT_THROW(fs::write_file_atomic(t / "sub/dir/folder", "x"), accel::Error);
  EXPECT_EQ(names(t / "sub/dir"), (std::vector<std::string>{"folder", "out.bin"}));
}

TEST(Fs, AtomicFileConcurrentWritersLeaveOneCompleteFile) {
  TempDir t("fs");
  const std::string target = t / "shared.txt";
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 20; ++k)
        fs::write_file_atomic(target, std::string(1000 + i, static_cast<char>('a' + i)));
    });
  }
  for (auto& th : threads) th.join();
  const std::string got = fs::read_file(target);
  ASSERT_GE(got.size(), 1000u);
  const int i = static_cast<int>(got.size()) - 1000;
  EXPECT_EQ(got, std::string(1000 + i, static_cast<char>('a' + i)));   // one writer's bytes, whole
  EXPECT_EQ(names(t.path()), std::vector<std::string>{"shared.txt"});  // no temporaries
}

TEST(Fs, TempDirsArePrivateUniqueAndRemoved) {
  std::string kept;
  {
    fs::TempDir a("accel_fs_test_");
    fs::TempDir b("accel_fs_test_");
    EXPECT_NE(a.path(), b.path());
    struct stat st {};
    ASSERT_EQ(::stat(a.path().c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    fs::create_directories(a / "x/y");
    fs::write_file(a / "x/y/z", "z");
    kept = a.path();
  }
  EXPECT_FALSE(fs::exists(kept));
  // TMPDIR is honoured when it names a folder.
  TempDir t("fs");
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old ? old : "";
  ::setenv("TMPDIR", t.str().c_str(), 1);
  EXPECT_EQ(fs::temp_directory(), t.str());
  EXPECT_EQ(fs::parent(fs::make_temp_dir("y")), t.str());
  ::setenv("TMPDIR", (t / "not-there").c_str(), 1);
  EXPECT_EQ(fs::temp_directory(), "/tmp");
  if (old) {
    ::setenv("TMPDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
}

TEST(Fs, ProcessQueries) {
  EXPECT_FALSE(fs::current_dir().empty());
  const auto exe = fs::read_symlink("/proc/self/exe");
  ASSERT_TRUE(exe.has_value());
  EXPECT_EQ(fs::filename(*exe), "accel_unit_tests");
  EXPECT_FALSE(fs::read_symlink("/nonexistent").has_value());
  TempDir t("fs");
  fs::create_directories(t / "a/b");
  EXPECT_EQ(fs::canonical_or_self(t / "a/../a/./b"), fs::canonical_or_self(t / "a/b"));
  EXPECT_EQ(fs::canonical_or_self("/no/such/place"), "/no/such/place");
}

}  // namespace
