// Every IMDb review (train + test, 27,000 on CI) tokenized by our WordPiece tokenizer must equal
// Hugging Face tokenizers 0.23.3 (truncation to 512, special tokens): compared through per-review
// FNV-1a hashes and lengths (tests/fixtures/text/imdb_*.txt) and full ids for the first reviews of
// each folder (imdb_head.json). Needs the aclImdb data: it fails, never skips, when it is missing.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "accel/datasets/imdb.h"
#include "accel/text/tokenizer.h"
#include "unit/text/text_test_util.h"

namespace accel::text {
namespace {

using namespace accel::text::testing;
namespace fs = accel::fs;
using accel::test::Path;

TEST(ImdbReference, EveryReviewMatchesHuggingFace) {
  const Path model = model_dir();
  ASSERT_FALSE(model.empty()) << "all-MiniLM-L6-v2 tokenizer not found. HINT: run scripts/setup.sh or set "
                                 "ACCEL_TEST_MODEL_DIR.";
  accel::datasets::ImdbLocation loc;
  try {
    loc = accel::datasets::resolve_imdb_dir(
        accel::datasets::ImdbLocationOptions().allow_download(false).search_roots(
            std::vector<std::string>{fs::current_dir(), ACCEL_SOURCE_DIR}));
  } catch (const std::exception& e) {
    FAIL() << "this test needs the IMDb reviews (aclImdb; CI and dev machines have "
              "../shared/data/imdb/aclImdb next to the repository): "
           << e.what();
  }
  const auto manifest = nlohmann::json::parse(read_file(fixture_dir() / "manifest.json"));
  const auto head = nlohmann::json::parse(read_file(fixture_dir() / "imdb_head.json"));
  std::map<std::string, nlohmann::json> head_by_path;
  for (const auto& h : head) head_by_path[h["path"].get<std::string>()] = h;

  const WordPieceTokenizer tok = WordPieceTokenizer::from_file(model / "tokenizer.json");
  const EncodeOptions opts = EncodeOptions().max_length(manifest["max_length"].get<int64_t>()).truncation(true);
  size_t total = 0, head_checked = 0;
  for (const auto& [folder, info] : manifest["folders"].items()) {
    const Path dir = Path(loc.dir) / folder;
    ASSERT_TRUE(fs::is_directory(dir)) << dir << " is missing (IMDb data at " << loc.dir << ")";
    // The generator's order: Python sorted() of the file names (byte order).
    std::vector<std::string> names;
    for (const auto& e : fs::list_dir(dir)) {
      const std::string& n = e.name;
      if (n.size() > 4 && n.compare(n.size() - 4, 4, ".txt") == 0) names.push_back(n);
    }
    std::sort(names.begin(), names.end());
    ASSERT_EQ(names.size(), info["count"].get<size_t>()) << "review count in " << dir;
    Fnv1a names_hash;
    for (const auto& n : names) names_hash.add_bytes(n + "\n");
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(names_hash.h));
    ASSERT_EQ(std::string(hex), info["names_fnv1a64"].get<std::string>()) << "file names in " << dir
                                                                          << " differ from the fixture's";
    std::vector<std::pair<int64_t, uint64_t>> want;
    {
      std::istringstream in(read_file(fixture_dir() / info["file"].get<std::string>()));
      int64_t len;
      std::string h;
      while (in >> len >> h) want.emplace_back(len, std::stoull(h, nullptr, 16));
    }
    ASSERT_EQ(want.size(), names.size()) << info["file"];

    constexpr size_t kChunk = 2000;
    for (size_t begin = 0; begin < names.size(); begin += kChunk) {
      const size_t end = std::min(names.size(), begin + kChunk);
      std::vector<std::string> texts;
      texts.reserve(end - begin);
      for (size_t i = begin; i < end; ++i) texts.push_back(read_file(dir / names[i]));
      BatchEncoding batch = tok.encode_batch(texts, opts);
      for (size_t i = begin; i < end; ++i) {
        Encoding e = batch.row(static_cast<int64_t>(i - begin));
        const std::string path = folder + "/" + names[i];
        auto hit = head_by_path.find(path);
        if (hit != head_by_path.end()) {
          ++head_checked;
          auto ids = hit->second["input_ids"].get<std::vector<int64_t>>();
          ASSERT_EQ(e.input_ids, ids) << path << ": " << id_diff(tok, ids, e.input_ids);
          EXPECT_EQ(static_cast<int64_t>(tok.encode(texts[i - begin], EncodeOptions().truncation(false)).size()),
                    hit->second["untruncated_length"].get<int64_t>())
              << path << " without truncation";
        }
        if (static_cast<int64_t>(e.size()) != want[i].first || encoding_hash(e) != want[i].second) {
          FAIL() << "review " << path << " (#" << i << " in sorted order) differs from Hugging Face: length want "
                 << want[i].first << " got " << e.size() << "\n  text: \"" << printable(texts[i - begin]) << "\""
                 << "\n  our tokens: " << tokens_of(tok, e.input_ids, 0, 80)
                 << "\n  reproduce: .venv-ref/bin/python -c \"from tokenizers import Tokenizer; "
                    "t=Tokenizer.from_file('<model>/tokenizer.json'); t.enable_truncation(512); "
                    "print(t.encode(open('"
                 << (dir / names[i]).string() << "').read()).tokens)\"";
        }
      }
      total += end - begin;
    }
  }
  EXPECT_EQ(total, 27000u);
  EXPECT_EQ(head_checked, head.size());
}

}  // namespace
}  // namespace accel::text
