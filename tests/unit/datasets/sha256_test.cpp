// SHA-256 against the FIPS 180-4 / NIST example vectors, incremental and one-shot.
#include "accel/datasets/sha256.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

#include <fstream>
#include <unistd.h>

#include "accel/core/error.h"

namespace accel::datasets {
namespace {

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalEqualsOneShotAtEveryBoundary) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  const std::string want = sha256_hex(data);
  for (size_t split : {0, 1, 55, 56, 63, 64, 65, 127, 128, 200}) {
    Sha256 h;
    h.update(data.data(), split);
    h.update(data.data() + split, data.size() - split);
    EXPECT_EQ(h.hex_digest(), want) << split;
  }
}

TEST(Sha256, File) {
  accel::test::TempDir dir("sha");
  const std::string p = dir / "abc.txt";
  accel::fs::write_file(p, "abc");
  EXPECT_EQ(sha256_file(p), sha256_hex("abc"));
  accel::fs::remove(p);
  EXPECT_THROW(sha256_file(p), accel::InputError);
}

}  // namespace
}  // namespace accel::datasets
