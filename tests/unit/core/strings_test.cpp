// accel/core/strings.h: join, trim, lower/upper and prefix/suffix tests, with exact outputs.
#include "accel/core/strings.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace accel {
namespace {

TEST(Strings, JoinPutsTheSeparatorBetweenItemsOnly) {
  EXPECT_EQ(join({}, ", "), "");
  EXPECT_EQ(join({"a"}, ", "), "a");
  EXPECT_EQ(join({"a", "b", "c"}, ", "), "a, b, c");
  EXPECT_EQ(join({"", ""}, "|"), "|");
  EXPECT_EQ(join({"x", "y"}, ""), "xy");
}

TEST(Strings, TrimRemovesSurroundingWhitespaceOnly) {
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(trim(" \t\r\n\v\f"), "");
  EXPECT_EQ(trim("  a b  "), "a b");
  EXPECT_EQ(trim("\tvalue\r\n"), "value");
  EXPECT_EQ(trim("inner  space"), "inner  space");
}

TEST(Strings, LowerAndUpperChangeAsciiLettersOnly) {
  EXPECT_EQ(lower("FULL_Shard-2"), "full_shard-2");
  EXPECT_EQ(upper("full_shard-2"), "FULL_SHARD-2");
  // Bytes of UTF-8 sequences are left alone (no locale-dependent case mapping).
  EXPECT_EQ(lower("\xC3\x89T\xC3\x89"), "\xC3\x89t\xC3\x89");
  EXPECT_EQ(upper("\xC3\xA9t\xC3\xA9"), "\xC3\xA9T\xC3\xA9");
}

TEST(Strings, PrefixAndSuffix) {
  EXPECT_TRUE(starts_with("fsdp_version", "fsdp_"));
  EXPECT_FALSE(starts_with("fsd", "fsdp_"));
  EXPECT_TRUE(starts_with("x", ""));
  EXPECT_TRUE(ends_with("config.json", ".json"));
  EXPECT_FALSE(ends_with("json", ".json"));
  EXPECT_TRUE(ends_with("", ""));
}

}  // namespace
}  // namespace accel
