// Small string helpers shared across the library and the CLI: join, trim, ASCII lower/upper case
// and prefix/suffix tests. Header-only and dependency-free, so every area (the torch-free ones
// included) can use them without linking anything.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace accel {

/// The items joined with `sep` between them: join({"a", "b"}, ", ") == "a, b"; "" for none.
inline std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.append(sep);
    out += items[i];
  }
  return out;
}

/// `s` without leading and trailing whitespace (space, \t, \n, \v, \f, \r).
inline std::string trim(std::string_view s) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  size_t b = 0, e = s.size();
  while (b < e && space(s[b])) ++b;
  while (e > b && space(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

/// `s` with ASCII letters lower-cased (other bytes, UTF-8 included, unchanged).
inline std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// `s` with ASCII letters upper-cased (other bytes unchanged).
inline std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

/// True when `s` begins with `prefix`.
inline bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

/// True when `s` ends with `suffix`.
inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace accel
