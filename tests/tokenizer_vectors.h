// Reading llama.cpp's tokenizer test vectors (shared by the tokenizer tests).
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "slm/tokenizer.h"
#include "tests/test_data.h"

namespace slm::test {

using Ids = std::vector<TokenId>;

struct VocabCase {
  std::vector<std::string> inputs;
  std::vector<Ids> outputs;
};

// llama.cpp's test-tokenizer-0 format: X.gguf.inp holds the strings, each followed by a line
// "__ggml_vocab_test__"; X.gguf.out one line of space-separated ids per string (no BOS).
inline VocabCase read_vocab_case(const std::filesystem::path& gguf) {
  VocabCase c;
  const std::string raw = read_text(gguf.string() + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      c.inputs.push_back(raw.substr(pos));
      break;
    }
    c.inputs.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::ifstream out(gguf.string() + ".out");
  if (!out) throw std::runtime_error("cannot open " + gguf.string() + ".out");
  for (std::string line; std::getline(out, line);) {
    Ids ids;
    std::istringstream in(line);
    for (TokenId id; in >> id;) ids.push_back(id);
    c.outputs.push_back(ids);
  }
  return c;
}

inline std::string ids_text(const Ids& ids) { return fmt::format("{}", fmt::join(ids, " ")); }

}  // namespace slm::test
