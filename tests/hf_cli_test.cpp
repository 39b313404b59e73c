// `slm run/logits/inspect` on a Hugging Face directory, as a user runs them (the built binary).
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "tests/test_data.h"

namespace {

namespace fs = std::filesystem;
using slm::test::data_path;
using slm::test::run_slm;

const std::string kTokens = "1 403 407 261 378";  // BOS + "Once upon a time"

TEST(CliHf, LogitsMatchLlamaCppReference) {
  const fs::path dir = data_path("models/stories260K/hf-f32");
  SLM_REQUIRE_DATA(dir);
  const fs::path out = slm::test::temp_dir() / "hf.f32";
  const auto r = run_slm({"logits", "-m", dir.string(), "--tokens", kTokens, "-o", out.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<float> got = slm::test::read_f32(out);
  const std::vector<float> expected =
      slm::test::read_f32(data_path("models/stories260K/reference/stories260K.logits.f32"));
  ASSERT_EQ(got.size(), expected.size());
  for (size_t row = 0; row < 5; ++row) {
    EXPECT_LE(slm::test::nmse(&got[row * 512], &expected[row * 512], 512), 1e-6) << row;
  }
}

TEST(CliHf, RunWithoutTokenizerPrintsIds) {
  const fs::path dir = data_path("models/stories260K/hf-f32");
  SLM_REQUIRE_DATA(dir);
  const std::string greedy =
      slm::test::read_text(data_path("models/stories260K/reference/stories260K.greedy.txt"));
  for (const bool ids_flag : {true, false}) {
    std::vector<std::string> args = {"run", "-m", dir.string(), "--tokens", kTokens,
                                     "-n",  "64", "--temp",     "0",        "--ignore-eos"};
    if (ids_flag) args.push_back("--ids");
    const auto r = run_slm(args);
    ASSERT_EQ(r.code, 0) << r.err;
    std::string want = greedy;
    while (!want.empty() && std::isspace(static_cast<unsigned char>(want.back()))) want.pop_back();
    EXPECT_EQ(r.out, want + "\n");
    EXPECT_EQ(r.err.find("no tokenizer") != std::string::npos, !ids_flag) << r.err;
  }
}

TEST(CliHf, TextNeedsATokenizer) {
  const fs::path dir = data_path("models/stories260K/hf-f32");
  SLM_REQUIRE_DATA(dir);
  const fs::path out = slm::test::temp_dir() / "x.f32";
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"run", "-m", dir.string(), "-p", "Once"},
           {"run", "-m", dir.string()},  // the default prompt is text too
           {"logits", "-m", dir.string(), "-p", "Once", "-o", out.string()}}) {
    const auto r = run_slm(args);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_TRUE(r.err.starts_with("slm: error: ")) << r.err;
    EXPECT_NE(r.err.find("no tokenizer"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  // With --tokenizer, text works.
  const auto t = run_slm({"run", "-m", dir.string(), "--tokenizer",
                          data_path("models/stories260K/stories260K.gguf").string(), "-p",
                          "Once upon a time", "-n", "4", "--temp", "0"});
  EXPECT_EQ(t.code, 0) << t.err;
  EXPECT_TRUE(t.out.starts_with("Once upon a time")) << t.out;
}

TEST(CliHf, InspectDirectory) {
  const fs::path dir = data_path("zoo/hf/llama");
  SLM_REQUIRE_DATA(dir);
  const auto r = run_slm({"inspect", dir.string(), "--tensors"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* needle : {"safetensors", "hidden_size", "LlamaForCausalLM", "f32 x21",
                             "model.layers.1.self_attn.k_proj.weight", "[64, 32]"}) {
    EXPECT_NE(r.out.find(needle), std::string::npos) << needle << "\n" << r.out;
  }
  const auto bf = run_slm({"inspect", (dir / "bf16").string(), "--json"});
  ASSERT_EQ(bf.code, 0) << bf.err;
  EXPECT_NE(bf.out.find("\"format\":\"safetensors"), std::string::npos) << bf.out;
}

TEST(CliHf, BrokenDirectoryIsOneErrorLine) {
  const fs::path dir = slm::test::temp_dir() / "broken";
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << "{";
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"run", "-m", dir.string(), "--tokens", "1"}, {"inspect", dir.string()}}) {
    const auto r = run_slm(args);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_TRUE(r.err.starts_with("slm: error: ")) << r.err;
    EXPECT_NE(r.err.find("config.json"), std::string::npos) << r.err;
  }
}

}  // namespace
