#include "loom/error.hpp"

#include <algorithm>

namespace loom {

std::string Location::str() const {
  if (file.empty()) return "";
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(col);
}

std::string located(const Location& where, const std::string& path, const std::string& message) {
  std::string out;
  if (where.known()) out += where.str() + ": ";
  if (!path.empty()) out += path + ": ";
  return out + message;
}

Error::Error(const std::string& message) : std::runtime_error(message) {}
Error::Error(const Location& where, const std::string& path, const std::string& message)
    : std::runtime_error(located(where, path, message)) {}
Error::~Error() = default;

static size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (std::tolower(a[i - 1]) == std::tolower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

static std::string squash(const std::string& s) {
  std::string o;
  for (char c : s)
    if (c != '_' && c != '-') o += char(std::tolower(c));
  return o;
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& c : candidates) {
    size_t d = squash(c) == squash(word) ? 0 : edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  size_t limit = std::max<size_t>(2, word.size() / 3);
  return best_d <= limit ? best : "";
}

std::string suggestion(const std::string& word, const std::vector<std::string>& candidates) {
  std::string m = closest_match(word, candidates);
  if (!m.empty()) return " (did you mean '" + m + "'?)";
  if (candidates.empty()) return "";
  std::string list;
  for (size_t i = 0; i < candidates.size(); ++i) list += (i ? ", " : "") + candidates[i];
  return " (known: " + list + ")";
}

}  // namespace loom
