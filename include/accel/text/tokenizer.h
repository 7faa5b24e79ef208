// WordPiece tokenizer with Hugging Face BertTokenizer(Fast) semantics: reads vocab.txt or
// tokenizer.json, encodes single texts and pairs to input_ids / attention_mask / token_type_ids,
// batches on several threads, and decodes ids back to text. Torch-free.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace accel::text {

/// Declares `T name_ = default;` plus a chaining setter `name(T)` and a getter `name()`.
#define ACCEL_TEXT_ARG(T, name, ...)                 \
 public:                                             \
  auto name(const T& v)->decltype(*this) {           \
    this->name##_ = v;                               \
    return *this;                                    \
  }                                                  \
  const T& name() const noexcept { return name##_; } \
  T name##_ = __VA_ARGS__

/// How the tokenizer normalises text. Unset optionals take the value from the tokenizer file
/// (tokenizer.json normalizer section, or tokenizer_config.json beside a vocab.txt), else the
/// BERT default given per field.
struct TokenizerOptions {
  /// Lower-case the text. Default: from the file, else true (uncased vocabularies).
  ACCEL_TEXT_ARG(std::optional<bool>, lowercase, std::nullopt);
  /// Strip accents (NFD, then drop nonspacing marks). Default: from the file, else = lowercase.
  ACCEL_TEXT_ARG(std::optional<bool>, strip_accents, std::nullopt);
  /// Drop control characters, NUL and U+FFFD; turn whitespace into ' '. Default: file, else true.
  ACCEL_TEXT_ARG(std::optional<bool>, clean_text, std::nullopt);
  /// Put spaces around CJK ideographs so each is its own word. Default: file, else true.
  ACCEL_TEXT_ARG(std::optional<bool>, handle_chinese_chars, std::nullopt);
};

/// Padding of encoded sequences.
enum class Padding {
  kNone,       // no padding (a batch is ragged: rows of their own length)
  kLongest,    // pad every row to the longest row of the batch
  kMaxLength,  // pad every row to EncodeOptions::max_length
};

/// How to encode. Defaults match `tokenizer(text, truncation=True, max_length=512)`.
struct EncodeOptions {
  /// Add [CLS] ... [SEP] (and [SEP] after a pair's second text). Default true.
  ACCEL_TEXT_ARG(bool, add_special_tokens, true);
  /// Longest sequence kept when truncating, special tokens included; also the padded length for
  /// Padding::kMaxLength. Default 512; must be > the number of special tokens when truncating.
  ACCEL_TEXT_ARG(int64_t, max_length, 512);
  /// Cut sequences to max_length (pairs: Hugging Face's "longest_first"). Default true.
  ACCEL_TEXT_ARG(bool, truncation, true);
  /// Padding mode. Default Padding::kNone.
  ACCEL_TEXT_ARG(Padding, padding, Padding::kNone);
  /// When > 0, padded lengths are rounded up to a multiple of this. Default 0 (off).
  ACCEL_TEXT_ARG(int64_t, pad_to_multiple_of, 0);
};

/// How to decode ids back to text.
struct DecodeOptions {
  /// Leave out special tokens ([CLS], [SEP], [PAD], ...). Default true.
  ACCEL_TEXT_ARG(bool, skip_special_tokens, true);
  /// Hugging Face's clean_up_tokenization (" ." -> ".", " n't" -> "n't", ...). Default true.
  ACCEL_TEXT_ARG(bool, cleanup, true);
};

#undef ACCEL_TEXT_ARG

/// One encoded sequence; the three vectors have the same length.
struct Encoding {
  std::vector<int64_t> input_ids;
  std::vector<int64_t> attention_mask;  // 1 for real tokens, 0 for padding
  std::vector<int64_t> token_type_ids;  // 0 for the first text, 1 for the second of a pair
  /// Number of tokens (padding included).
  size_t size() const noexcept { return input_ids.size(); }
};

/// A batch of encoded sequences stored row after row. With padding every row has seq_len tokens
/// (row-major [batch_size, seq_len]); without padding rows keep their own length (seq_len == 0)
/// and offsets locate them.
struct BatchEncoding {
  int64_t batch_size = 0;
  int64_t seq_len = 0;                  // 0 when the batch is ragged (Padding::kNone)
  std::vector<int64_t> input_ids;       // all rows, concatenated
  std::vector<int64_t> attention_mask;
  std::vector<int64_t> token_type_ids;
  std::vector<int64_t> lengths;         // real (unpadded) tokens per row
  std::vector<int64_t> offsets;         // batch_size + 1 row starts into the flat vectors
  /// Row i as an Encoding (copies; padding included). Requires i < batch_size.
  Encoding row(int64_t i) const;
};

/// WordPiece tokenizer (BERT). Immutable after loading; copies share the vocabulary and every
/// const method may be called from several threads at once.
class WordPieceTokenizer {
 public:
  /// Loads `path`: a tokenizer.json (WordPiece model, BertNormalizer, BertPreTokenizer), a
  /// vocab.txt (one token per line; options from tokenizer_config.json beside it if present), or
  /// a model folder holding either (tokenizer.json preferred). Explicit `options` fields override
  /// the file. Throws accel::InputError when the file is missing or malformed.
  static WordPieceTokenizer from_file(const std::string& path, const TokenizerOptions& options = {});

  /// Builds a tokenizer from a vocabulary (token i has id i). Special tokens [PAD], [UNK], [CLS],
  /// [SEP], [MASK] present in the vocabulary are matched in raw text, as Hugging Face does.
  static WordPieceTokenizer from_vocab(const std::vector<std::string>& tokens,
                                       const TokenizerOptions& options = {});

  /// Encodes one text (UTF-8; invalid bytes read as U+FFFD).
  Encoding encode(std::string_view text, const EncodeOptions& options = {}) const;

  /// Encodes a pair: [CLS] text [SEP] pair [SEP] with token_type_ids 0 then 1.
  Encoding encode_pair(std::string_view text, std::string_view pair,
                       const EncodeOptions& options = {}) const;

  /// Encodes many texts on `num_threads` threads (0: all cores). Rows are in input order and
  /// identical to encode() of each text; padding applies across the batch.
  BatchEncoding encode_batch(const std::vector<std::string>& texts,
                             const EncodeOptions& options = {}, int num_threads = 0) const;
  BatchEncoding encode_batch(const std::vector<std::string_view>& texts,
                             const EncodeOptions& options = {}, int num_threads = 0) const;

  /// The word-piece tokens of a text, no special tokens, no truncation (HF `tokenize`).
  std::vector<std::string> tokenize(std::string_view text) const;

  /// Ids of a text, no special tokens, no truncation, appended to `out`.
  void encode_ids(std::string_view text, std::vector<int32_t>& out) const;

  /// Text of `ids` (WordPiece decoder: "##" pieces joined, words separated by spaces).
  std::string decode(const std::vector<int64_t>& ids, const DecodeOptions& options = {}) const;

  /// Id of a token, or -1 when it is not in the vocabulary.
  int64_t token_to_id(std::string_view token) const;
  /// Token of an id; throws accel::Error when out of range.
  const std::string& id_to_token(int64_t id) const;

  int64_t vocab_size() const;
  int64_t pad_id() const;
  int64_t unk_id() const;
  int64_t cls_id() const;
  int64_t sep_id() const;
  int64_t mask_id() const;  // -1 when the vocabulary has no [MASK]

  /// The normalisation actually in effect (every optional set).
  const TokenizerOptions& options() const;

  struct Impl;

 private:
  explicit WordPieceTokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace accel::text
