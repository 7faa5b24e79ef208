// CSV (RFC 4180) and JSONL readers, balanced subsets, the stratified validation split.
#include "accel/datasets/text_dataset.h"

#include <gtest/gtest.h>

#include <set>

#include "accel/core/error.h"

namespace accel::datasets {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const accel::InputError& e) {
    return e.what();
  }
  return "<no InputError>";
}

TEST(Csv, QuotesNewlinesAndCrlf) {
  const std::string csv =
      "id,text,label\r\n"
      "1,plain text,1\r\n"
      "2,\"with, comma and \"\"quotes\"\"\",0\r\n"
      "3,\"multi\nline\",positive\n"
      "\n"
      "4,,negative";
  auto d = parse_csv(csv, "mem.csv");
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d.texts[0], "plain text");
  EXPECT_EQ(d.texts[1], "with, comma and \"quotes\"");
  EXPECT_EQ(d.texts[2], "multi\nline");
  EXPECT_EQ(d.texts[3], "");
  EXPECT_EQ(d.labels, (std::vector<int64_t>{1, 0, 1, 0}));
  EXPECT_EQ(d.sources[2], "mem.csv:4");
}

TEST(Csv, ColumnNamesDelimiterAndLabelNames) {
  auto d = parse_csv("review;sentiment\ngood;yes\nbad;no\n", "m.csv",
                     TextFileOptions().text_column("review").label_column("sentiment").delimiter(';')
                         .label_names({"no", "yes"}));
  EXPECT_EQ(d.texts, (std::vector<std::string>{"good", "bad"}));
  EXPECT_EQ(d.labels, (std::vector<int64_t>{1, 0}));
}

TEST(Csv, MalformedInputsSayWhereAndHint) {
  std::string e = error_of([] { parse_csv("text,label\n\"open,1\n", "bad.csv"); });
  EXPECT_NE(e.find("bad.csv:2"), std::string::npos) << e;
  EXPECT_NE(e.find("HINT"), std::string::npos) << e;
  e = error_of([] { parse_csv("text,label\na,1,extra\n", "bad.csv"); });
  EXPECT_NE(e.find("bad.csv:2: 3 fields"), std::string::npos) << e;
  e = error_of([] { parse_csv("body,label\na,1\n", "bad.csv"); });
  EXPECT_NE(e.find("no column 'text'"), std::string::npos) << e;
  e = error_of([] { parse_csv("text,label\na,maybe\n", "bad.csv"); });
  EXPECT_NE(e.find("cannot read label 'maybe'"), std::string::npos) << e;
  e = error_of([] { parse_csv("", "empty.csv"); });
  EXPECT_NE(e.find("empty"), std::string::npos) << e;
  e = error_of([] { read_csv("/nonexistent/dir/file.csv"); });
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
}

TEST(Jsonl, ReadsObjectsAndReportsBadLines) {
  auto d = parse_jsonl("{\"text\": \"a\", \"label\": 1}\n\n{\"text\": \"b\\nc\", \"label\": \"neg\"}\n"
                       "{\"text\": \"d\", \"label\": true}\n",
                       "m.jsonl");
  EXPECT_EQ(d.texts, (std::vector<std::string>{"a", "b\nc", "d"}));
  EXPECT_EQ(d.labels, (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(d.sources[1], "m.jsonl:3");
  std::string e = error_of([] { parse_jsonl("{\"text\": \"a\", \"label\": 1}\n{broken\n", "x.jsonl"); });
  EXPECT_NE(e.find("x.jsonl:2: not valid JSON"), std::string::npos) << e;
  e = error_of([] { parse_jsonl("{\"review\": \"a\", \"label\": 1}\n", "x.jsonl"); });
  EXPECT_NE(e.find("no string field 'text'"), std::string::npos) << e;
  e = error_of([] { parse_jsonl("[1,2]\n", "x.jsonl"); });
  EXPECT_NE(e.find("expected a JSON object"), std::string::npos) << e;
  auto r = parse_jsonl("{\"review\": \"a\", \"y\": 2}\n", "m", TextFileOptions().text_column("review").label_column("y"));
  EXPECT_EQ(r.labels[0], 2);
}

TEST(Subsets, BalancedPrefixAlternatesLabels) {
  TextClassificationDataset d;
  for (int i = 0; i < 6; ++i) d.add(std::string("n").append(std::to_string(i)), 0, "");
  for (int i = 0; i < 3; ++i) d.add(std::string("p").append(std::to_string(i)), 1, "");
  auto s = take_balanced(d, 5);
  EXPECT_EQ(s.texts, (std::vector<std::string>{"n0", "p0", "n1", "p1", "n2"}));
  auto all = take_balanced(d, 0);
  EXPECT_EQ(all.texts, (std::vector<std::string>{"n0", "p0", "n1", "p1", "n2", "p2", "n3", "n4", "n5"}));
}

TEST(Subsets, ValidationSplitIsStratifiedSeededAndDisjoint) {
  TextClassificationDataset d;
  for (int i = 0; i < 100; ++i) d.add(std::to_string(i), i % 4 == 0 ? 1 : 0, "");
  auto [train, val] = split_validation(d, 0.2, 7);
  EXPECT_EQ(val.size(), 20u);  // 15 of 75 label-0 rows + 5 of 25 label-1 rows
  EXPECT_EQ(train.size(), 80u);
  EXPECT_EQ(std::count(val.labels.begin(), val.labels.end(), 1), 5);
  std::set<std::string> seen(train.texts.begin(), train.texts.end());
  for (const auto& t : val.texts) EXPECT_EQ(seen.count(t), 0u);
  auto again = split_validation(d, 0.2, 7);
  EXPECT_EQ(again.second.texts, val.texts);
  auto other = split_validation(d, 0.2, 8);
  EXPECT_NE(other.second.texts, val.texts);
  EXPECT_TRUE(std::is_sorted(val.texts.begin(), val.texts.end(),
                             [](const std::string& a, const std::string& b) { return std::stoi(a) < std::stoi(b); }));
  EXPECT_THROW(split_validation(d, 1.0, 0), accel::Error);
  // Pinned: SplitMix64 + Fisher-Yates give the same split on every platform and compiler.
  TextClassificationDataset ten;
  for (int i = 0; i < 10; ++i) ten.add(std::to_string(i), 0, "");
  EXPECT_EQ(split_validation(ten, 0.3, 42).second.texts, (std::vector<std::string>{"0", "5", "9"}));
}

}  // namespace
}  // namespace accel::datasets
