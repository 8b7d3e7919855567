// The one exception type of Loom. Every user-facing failure is a loom::Error whose what() is a
// complete, human-readable message (for pipeline mistakes: "file:line:col: key.path: reason").
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

#include "loom/export.hpp"

namespace loom {

// A position in a source file (pipeline YAML). line/col are 1-based; 0 means unknown.
struct LOOM_API Location {
  std::string file;
  int line = 0;
  int col = 0;
  bool known() const { return !file.empty(); }
  std::string str() const;  // "file:line:col" (or "file", or "")
};

class LOOM_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message);
  // "file:line:col: path: message" — path is the dotted key path of the offending node.
  Error(const Location& where, const std::string& path, const std::string& message);
  ~Error() override;
};

// Formats a located message without throwing.
LOOM_API std::string located(const Location& where, const std::string& path,
                             const std::string& message);

// "did you mean 'x'?" helper: the closest candidate by edit distance, or "" if none is close.
LOOM_API std::string closest_match(const std::string& word,
                                   const std::vector<std::string>& candidates);
// " (did you mean 'x'?)" or " (known: a, b, c)" — appended to unknown-name messages.
LOOM_API std::string suggestion(const std::string& word,
                                const std::vector<std::string>& candidates);

}  // namespace loom
