// Hugging Face tokenizer.json files against ids computed by Hugging Face `tokenizers`
// (tokenizer/hf/*/expected.jsonl), and llama.cpp's qwen2 / llama-bpe vectors through them.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

#include "slm/error.h"
#include "slm/tokenizer.h"
#include "tests/test_data.h"
#include "tests/tokenizer_vectors.h"

namespace slm {
namespace {

using test::Ids;

Ids ids_of(simdjson::dom::element e) {
  Ids ids;
  for (auto v : e.get_array()) ids.push_back(static_cast<TokenId>(v.get_int64().value()));
  return ids;
}

void check_expected(const std::string& name) {
  const auto dir = test::data_path("tokenizer/hf/" + name);
  SLM_REQUIRE_DATA(dir / "tokenizer.json");
  const Tokenizer t = Tokenizer::from_file((dir / "tokenizer.json").string());
  simdjson::dom::parser parser;
  const simdjson::padded_string lines = simdjson::padded_string::load((dir / "expected.jsonl").string());
  int n = 0, ids_bad = 0, special_bad = 0, decoded_bad = 0;
  for (auto doc : parser.parse_many(lines)) {
    const auto row = doc.get_object().value();
    const std::string text(row["text"].get_string().value());
    const Ids ids = ids_of(row["ids"]);
    const Ids ids_special = ids_of(row["ids_special"]);
    const std::string decoded(row["decoded"].get_string().value());
    ++n;
    // Hugging Face always matches added tokens written in the text.
    const Ids got = t.encode(text, /*add_bos=*/false, /*parse_special=*/true);
    if (got != ids) {
      ++ids_bad;
      ADD_FAILURE() << "ids of '" << text << "'\n  expected " << test::ids_text(ids)
                    << "\n  got      " << test::ids_text(got);
    }
    const Ids got_special = t.encode(text, t.adds_bos(), true);
    if (got_special != ids_special) {
      ++special_bad;
      ADD_FAILURE() << "ids_special of '" << text << "'\n  expected "
                    << test::ids_text(ids_special) << "\n  got      "
                    << test::ids_text(got_special);
    }
    const std::string got_decoded = t.decode(ids, /*render_special=*/true);
    if (got_decoded != decoded) {
      ++decoded_bad;
      ADD_FAILURE() << "decode of '" << text << "'\n  expected '" << decoded << "'\n  got      '"
                    << got_decoded << "'";
    }
  }
  EXPECT_GT(n, 300);
  EXPECT_EQ(ids_bad, 0) << "of " << n;
  EXPECT_EQ(special_bad, 0) << "of " << n;
  EXPECT_EQ(decoded_bad, 0) << "of " << n;
}

TEST(TokenizerHf, Llama2) { check_expected("llama2"); }
TEST(TokenizerHf, Llama3) { check_expected("llama3"); }
TEST(TokenizerHf, Qwen3) { check_expected("qwen3"); }
TEST(TokenizerHf, Gemma3) { check_expected("gemma3"); }
TEST(TokenizerHf, DeepseekV3) { check_expected("deepseek_v3"); }

// llama.cpp's vectors whose GGUF is too large to ship, through the matching tokenizer.json.
void check_llamacpp(const std::string& hf, const std::string& vectors) {
  const auto json = test::data_path("tokenizer/hf/" + hf + "/tokenizer.json");
  const auto path = test::data_path("tokenizer/llamacpp/" + vectors);
  SLM_REQUIRE_DATA(json);
  SLM_REQUIRE_DATA(path.string() + ".inp");
  const Tokenizer t = Tokenizer::from_file(json.string());
  test::expect_vectors(t, path);
}

TEST(TokenizerHf, LlamaBpeVectorsViaLlama3Json) {
  check_llamacpp("llama3", "ggml-vocab-llama-bpe.gguf");
}
TEST(TokenizerHf, Qwen2VectorsViaQwen3Json) { check_llamacpp("qwen3", "ggml-vocab-qwen2.gguf"); }

TEST(TokenizerHf, FromDirectoryAndSpecialIds) {
  const auto dir = test::data_path("tokenizer/hf/qwen3");
  SLM_REQUIRE_DATA(dir / "tokenizer.json");
  const Tokenizer t = Tokenizer::from_file(dir.string());
  EXPECT_EQ(t.eos_id(), 151645);  // <|im_end|> (tokenizer_config.json)
  EXPECT_FALSE(t.adds_bos());
  EXPECT_EQ(t.encode("<|im_start|>", false, true), (Ids{151644}));
  EXPECT_NE(t.encode("<|im_start|>", false, false), (Ids{151644}));
}

TEST(TokenizerHf, BadFiles) {
  const auto dir = test::temp_dir();
  EXPECT_THROW(Tokenizer::from_file((dir / "missing.json").string()), IoError);
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  };
  EXPECT_THROW(Tokenizer::from_file(write("broken.json", "{\"model\": [")), FormatError);
  EXPECT_THROW(Tokenizer::from_file(write("ugm.json",
                                          "{\"model\": {\"type\": \"Unigram\", \"vocab\": []},"
                                          " \"added_tokens\": []}")),
               UnsupportedError);
  // WordPiece without an unknown token cannot tokenize an unknown word.
  EXPECT_THROW(Tokenizer::from_file(write("wp.json",
                                          "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}},"
                                          " \"added_tokens\": []}")),
               FormatError);
}

}  // namespace
}  // namespace slm
