// `slm chat` and `slm embed` on the bundled model.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_data.h"

namespace {

using slm::test::CliResult;
using slm::test::run_slm;
using slm::test::split_lines;

std::string write_input(const std::string& name, const std::string& text) {
  const auto path = slm::test::temp_dir() / name;
  std::ofstream(path) << text;
  return path.string();
}

TEST(CliChat, TwoTurnsReuseTheFirstTurnsCache) {
  const std::vector<std::string> args = {"chat", "--temp", "0", "-n", "12", "-v", "-t", "1"};
  const CliResult both = run_slm(args, write_input("two.txt", "Tell me a story\n\nAnd then?\n"));
  ASSERT_EQ(both.code, 0) << both.err;
  const std::vector<std::string> replies = split_lines(both.out);
  ASSERT_EQ(replies.size(), 2u) << both.out;
  EXPECT_NE(both.err.find("chat format plain"), std::string::npos) << both.err;
  EXPECT_NE(both.err.find("turn 1: prompt"), std::string::npos) << both.err;
  // Turn 2 evaluates only what follows turn 1's tokens.
  const size_t at = both.err.find("turn 2: prompt");
  ASSERT_NE(at, std::string::npos) << both.err;
  int prompt = 0, reused = 0;
  ASSERT_EQ(std::sscanf(both.err.c_str() + at, "turn 2: prompt %d tokens (%d reused", &prompt,
                        &reused),
            2);
  EXPECT_GT(reused, 20);
  EXPECT_LT(reused, prompt);
  // The first reply does not depend on what comes after it.
  const CliResult one = run_slm(args, write_input("one.txt", "Tell me a story\n"));
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_EQ(split_lines(one.out), std::vector<std::string>{replies[0]});
  EXPECT_EQ(run_slm({"chat", "--format", "bogus"}).code, 2);
}

TEST(CliEmbed, PrintsVectorsAndCosines) {
  const CliResult r = run_slm({"embed", "Once upon a time", "-t", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream in(r.out);
  double v = 0, norm = 0;
  int n = 0;
  while (in >> v) {
    norm += v * v;
    ++n;
  }
  EXPECT_EQ(n, 64);  // stories260K's n_embd
  EXPECT_NEAR(norm, 1.0, 1e-4);
  const CliResult c = run_slm({"embed", "--cosine", "-f", "-"},
                              write_input("texts.txt", "A cat sat.\nA cat sat.\nThe sky.\n"));
  ASSERT_EQ(c.code, 0) << c.err;
  const std::vector<std::string> out = split_lines(c.out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].substr(0, 8), "1.000000");
  EXPECT_EQ(out[1].substr(0, 8), "1.000000");  // the same text
  EXPECT_NE(out[2].substr(0, 8), "1.000000");
  EXPECT_EQ(run_slm({"embed"}).code, 2);  // no text
  EXPECT_EQ(run_slm({"embed", "x", "--pooling", "max"}).code, 2);
}

}  // namespace
