// libFuzzer target: the WordPiece tokenizer (accel::text::WordPieceTokenizer) on arbitrary bytes,
// invalid UTF-8 included. The first byte picks what is fuzzed, the second the options:
//   mode 0-4  encode / encode_pair / tokenize / encode_batch / decode of the rest as text, with
//             a fixed in-memory vocabulary (no model files needed);
//   mode 5    decode of the rest read as 16-bit token ids;
//   mode 6    the rest as a tokenizer.json (written to tmpfs, loaded with from_file), then encode;
//   mode 7    the rest as vocab.txt lines (from_vocab), then encode a fixed text.
// Invariants: ids are in [0, vocab_size), the three vectors of an Encoding have one length,
// truncation keeps max_length, and decode never throws.
//
// Build and run (see scripts/fuzz.sh, which does all of this):
//   CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DACCEL_FUZZ=ON \
//       -DCMAKE_PREFIX_PATH=$(.venv/bin/python -c 'import torch;print(torch.utils.cmake_prefix_path)')
//   cmake --build build-fuzz --target fuzz_tokenizer -j2
//   LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp build-fuzz/tests/fuzz/fuzz_tokenizer \
//       -dict=tests/fuzz/dicts/tokenizer.dict build-fuzz/corpus/fuzz_tokenizer
//       tests/fuzz/corpus/fuzz_tokenizer
#include "accel/text/tokenizer.h"

#include "fuzz_common.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace accel::text;

namespace {

// A small BERT-like vocabulary: specials, ASCII words and pieces, punctuation, accented, CJK.
std::vector<std::string> small_vocab() {
  std::vector<std::string> v = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (const char* w :
       {"the",      "a",      "movie", "film",  "good", "bad",  "great", "was",  "is",   "not",      "un",
        "##believ", "##able", "##s",   "##ing", "##ed", "##ly", "play",  "##er", "cafe", "caf",      "##e",
        "##é",      "naive",  "i",     "it",    "'",    "n",    "##'",   "t",    ".",    ",",        "!",
        "?",        "-",      "(",     ")",     "\"",   "#",    "##",    "###",  "$",    "1",        "2",
        "##0",      "##1",    "10",    "é",     "ü",    "ß",    "中",    "文",   "日",   "本",       "語",
        "한",       "ğ",      "ı",     "σ",     "ς",    "Σ",    "ǅ",     "ﬁ",    "😀",    "[unused0]"}) {
    v.emplace_back(w);
  }
  for (char c = 'a'; c <= 'z'; ++c) {
    v.emplace_back(1, c);
    v.emplace_back(std::string("##") + c);
  }
  return v;
}

const WordPieceTokenizer& tokenizer(int which) {
  static const std::vector<WordPieceTokenizer> all = [] {
    std::vector<WordPieceTokenizer> t;
    const auto v = small_vocab();
    t.push_back(WordPieceTokenizer::from_vocab(v));  // uncased BERT defaults
    t.push_back(WordPieceTokenizer::from_vocab(
        v, TokenizerOptions().lowercase(false).strip_accents(false)));  // cased
    t.push_back(WordPieceTokenizer::from_vocab(
        v, TokenizerOptions().clean_text(false).handle_chinese_chars(false).strip_accents(true)));
    t.push_back(WordPieceTokenizer::from_vocab(v, TokenizerOptions().lowercase(true).strip_accents(false)));
    return t;
  }();
  return all[static_cast<size_t>(which) % all.size()];
}

EncodeOptions encode_options(uint8_t b) {
  static const int64_t kLengths[] = {512, 3, 4, 5, 8, 16, 1, 2};
  return EncodeOptions()
      .add_special_tokens((b & 1) == 0)
      .truncation((b & 2) == 0)
      .max_length(kLengths[(b >> 2) & 7])
      .padding(static_cast<Padding>(((b >> 5) & 3) % 3))
      .pad_to_multiple_of((b & 0x80) ? 8 : 0);
}

void check(const WordPieceTokenizer& tok, const Encoding& e, const EncodeOptions& o) {
  accel::fuzz::expect(
      e.input_ids.size() == e.attention_mask.size() && e.input_ids.size() == e.token_type_ids.size(),
      "the three vectors of an Encoding have one length");
  for (int64_t id : e.input_ids) {
    accel::fuzz::expect(id >= 0 && id < tok.vocab_size(), "every id is in [0, vocab_size)");
  }
  if (o.truncation() && o.pad_to_multiple_of() == 0 && o.padding() != Padding::kMaxLength) {
    accel::fuzz::expect(static_cast<int64_t>(e.size()) <= o.max_length(), "truncation keeps max_length");
  }
  accel::fuzz::must_not_throw("decode of encoded ids", [&] {
    (void)tok.decode(e.input_ids);
    (void)tok.decode(e.input_ids, DecodeOptions().skip_special_tokens(false).cleanup(false));
  });
}

void fuzz_text(const WordPieceTokenizer& tok, int mode, const EncodeOptions& o, std::string_view text) {
  switch (mode) {
    case 0:
      check(tok, tok.encode(text, o), o);
      break;
    case 1: {
      auto parts = accel::fuzz::split_parts(text, "\n--\n", 2);
      check(tok, tok.encode_pair(parts[0], parts.size() > 1 ? parts[1] : std::string_view(), o), o);
      break;
    }
    case 2: {
      std::vector<int32_t> ids;
      tok.encode_ids(text, ids);
      const auto pieces = tok.tokenize(text);
      accel::fuzz::expect(pieces.size() == ids.size(), "tokenize and encode_ids agree on the count");
      for (int32_t id : ids) accel::fuzz::expect(id >= 0 && id < tok.vocab_size(), "encode_ids ids in range");
      break;
    }
    case 3: {
      auto parts = accel::fuzz::split_parts(text, "\n--\n", 8);
      const BatchEncoding b = tok.encode_batch(parts, o, 1);
      accel::fuzz::expect(b.batch_size == static_cast<int64_t>(parts.size()), "one row per text");
      for (int64_t i = 0; i < b.batch_size; ++i) {
        const Encoding row = b.row(i);
        const Encoding one = tok.encode(parts[static_cast<size_t>(i)], o);
        if (o.padding() == Padding::kNone) {
          accel::fuzz::expect(row.input_ids == one.input_ids, "encode_batch rows equal encode()");
        }
        check(tok, row, o);
      }
      break;
    }
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int mode = data[0] % 8;
  const uint8_t opts = data[1];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  const WordPieceTokenizer& tok = tokenizer(data[0] >> 3);
  const EncodeOptions o = encode_options(opts);
  if (mode <= 4) {
    accel::fuzz::guarded([&] {
      if (mode == 4) {
        check(tok, tok.encode(rest, o), o);
        (void)tok.decode(tok.encode(rest, o).input_ids, DecodeOptions().cleanup((opts & 1) != 0));
      } else {
        fuzz_text(tok, mode, o, rest);
      }
    });
  } else if (mode == 5) {
    std::vector<int64_t> ids;
    for (size_t i = 0; i + 1 < rest.size(); i += 2) {
      ids.push_back(
          static_cast<int16_t>(static_cast<uint8_t>(rest[i]) | (static_cast<uint8_t>(rest[i + 1]) << 8)));
    }
    accel::fuzz::must_not_throw("decode", [&] {
      (void)tok.decode(ids, DecodeOptions().skip_special_tokens((opts & 1) != 0).cleanup((opts & 2) != 0));
    });
  } else if (mode == 6) {
    const auto path = accel::fs::join(accel::fuzz::scratch_dir("tokenizer"), "tokenizer.json");
    accel::fuzz::write_file(path, rest);
    std::optional<WordPieceTokenizer> loaded;
    accel::fuzz::guarded([&] { loaded.emplace(WordPieceTokenizer::from_file(path)); });
    if (loaded) {
      accel::fuzz::guarded([&] {
        const std::string text = "The movie wasn't GOOD, café 中文 [CLS] x [SEP] unbelievable!!";
        check(*loaded, loaded->encode(text, o), o);
        check(*loaded, loaded->encode_pair(text, "a [MASK] b", o), o);
      });
    }
  } else {
    std::vector<std::string> lines;
    for (auto line : accel::fuzz::split_parts(rest, "\n", 4096)) lines.emplace_back(line);
    std::optional<WordPieceTokenizer> built;
    accel::fuzz::guarded([&] { built.emplace(WordPieceTokenizer::from_vocab(lines)); });
    if (built) {
      accel::fuzz::guarded([&] {
        for (const std::string& t :
             {std::string("The movie wasn't GOOD, café 中文 [CLS] x ##s"), lines.front()}) {
          check(*built, built->encode(t, o), o);
        }
      });
    }
  }
  return 0;
}
