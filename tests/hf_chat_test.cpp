// Chat metadata: generation_config.json's eos/bos ids and tokenizer_config.json's chat template
// (a string or a list of named templates), from Hugging Face directories and GGUF files.
#include "src/model/hf_chat.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "slm/slm.h"
#include "src/format/gguf.h"
#include "src/format/gguf_writer.h"
#include "tests/test_data.h"

namespace slm {
namespace {

namespace fs = std::filesystem;
using test::data_path;

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A copy of the zoo's llama directory with `generation` / `tokenizer_config` written beside it
// (nothing when empty).
fs::path llama_dir(const std::string& generation, const std::string& tokenizer_config) {
  const fs::path dir = test::temp_dir() / "llama";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* name : {"config.json", "model.safetensors"}) {
    fs::copy_file(data_path("zoo/hf/llama") / name, dir / name);
  }
  if (!generation.empty()) write_text(dir / "generation_config.json", generation);
  if (!tokenizer_config.empty()) write_text(dir / "tokenizer_config.json", tokenizer_config);
  return dir;
}

using test::expect_error;

TEST(HfChat, GenerationConfigIds) {
  const fs::path dir = test::temp_dir();
  fs::create_directories(dir);
  write_text(dir / "one.json", R"({"eos_token_id": 7, "bos_token_id": 3})");
  write_text(dir / "list.json", R"({"eos_token_id": [128001, 128008, 128009]})");
  const HfGenerationConfig one = read_generation_config((dir / "one.json").string());
  EXPECT_EQ(one.eos_ids, std::vector<int32_t>{7});
  EXPECT_EQ(one.bos_id, 3);
  const HfGenerationConfig list = read_generation_config((dir / "list.json").string());
  EXPECT_EQ(list.eos_ids, (std::vector<int32_t>{128001, 128008, 128009}));
  EXPECT_EQ(list.bos_id, -1);
  // No file: nothing, no error.
  EXPECT_TRUE(read_generation_config((dir / "absent.json").string()).eos_ids.empty());
}

TEST(HfChat, ChatTemplateStringOrList) {
  const fs::path dir = test::temp_dir();
  fs::create_directories(dir);
  write_text(dir / "string.json", R"({"chat_template": "{{ bos_token }}{{ x }}"})");
  write_text(dir / "list.json", R"({"chat_template": [
      {"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})");
  write_text(dir / "nodefault.json", R"({"chat_template": [{"name": "rag", "template": "R"}]})");
  write_text(dir / "none.json", R"({"bos_token": "<s>"})");
  EXPECT_EQ(read_chat_template((dir / "string.json").string()), "{{ bos_token }}{{ x }}");
  EXPECT_EQ(read_chat_template((dir / "list.json").string()), "D");
  EXPECT_EQ(read_chat_template((dir / "nodefault.json").string()), "R");
  EXPECT_EQ(read_chat_template((dir / "none.json").string()), "");
  EXPECT_EQ(read_chat_template((dir / "absent.json").string()), "");
}

TEST(HfChat, RealTokenizerConfigs) {
  for (const char* name : {"llama2", "llama3", "qwen3", "gemma3", "deepseek_v3"}) {
    const fs::path path = data_path("tokenizer/hf") / name / "tokenizer_config.json";
    SLM_REQUIRE_DATA(path);
    const std::string t = read_chat_template(path.string());
    // Llama 2's tokenizer_config.json has no template; the others are Jinja.
    if (std::string(name) == "llama2") {
      EXPECT_EQ(t, "") << name;
    } else {
      EXPECT_NE(t.find("{%"), std::string::npos) << name;
    }
  }
  const std::string qwen3 =
      read_chat_template(data_path("tokenizer/hf/qwen3/tokenizer_config.json").string());
  EXPECT_NE(qwen3.find("<|im_start|>"), std::string::npos);
}

TEST(HfChat, MalformedFilesAreFormatErrors) {
  const fs::path dir = test::temp_dir();
  fs::create_directories(dir);
  const auto gen = [&](const std::string& text) {
    write_text(dir / "g.json", text);
    return [p = (dir / "g.json").string()] { read_generation_config(p); };
  };
  const auto tok = [&](const std::string& text) {
    write_text(dir / "t.json", text);
    return [p = (dir / "t.json").string()] { read_chat_template(p); };
  };
  expect_error<FormatError>(gen("{\"eos_token_id\": "), {"g.json", "invalid JSON"});
  expect_error<FormatError>(gen("[1, 2]"), {"g.json", "not a JSON object"});
  expect_error<FormatError>(gen(R"({"eos_token_id": "</s>"})"), {"g.json", "eos_token_id"});
  expect_error<FormatError>(gen(R"({"eos_token_id": [1, -2]})"), {"eos_token_id"});
  expect_error<FormatError>(gen(R"({"bos_token_id": 1.5})"), {"bos_token_id"});
  expect_error<FormatError>(tok(R"({"chat_template": 3})"), {"t.json", "chat_template"});
  expect_error<FormatError>(tok(R"({"chat_template": [{"name": "default"}]})"),
                            {"t.json", "chat_template"});
  expect_error<FormatError>(tok("{"), {"t.json"});
  expect_error<FormatError>(tok(R"({"chat_template": "x)"), {"t.json"});
}

TEST(HfChat, ModelMergesEosAndExposesTemplate) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/llama"));
  const fs::path dir = llama_dir(R"({"bos_token_id": 1, "eos_token_id": [2, 9, 11]})",
                                 R"({"chat_template": "<s>{{ messages }}"})");
  const Model model = Model::load(dir.string());
  EXPECT_TRUE(model.is_eog(2));  // config.json's and generation_config.json's
  EXPECT_TRUE(model.is_eog(9));
  EXPECT_TRUE(model.is_eog(11));
  EXPECT_FALSE(model.is_eog(10));
  EXPECT_EQ(model.bos_id(), 1);
  EXPECT_EQ(model.chat_template(), "<s>{{ messages }}");
  const FileInfo info = inspect_file(dir.string());
  const auto has = [&](const std::string& key, const std::string& value) {
    for (const FileInfo::Entry& e : info.metadata) {
      if (e.key == key) return e.value == value;
    }
    return false;
  };
  EXPECT_TRUE(has("generation_config.eos_token_id", "[2, 9, 11]"));
  EXPECT_TRUE(has("tokenizer.chat_template", "<s>{{ messages }}"));
}

TEST(HfChat, ModelWithoutChatFiles) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/llama"));
  const Model model = Model::load(llama_dir("", "").string());
  EXPECT_EQ(model.chat_template(), "");
  EXPECT_EQ(model.bos_id(), 1);  // config.json's bos_token_id
  EXPECT_TRUE(model.is_eog(2));
}

TEST(HfChat, BrokenGenerationConfigFailsTheLoad) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/llama"));
  const fs::path dir = llama_dir(R"({"eos_token_id": "x"})", "");
  expect_error<FormatError>([&] { Model::load(dir.string()); },
                            {"generation_config.json", "eos_token_id"});
}

TEST(HfChat, GgufChatTemplate) {
  const fs::path gguf = data_path("models/stories260K/stories260K.gguf");
  SLM_REQUIRE_DATA(gguf);
  EXPECT_EQ(Model::load(gguf.string()).chat_template(), "");
  // The same file with a tokenizer.chat_template key.
  const GgufFile in = GgufFile::open(gguf.string());
  GgufWriter w;
  for (const GgufKv& kv : in.metadata()) w.set(kv.key, GgufMetaValue::from(kv.value));
  for (const GgufTensor& t : in.tensors()) {
    w.add_tensor_view(t.name, t.dims, t.type, {t.data, size_t(t.n_bytes)});
  }
  w.set_string("tokenizer.chat_template", "{% for m in messages %}{{ m }}{% endfor %}");
  const fs::path out = test::temp_dir() / "chat.gguf";
  fs::create_directories(out.parent_path());
  w.write(out.string());
  EXPECT_EQ(Model::load(out.string()).chat_template(),
            "{% for m in messages %}{{ m }}{% endfor %}");
}

}  // namespace
}  // namespace slm
