// The slm CLI as a user sees it: the built binary run through the shell, checking stdout, stderr
// and the exit code. Cli.* needs only the argument parser and inspect_file; CliEngine.* needs a
// working Model/Session/generate (the bundled stories260K and its llama.cpp references).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_data.h"

namespace {

namespace fs = std::filesystem;

using Result = slm::test::CliResult;
using slm::test::run_slm;
using slm::test::split_lines;

size_t count_error_lines(const std::string& err) {
  size_t n = 0;
  for (const std::string& line : split_lines(err)) n += line.starts_with("slm: error: ") ? 1 : 0;
  return n;
}

std::string describe(const std::vector<std::string>& args, const Result& r) {
  std::ostringstream s;
  s << "slm";
  for (const std::string& a : args) s << " '" << a << "'";
  s << "\n  exit " << r.code << "\n  stdout: " << r.out << "\n  stderr: " << r.err;
  return s.str();
}

void expect_error(const std::vector<std::string>& args, int code, const std::string& needle = "") {
  const Result r = run_slm(args);
  EXPECT_EQ(r.code, code) << describe(args, r);
  EXPECT_EQ(count_error_lines(r.err), 1u) << describe(args, r);
  EXPECT_TRUE(r.out.empty()) << describe(args, r);
  if (!needle.empty()) {
    EXPECT_NE(r.err.find(needle), std::string::npos) << describe(args, r);
  }
}

fs::path write_garbage(const fs::path& dir) {
  const fs::path path = dir / "garbage.gguf";
  std::ofstream(path, std::ios::binary) << "GGUF\x03\x00\x00\x00\xff\xff\xff\xff junk";
  return path;
}

fs::path reference(const std::string& name) {
  return slm::test::data_path("models/stories260K/reference/" + name);
}

}  // namespace

TEST(Cli, HelpExitsZero) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--help"}, {"-h"}, {"run", "--help"},
                                             {"logits", "--help"}, {"inspect", "--help"}}) {
    const Result r = run_slm(args);
    EXPECT_EQ(r.code, 0) << describe(args, r);
    EXPECT_NE(r.out.find("usage: slm"), std::string::npos) << describe(args, r);
    EXPECT_TRUE(r.err.empty()) << describe(args, r);
  }
  const Result r = run_slm({"run", "--help"});
  for (const char* flag : {"--tokens", "--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty",
                           "--seed", "--kv-type", "--ids", "--ignore-eos", "--mmap", "--no-mmap"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  }
}

TEST(Cli, Version) {
  const Result r = run_slm({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "slm 0.1.0\n");
}

TEST(Cli, UsageErrorsExitTwoWithOneLine) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"--bogus"},
      {"run", "--bogus"},
      {"run", "-n"},
      {"run", "-n", "abc"},
      {"run", "-n", "12x"},
      {"run", "-n", "-3"},
      {"run", "-n", " 5"},
      {"run", "-n", "99999999999"},
      {"run", "-t", "1.5"},
      {"run", "--temp", "hot"},
      {"run", "--temp", "-1"},
      {"run", "--temp", "nan"},
      {"run", "--top-p", "1.5"},
      {"run", "--seed", "-1"},
      {"run", "--kv-type", "f64"},
      {"run", "--ids=yes"},
      {"run", "-p", "hi", "--tokens", "1 2"},
      {"run", "--tokens", "1 two 3"},
      {"run", "--tokens", "1 -2"},
      {"run", "--tokens", ""},
      {"run", "stray"},
      {"run", "--mmap", "--no-mmap"},
      {"bench", "--mmap", "--no-mmap"},
      {"logits", "--tokens", "1 2"},
      {"logits", "-o", "x.f32"},
      {"logits", "-o", "x.f32", "--tokens", "1", "-p", "a"},
      {"logits", "-o", "x.f32", "--tokens", "1", "-c", "zero"},
      {"inspect"},
      {"inspect", "a.gguf", "b.gguf"},
      {"inspect", "-m", "a.gguf", "b.gguf"},
      {"inspect", "a.gguf", "--tensors=1"},
  };
  for (const auto& args : cases) expect_error(args, 2);
  // The hint points at the right --help.
  const Result r = run_slm({"run", "--bogus"});
  EXPECT_NE(r.err.find("'--bogus'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("slm run --help"), std::string::npos) << r.err;
}

TEST(Cli, KvTypeIsCheckedByName) {
  expect_error({"run", "--kv-type", "q4_0"}, 2, "expected f32, f16 or q8_0");
  expect_error({"bench", "--kv-type", "bf16"}, 2, "expected f32, f16 or q8_0");
}

// --kv-type q8_0 on run, chat, logits and bench with a zoo model (head_dim 32); the bundled
// stories260K (head_dim 8) is refused with the reason.
TEST(CliEngine, KvTypeQ8_0) {
  const fs::path zoo = slm::test::data_path("zoo/gguf/llama-gqa-F32.gguf");
  SLM_REQUIRE_DATA(zoo);
  SLM_REQUIRE_DATA(fs::path(SLM_BUNDLED_MODEL));
  expect_error({"run", "--kv-type", "q8_0", "--tokens", "1", "-n", "2", "--ids"}, 1,
               "multiple of 32");
  const fs::path dir = slm::test::temp_dir();
  std::vector<float> logits[2];
  for (int q8 = 0; q8 < 2; ++q8) {
    const std::string out = (dir / (q8 ? "q8.f32" : "f32.f32")).string();
    const Result r = run_slm({"logits", "-m", zoo.string(), "--tokens", "1 403 407 261 378", "-o",
                              out, "--kv-type", q8 ? "q8_0" : "f32", "-t", "1"});
    ASSERT_EQ(r.code, 0) << r.err;
    logits[q8] = slm::test::read_f32(out);
  }
  ASSERT_EQ(logits[1].size(), 5u * 512u);
  for (size_t p = 0; p < 5; ++p) {
    EXPECT_LT(slm::test::nmse(&logits[1][p * 512], &logits[0][p * 512], 512), 1e-4);
  }
  const Result run = run_slm({"run", "-m", zoo.string(), "--kv-type", "q8_0", "--tokens", "1 403",
                              "-n", "4", "--ids", "-v", "-t", "1"});
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_NE(run.err.find("kv q8_0"), std::string::npos) << run.err;
  const fs::path turns = dir / "turns.txt";
  std::ofstream(turns) << "Tell me a story\n\nAnd then?\n";
  const Result chat = run_slm({"chat", "-m", zoo.string(), "--kv-type", "q8_0", "-n", "4",
                               "--temp", "0", "-t", "1"},
                              turns.string());
  EXPECT_EQ(chat.code, 0) << chat.err;
  EXPECT_EQ(split_lines(chat.out).size(), 2u) << chat.out;
  const Result bench = run_slm({"bench", "-m", zoo.string(), "--kv-type", "q8_0", "-p", "8", "-n",
                                "4", "-r", "1", "-t", "1", "--json"});
  ASSERT_EQ(bench.code, 0) << bench.err;
  EXPECT_NE(bench.out.find(R"("kv":"q8_0")"), std::string::npos) << bench.out;
}

TEST(Cli, MissingModelFileNamesIt) {
  const std::string missing = (slm::test::temp_dir() / "no-such-model.gguf").string();
  expect_error({"run", "-m", missing}, 1, missing);
  expect_error({"logits", "-m", missing, "--tokens", "1", "-o", "x.f32"}, 1, missing);
  expect_error({"inspect", missing}, 1, missing);
  expect_error({"inspect", "-m", missing}, 1, missing);
}

TEST(Cli, MalformedFileExitsOne) {
  const fs::path garbage = write_garbage(slm::test::temp_dir());
  expect_error({"inspect", garbage.string()}, 1, garbage.string());
  expect_error({"run", "-m", garbage.string()}, 1);
  expect_error({"logits", "-m", garbage.string(), "--tokens", "1", "-o",
                (garbage.parent_path() / "x.f32").string()},
               1);
  // Empty file, and a directory where a file is expected.
  const fs::path empty = garbage.parent_path() / "empty.gguf";
  std::ofstream(empty).close();
  expect_error({"inspect", empty.string()}, 1);
  expect_error({"inspect", garbage.parent_path().string()}, 1);
}

TEST(Cli, InspectBundledModel) {
  SLM_REQUIRE_DATA(fs::path(SLM_BUNDLED_MODEL));
  const Result r = run_slm({"inspect", SLM_BUNDLED_MODEL});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("gguf v3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("llama.block_count"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("general.architecture"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tensors:  48 "), std::string::npos) << r.out;
  // The 512-token vocabulary is abbreviated, not dumped.
  EXPECT_NE(r.out.find("(512 items)]"), std::string::npos) << r.out;
  EXPECT_LT(r.out.size(), 8000u);

  const Result t = run_slm({"inspect", "-m", SLM_BUNDLED_MODEL, "--tensors"});
  ASSERT_EQ(t.code, 0) << t.err;
  size_t tensor_lines = 0;
  for (const std::string& line : split_lines(t.out)) tensor_lines += line.find(" bytes  @ ") != std::string::npos;
  EXPECT_EQ(tensor_lines, 48u) << t.out;
  EXPECT_NE(t.out.find("token_embd.weight"), std::string::npos);

  const Result j = run_slm({"inspect", SLM_BUNDLED_MODEL, "--json", "--tensors"});
  ASSERT_EQ(j.code, 0) << j.err;
  EXPECT_TRUE(j.out.starts_with("{\"path\":")) << j.out;
  EXPECT_NE(j.out.find("\"key\":\"llama.block_count\""), std::string::npos);
  EXPECT_NE(j.out.find("\"tensor_count\":48"), std::string::npos);
}

// ---- Needs the engine (Model, Session, generate) ----

TEST(CliEngine, GreedyIdsMatchReference) {
  SLM_REQUIRE_DATA(reference("stories260K.greedy.txt"));
  SLM_REQUIRE_DATA(fs::path(SLM_BUNDLED_MODEL));
  const std::vector<int32_t> expected = slm::test::read_ids(reference("stories260K.greedy.txt"));
  const Result r = run_slm({"run", "--temp", "0", "-n", "64", "--ids"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string want;
  for (const int32_t id : expected) {
    if (!want.empty()) want += ' ';
    want += std::to_string(id);
  }
  EXPECT_EQ(r.out, want + "\n");
  EXPECT_NE(r.err.find("slm: load "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("gen 64 tok"), std::string::npos) << r.err;
}

TEST(CliEngine, LogitsMatchReference) {
  SLM_REQUIRE_DATA(reference("stories260K.logits.f32"));
  SLM_REQUIRE_DATA(fs::path(SLM_BUNDLED_MODEL));
  const std::vector<float> expected = slm::test::read_f32(reference("stories260K.logits.f32"));
  ASSERT_EQ(expected.size(), 5u * 512u);
  const fs::path dir = slm::test::temp_dir();
  const fs::path from_tokens = dir / "tokens.f32", from_text = dir / "text.f32";
  // The same input twice: as ids, and as text that the tokenizer turns into BOS + the same ids.
  const Result r = run_slm({"logits", "--tokens", "1 403 407 261 378", "-o", from_tokens.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const Result t = run_slm({"logits", "-m", SLM_BUNDLED_MODEL, "-p", "Once upon a time", "-o",
                            from_text.string(), "--kv-type", "f32"});
  ASSERT_EQ(t.code, 0) << t.err;
  for (const fs::path& path : {from_tokens, from_text}) {
    const std::vector<float> got = slm::test::read_f32(path);
    ASSERT_EQ(got.size(), expected.size()) << path;
    for (size_t row = 0; row < 5; ++row) {
      EXPECT_LE(slm::test::nmse(got.data() + row * 512, expected.data() + row * 512, 512), 1e-6)
          << path << " row " << row;
    }
  }
}

TEST(CliEngine, RunStreamsPromptAndText) {
  SLM_REQUIRE_DATA(fs::path(SLM_BUNDLED_MODEL));
  const Result r = run_slm({"run", "-p", "Once upon a time", "--temp", "0", "-n", "16"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("Once upon a time")) << r.out;
  EXPECT_GT(r.out.size(), std::string("Once upon a time\n").size()) << r.out;
  EXPECT_NE(r.err.find("| prompt 5 tok, "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("| gen 16 tok, "), std::string::npos) << r.err;
}

TEST(CliEngine, SameSeedSameTokens) {
  SLM_REQUIRE_DATA(fs::path(SLM_BUNDLED_MODEL));
  const std::vector<std::string> args = {"run", "--seed", "42", "-n", "32", "--ids", "--ignore-eos"};
  const Result a = run_slm(args);
  const Result b = run_slm(args);
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
}

TEST(CliEngine, TokenOutOfRangeExitsOne) {
  SLM_REQUIRE_DATA(fs::path(SLM_BUNDLED_MODEL));
  const std::string out = (slm::test::temp_dir() / "x.f32").string();
  expect_error({"logits", "--tokens", "1 9999", "-o", out}, 1, "9999");
  expect_error({"run", "--tokens", "9999", "-n", "4", "--ids"}, 1, "9999");
}

TEST(CliEngine, PromptLongerThanContextExitsOne) {
  SLM_REQUIRE_DATA(fs::path(SLM_BUNDLED_MODEL));
  const std::string out = (slm::test::temp_dir() / "x.f32").string();
  expect_error({"logits", "--tokens", "1 403 407 261 378", "-c", "3", "-o", out}, 1, "context");
  expect_error({"run", "--tokens", "1 403 407 261 378", "-c", "3", "--ids"}, 1, "context");
}

// `slm bench --json`: one JSON object per test with the fields DESIGN.md's contract names.
TEST(CliEngine, BenchJsonLines) {
  SLM_REQUIRE_DATA(fs::path(SLM_BUNDLED_MODEL));
  const Result r = run_slm({"bench", "-p", "16", "-n", "8", "-r", "2", "-t", "1", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::vector<std::string> tests;
  for (std::string line; std::getline(lines, line);) {
    for (const char* field : {"\"tokens_per_s\":", "\"stddev\":", "\"threads\":1,",
                              "\"model_bytes\":", "\"isa\":\""}) {
      EXPECT_NE(line.find(field), std::string::npos) << field << " missing in " << line;
    }
    tests.push_back(line.substr(0, line.find(',')));
  }
  EXPECT_EQ(tests, (std::vector<std::string>{R"({"test":"pp16")", R"({"test":"tg8")"}));
  expect_error({"bench", "-r", "0"}, 2, "-r");
}

// `slm bench -np 3`: tg decodes 3 sequences together and says so ("sequences"); pp stays one.
TEST(CliEngine, BenchParallelSequences) {
  SLM_REQUIRE_DATA(fs::path(SLM_BUNDLED_MODEL));
  const Result r = run_slm({"bench", "-p", "8", "-n", "8", "-r", "1", "-t", "1", "-np", "3", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<std::string> lines = slm::test::split_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_NE(lines[0].find(R"("test":"pp8")"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(R"("sequences":1})"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find(R"("test":"tg8")"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find(R"("sequences":3})"), std::string::npos) << lines[1];
  const Result table = run_slm({"bench", "-p", "0", "-n", "4", "-r", "1", "-t", "1", "-np", "2"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("seqs"), std::string::npos) << table.out;
  expect_error({"bench", "-np", "0"}, 2, "-np");
}
