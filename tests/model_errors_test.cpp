// Bad model files give a clear error naming what is wrong, never a crash. Each case rewrites the
// bundled model with one thing broken.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "slm/slm.h"
#include "src/format/gguf.h"
#include "src/format/gguf_writer.h"
#include "tests/test_data.h"

namespace slm {
namespace {

struct Edit {
  std::function<bool(std::string_view key)> drop_key = [](std::string_view) { return false; };
  std::function<bool(std::string_view tensor)> drop_tensor = [](std::string_view) { return false; };
  std::function<void(GgufTensor&)> change_tensor = [](GgufTensor&) {};
  std::function<void(GgufWriter&)> set_keys = [](GgufWriter&) {};  // after the copied ones
};

// The bundled model (or `source`) rewritten with `edit` applied, as a file in a temp dir.
std::string broken_copy(const Edit& edit, const std::string& source = SLM_BUNDLED_MODEL) {
  const GgufFile src = GgufFile::open(source);
  GgufWriter out;
  for (const GgufKv& kv : src.metadata()) {
    if (!edit.drop_key(kv.key)) out.set(kv.key, GgufMetaValue::from(kv.value));
  }
  edit.set_keys(out);
  for (GgufTensor t : src.tensors()) {
    if (edit.drop_tensor(t.name)) continue;
    edit.change_tensor(t);
    out.add_tensor(t.name, t.dims, t.type, {t.data, t.n_bytes});
  }
  const std::string path = test::temp_dir() / "broken.gguf";
  out.write(path);
  return path;
}

template <class E>
void expect_error(const std::string& path, const std::string& needle) {
  try {
    Model::load(path);
    FAIL() << "expected an error mentioning '" << needle << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ModelErrors, MissingTensor) {
  Edit edit;
  edit.drop_tensor = [](std::string_view name) { return name == "blk.2.ffn_up.weight"; };
  expect_error<FormatError>(broken_copy(edit), "blk.2.ffn_up.weight");
}

// Tensors an architecture requires beyond llama's: qwen2's q/k/v biases.
TEST(ModelErrors, MissingArchitectureTensor) {
  const std::string qwen2 = test::data_path("zoo/gguf/qwen2-F32.gguf");
  SLM_REQUIRE_DATA(qwen2);
  Edit edit;
  edit.drop_tensor = [](std::string_view name) { return name == "blk.1.attn_k.bias"; };
  expect_error<FormatError>(broken_copy(edit, qwen2), "blk.1.attn_k.bias");
  Edit shape;
  shape.change_tensor = [](GgufTensor& t) {
    if (t.name == "blk.0.attn_q.bias") t.dims = {t.dims[0] / 2}, t.n_bytes /= 2;
  };
  expect_error<FormatError>(broken_copy(shape, qwen2), "blk.0.attn_q.bias");
}

// Gemma 2's post-norms are required; its soft-caps and window must make sense.
TEST(ModelErrors, Gemma2TensorsAndKeys) {
  const std::string gemma2 = test::data_path("zoo/gguf/gemma2-F32.gguf");
  SLM_REQUIRE_DATA(gemma2);
  Edit edit;
  edit.drop_tensor = [](std::string_view name) { return name == "blk.3.post_ffw_norm.weight"; };
  expect_error<FormatError>(broken_copy(edit, gemma2), "blk.3.post_ffw_norm.weight");
  Edit cap;
  cap.set_keys = [](GgufWriter& w) { w.set_f32("gemma2.attn_logit_softcapping", -4.0f); };
  expect_error<FormatError>(broken_copy(cap, gemma2), "soft-caps");
  Edit window;
  window.set_keys = [](GgufWriter& w) { w.set_u64("gemma2.attention.sliding_window", 1ull << 40); };
  expect_error<FormatError>(broken_copy(window, gemma2), "sliding_window");
}

TEST(ModelErrors, MissingHyperParameter) {
  Edit edit;
  edit.drop_key = [](std::string_view key) { return key == "llama.block_count"; };
  expect_error<FormatError>(broken_copy(edit), "llama.block_count");
}

TEST(ModelErrors, WrongTensorShape) {
  Edit edit;  // attn_k is [64, 32]; the same bytes as [32, 64] are the wrong shape
  edit.change_tensor = [](GgufTensor& t) {
    if (t.name == "blk.0.attn_k.weight") std::swap(t.dims[0], t.dims[1]);
  };
  expect_error<FormatError>(broken_copy(edit), "blk.0.attn_k.weight");
}

TEST(ModelErrors, UnsupportedTensorType) {
  Edit edit;  // the same bytes read as i32 (a valid ggml type with no matmul kernel)
  edit.change_tensor = [](GgufTensor& t) {
    if (t.name == "blk.1.attn_q.weight") t.type = DType::kI32;
  };
  expect_error<UnsupportedError>(broken_copy(edit), "blk.1.attn_q.weight");
}

// A file without tokenizer keys (`slm convert` of a directory without tokenizer.json) loads
// like such a directory: no tokenizer, and asking for one is a clear error.
TEST(ModelErrors, MissingTokenizer) {
  Edit edit;
  edit.drop_key = [](std::string_view key) { return key.starts_with("tokenizer."); };
  const Model model = Model::load(broken_copy(edit));
  EXPECT_FALSE(model.has_tokenizer());
  try {
    (void)model.tokenizer();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer"), std::string::npos) << e.what();
  }
}

// A tokenizer that is there but broken is still an error.
TEST(ModelErrors, IncompleteTokenizer) {
  Edit edit;
  edit.drop_key = [](std::string_view key) { return key == "tokenizer.ggml.tokens"; };
  expect_error<FormatError>(broken_copy(edit), "tokenizer.ggml.tokens");
}

TEST(ModelErrors, TruncatedFile) {
  const std::string path = test::temp_dir() / "truncated.gguf";
  std::filesystem::copy_file(SLM_BUNDLED_MODEL, path);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 1000);
  expect_error<FormatError>(path, "truncated.gguf");
}

}  // namespace
}  // namespace slm
