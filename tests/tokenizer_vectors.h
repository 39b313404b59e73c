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

#include <gtest/gtest.h>

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

// Every vector must match exactly (no BOS, special tokens as text), and with `round_trip`
// decode(encode(x)) must give x back (for vocabularies that do not normalize their input).
inline void expect_vectors(const Tokenizer& t, const std::filesystem::path& vectors,
                           bool round_trip = true) {
  const VocabCase c = read_vocab_case(vectors);
  ASSERT_EQ(c.inputs.size(), c.outputs.size());
  ASSERT_GT(c.inputs.size(), 30u);
  int failures = 0;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const Ids got = t.encode(c.inputs[i], /*add_bos=*/false, /*parse_special=*/false);
    if (got != c.outputs[i]) {
      ++failures;
      ADD_FAILURE() << "case " << i << " '" << c.inputs[i] << "'\n  expected "
                    << ids_text(c.outputs[i]) << "\n  got      " << ids_text(got);
    }
    if (round_trip) {
      EXPECT_EQ(t.decode(got), c.inputs[i]) << "case " << i;
    }
  }
  EXPECT_EQ(failures, 0) << "of " << c.inputs.size();
}

}  // namespace slm::test
