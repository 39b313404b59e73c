// `slm tokenize` and `slm run --tokenizer`, run through the shell like a user would.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/test_data.h"

namespace {

namespace fs = std::filesystem;

using Result = slm::test::CliResult;
using slm::test::run_slm;

std::string hf(const std::string& name) {
  return slm::test::data_path("tokenizer/hf/" + name + "/tokenizer.json").string();
}

TEST(CliTokenize, TextWithAndWithoutBos) {
  SLM_REQUIRE_DATA(hf("llama2"));
  Result r = run_slm({"tokenize", "--tokenizer", hf("llama2"), "Hello world"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "1 22557 1526\n");
  r = run_slm({"tokenize", "--tokenizer", hf("llama2"), "--no-bos", "Hello world"});
  EXPECT_EQ(r.out, "22557 1526\n");
}

TEST(CliTokenize, SpecialTokens) {
  SLM_REQUIRE_DATA(hf("qwen3"));
  Result r = run_slm({"tokenize", "--tokenizer", hf("qwen3"), "--special", "<|im_end|>"});
  EXPECT_EQ(r.out, "151645\n") << r.err;
  r = run_slm({"tokenize", "--tokenizer", hf("qwen3"), "<|im_end|>"});
  EXPECT_NE(r.out, "151645\n");
}

TEST(CliTokenize, FileAndLines) {
  SLM_REQUIRE_DATA(hf("qwen3"));
  const fs::path dir = slm::test::temp_dir();
  std::ofstream(dir / "text.txt") << "Hello";
  std::ofstream(dir / "lines.jsonl") << "\"Hello\"\n\"a\\nb\"\n\"\"\n";
  Result r = run_slm({"tokenize", "--tokenizer", hf("qwen3"), "-f", (dir / "text.txt").string()});
  EXPECT_EQ(r.out, "9707\n") << r.err;
  r = run_slm({"tokenize", "--tokenizer", hf("qwen3"), "--lines", (dir / "lines.jsonl").string()});
  EXPECT_EQ(r.out, "9707\n64 198 65\n\n") << r.err;
  std::ofstream(dir / "bad.jsonl") << "Hello\n";
  r = run_slm({"tokenize", "--tokenizer", hf("qwen3"), "--lines", (dir / "bad.jsonl").string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("bad.jsonl:1"), std::string::npos) << r.err;
}

TEST(CliTokenize, GgufModel) {
  const auto gguf = slm::test::data_path("tokenizer/llamacpp/ggml-vocab-gpt-2.gguf");
  SLM_REQUIRE_DATA(gguf);
  const Result r = run_slm({"tokenize", "-m", gguf.string(), "--special", "<|endoftext|>hi"});
  EXPECT_EQ(r.out, "50256 5303\n") << r.err;
}

TEST(CliTokenize, UsageErrors) {
  EXPECT_EQ(run_slm({"tokenize", "text"}).code, 2);  // no tokenizer
  EXPECT_EQ(run_slm({"tokenize", "--tokenizer", "x.json"}).code, 2);  // no text
  EXPECT_EQ(run_slm({"tokenize", "--tokenizer", "x.json", "-f", "a", "text"}).code, 2);
  const Result r = run_slm({"tokenize", "--tokenizer", "/no/such/tokenizer.json", "hi"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("/no/such/tokenizer.json"), std::string::npos) << r.err;
}

TEST(CliTokenize, RunWithTokenizerOverride) {
  // The bundled model's own GGUF as the override gives the same text as no override; a
  // tokenizer larger than the model's embedding table is refused.
  const Result own = run_slm({"run", "-n", "8", "--temp", "0"});
  ASSERT_EQ(own.code, 0) << own.err;
  const Result same =
      run_slm({"run", "-n", "8", "--temp", "0", "--tokenizer", SLM_BUNDLED_MODEL});
  EXPECT_EQ(same.code, 0) << same.err;
  EXPECT_EQ(same.out, own.out);
  if (fs::exists(hf("llama2"))) {
    const Result big = run_slm({"run", "-n", "2", "--tokenizer", hf("llama2")});
    EXPECT_EQ(big.code, 1);
    EXPECT_NE(big.err.find("embeddings"), std::string::npos) << big.err;
  }
}

}  // namespace
