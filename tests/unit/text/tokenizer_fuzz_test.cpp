// Regression tests for the tokenizer.json loader's handling of damaged files (found while writing
// tests/fuzz/fuzz_tokenizer.cpp; inputs in tests/fuzz/regressions/fuzz_tokenizer/): every one is
// an accel::InputError, never a nlohmann exception, an out-of-range write or a huge allocation.
#include "accel/text/tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "accel/core/error.h"
#include "support/temp_dir.h"

namespace accel::text {
namespace {

namespace fs = accel::fs;
using accel::test::Path;

nlohmann::json good_tokenizer_json() {
  return nlohmann::json::parse(R"({
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
              "max_input_chars_per_word": 100,
              "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "the": 4, "##s": 5}},
    "normalizer": {"type": "BertNormalizer", "lowercase": true},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "added_tokens": [{"id": 0, "content": "[PAD]", "special": true},
                     {"id": 2, "content": "[CLS]", "special": true},
                     {"id": 3, "content": "[SEP]", "special": true}],
    "post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 2], "sep": ["[SEP]", 3]}})");
}

class TokenizerJsonFuzz : public ::testing::Test {
 protected:
  Path write(const nlohmann::json& j) {
    const Path p = dir_ / "tokenizer.json";
    fs::write_file(p, j.dump());
    return p;
  }
  accel::test::TempDir dir_{"tok_fuzz"};
};

TEST_F(TokenizerJsonFuzz, TheBaseFileLoads) {
  auto tok = WordPieceTokenizer::from_file(write(good_tokenizer_json()));
  EXPECT_EQ(tok.encode("the s").input_ids, (std::vector<int64_t>{2, 4, 1, 3}));
}

TEST_F(TokenizerJsonFuzz, DamagedFilesAreInputErrors) {
  std::vector<std::function<void(nlohmann::json&)>> damage = {
      // Negative, non-integer and huge ids of added tokens (a negative id wrote out of bounds;
      // a huge one allocated id+1 strings).
      [](nlohmann::json& j) {
        j["added_tokens"].push_back({{"id", -5}, {"content", "[X]"}});
      },
      [](nlohmann::json& j) {
        j["added_tokens"].push_back({{"id", "7"}, {"content", "[X]"}});
      },
      [](nlohmann::json& j) {
        j["added_tokens"].push_back({{"id", 1000000000}, {"content", "[X]"}});
      },
      // An empty added token made encode() loop forever.
      [](nlohmann::json& j) {
        j["added_tokens"].push_back({{"id", 4}, {"content", ""}});
      },
      [](nlohmann::json& j) {
        j["added_tokens"].push_back({{"id", 4}, {"content", 4}});
      },
      [](nlohmann::json& j) { j["added_tokens"].push_back(7); },
      // A huge vocabulary id from a tiny file.
      [](nlohmann::json& j) { j["model"]["vocab"]["x"] = 1000000000; },
      // BertProcessing with a short array (read past its end) or an id outside the vocabulary.
      [](nlohmann::json& j) { j["post_processor"]["cls"] = nlohmann::json::array({"[CLS]"}); },
      [](nlohmann::json& j) {
        j["post_processor"]["sep"] = nlohmann::json::array({"[SEP]", 99});
      },
      [](nlohmann::json& j) {
        j["post_processor"]["sep"] = nlohmann::json::array({"[SEP]", "3"});
      },
      // Sections of the wrong type (value() on a non-object threw json type_error).
      [](nlohmann::json& j) { j["normalizer"] = 5; },
      [](nlohmann::json& j) { j["pre_tokenizer"] = nlohmann::json::array(); },
      [](nlohmann::json& j) { j["model"]["type"] = 3; },
  };
  for (size_t i = 0; i < damage.size(); ++i) {
    nlohmann::json j = good_tokenizer_json();
    damage[i](j);
    EXPECT_THROW(WordPieceTokenizer::from_file(write(j)), accel::InputError)
        << "case " << i << ": " << j.dump();
  }
}

TEST_F(TokenizerJsonFuzz, OddButHarmlessFieldsAreIgnored) {
  for (auto edit : std::vector<std::function<void(nlohmann::json&)>>{
           [](nlohmann::json& j) { j["model"]["max_input_chars_per_word"] = -1e300; },
           [](nlohmann::json& j) { j["added_tokens"][0]["special"] = "yes"; },
           [](nlohmann::json& j) {
             j["post_processor"] = {{"type", "TemplateProcessing"},
                                    {"single", {{{"SpecialToken", 5}}, 1, {{"SpecialToken", {{"id", 3}}}}}}};
           }}) {
    nlohmann::json j = good_tokenizer_json();
    edit(j);
    auto tok = WordPieceTokenizer::from_file(write(j));
    for (int64_t id : tok.encode("the s [SEP]").input_ids) {
      EXPECT_TRUE(id >= 0 && id < tok.vocab_size()) << j.dump();
    }
  }
}

}  // namespace
}  // namespace accel::text
