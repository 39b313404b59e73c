// config.json → ModelConfig: both transformers generations of keys, and clear errors naming the
// key for malformed files (HfConfigMalformed.*, run under ASan/UBSan in CI).
#include "src/model/hf_config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>

#include "slm/error.h"
#include "tests/test_data.h"

namespace slm {
namespace {

// A small valid Llama config without the key `drop`; `extra` holds further members, and a key
// named in `extra` replaces the default one (keys are never repeated).
std::string config(const std::string& extra = "", const std::string& drop = "") {
  std::string members[] = {
      R"("architectures": ["LlamaForCausalLM"])",
      R"("hidden_size": 64)",
      R"("num_hidden_layers": 2)",
      R"("num_attention_heads": 4)",
      R"("num_key_value_heads": 2)",
      R"("intermediate_size": 160)",
      R"("vocab_size": 512)",
      R"("max_position_embeddings": 512)",
      R"("rms_norm_eps": 1e-06)",
      R"("eos_token_id": 2)",
  };
  std::string out = "{";
  for (const std::string& m : members) {
    const std::string key = m.substr(1, m.find('"', 1) - 1);
    if (key == drop || extra.find('"' + key + '"') != std::string::npos) continue;
    out += (out.size() > 1 ? ", " : "") + m;
  }
  if (!extra.empty()) out += ", " + extra;
  return out + "}";
}

HfConfig read(const std::string& text) {
  const std::string path = test::temp_dir() / "config.json";
  std::ofstream(path) << text;
  return read_hf_config(path);
}

template <class E = FormatError>
void expect_error(const std::string& text, const std::vector<std::string>& needles) {
  try {
    read(text);
    FAIL() << "expected an error mentioning '" << needles.front() << "' for " << text;
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
    for (const std::string& needle : needles) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
}

TEST(HfConfig, ReadsLlama) {
  const HfConfig hf =
      read(config(R"("rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"})"));
  const ModelConfig& c = hf.model;
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_EQ(c.head_dim, 16);  // hidden_size / heads when head_dim is absent
  EXPECT_EQ(c.n_rot, 16);
  EXPECT_EQ(c.n_ff, 160);
  EXPECT_EQ(c.n_vocab, 512);
  EXPECT_EQ(c.n_ctx_train, 512);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_FLOAT_EQ(c.rope_freq_base, 500000.0f);
  EXPECT_EQ(c.rope_layout, RopeLayout::kHalfSplit);
  EXPECT_FALSE(hf.tie_word_embeddings);
  EXPECT_EQ(hf.eos_ids, std::vector<int32_t>{2});
}

TEST(HfConfig, ReadsOlderTransformersKeys) {
  const HfConfig hf = read(config(
      R"("rope_theta": 1000000, "rope_scaling": null, "head_dim": 8, "tie_word_embeddings": true, "eos_token_id": [2, 7])"));
  EXPECT_FLOAT_EQ(hf.model.rope_freq_base, 1e6f);
  EXPECT_EQ(hf.model.head_dim, 8);
  EXPECT_TRUE(hf.tie_word_embeddings);
  EXPECT_EQ(hf.eos_ids, (std::vector<int32_t>{2, 7}));
  // Defaults: kv heads = heads, theta 10000.
  const HfConfig d = read(config("", "num_key_value_heads"));
  EXPECT_EQ(d.model.n_head_kv, 4);
  EXPECT_FLOAT_EQ(d.model.rope_freq_base, 10000.0f);
}

TEST(HfConfig, MistralWithoutSlidingWindowIsLlama) {
  const HfConfig hf =
      read(config(R"("architectures": ["MistralForCausalLM"], "sliding_window": null)"));
  EXPECT_EQ(hf.model.architecture, "llama");
  EXPECT_TRUE(hf.model.sliding_window.empty());
  const HfConfig wide =
      read(config(R"("architectures": ["MistralForCausalLM"], "sliding_window": 4096)"));
  EXPECT_EQ(wide.model.n_layer, 2);
  EXPECT_TRUE(wide.model.sliding_window.empty());  // never slides within 512 positions
}

TEST(HfConfig, MistralSlidingWindowOnEveryLayer) {
  const HfConfig hf =
      read(config(R"("architectures": ["MistralForCausalLM"], "sliding_window": 16)"));
  EXPECT_EQ(hf.model.sliding_window, (std::vector<int32_t>{16, 16}));
  EXPECT_EQ(hf.model.window(1), 16);
}

TEST(HfConfig, QwenArchitecturesNameTheirPerLayerTensors) {
  const HfConfig qwen2 = read(config(R"("architectures": ["Qwen2ForCausalLM"])"));
  EXPECT_EQ(qwen2.model.architecture, "qwen2");
  EXPECT_TRUE(qwen2.model.qkv_bias);
  EXPECT_FALSE(qwen2.model.qk_norm);
  const HfConfig qwen3 = read(config(R"("architectures": ["Qwen3ForCausalLM"])"));
  EXPECT_EQ(qwen3.model.architecture, "qwen3");
  EXPECT_FALSE(qwen3.model.qkv_bias);
  EXPECT_TRUE(qwen3.model.qk_norm);
  EXPECT_FALSE(read(config("")).model.qkv_bias);
  // Qwen configs carry a sliding_window that applies only with use_sliding_window.
  const HfConfig off = read(config(
      R"("architectures": ["Qwen2ForCausalLM"], "sliding_window": 16, "use_sliding_window": false)"));
  EXPECT_EQ(off.model.n_layer, 2);
  expect_error<UnsupportedError>(
      config(
          R"("architectures": ["Qwen2ForCausalLM"], "sliding_window": 16, "use_sliding_window": true)"),
      {"sliding_window = 16"});
}

// transformers' _compute_llama3_parameters for head_dim 16, theta 500000, L = 64, factor 32,
// low 1, high 4: wavelengths above 64 are slowed 32×, below 16 kept, in between blended.
TEST(HfConfig, Llama3RopeScaling) {
  const HfConfig hf = read(config(
      R"("head_dim": 16, "rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64})"));
  const std::vector<float>& f = hf.model.rope_freq_factors;
  ASSERT_EQ(f.size(), 8u);
  EXPECT_FLOAT_EQ(f[0], 1.0f);   // λ = 2π: high frequency, kept
  EXPECT_FLOAT_EQ(f[7], 32.0f);  // λ = 2π · 500000^(7/8): low frequency, slowed
  // λ_1 = 2π · 500000^(1/8) ≈ 32.7: s = (64/λ − 1) / 3, divisor 1 / ((1 − s)/32 + s).
  const double wavelen = 2 * 3.14159265358979323846 * std::pow(500000.0, 1.0 / 8);
  const double s = (64 / wavelen - 1) / 3;
  EXPECT_NEAR(f[1], 1 / ((1 - s) / 32 + s), 1e-5);
  expect_error(
      config(
          R"("rope_parameters": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0})"),
      {"'original_max_position_embeddings'", "missing"});
  expect_error(
      config(
          R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64})"),
      {"'high_freq_factor'"});
}

TEST(HfConfig, Phi2AndStarcoder2) {
  const HfConfig phi2 = read(config(
      R"("architectures": ["PhiForCausalLM"], "hidden_act": "gelu_new", "layer_norm_eps": 1e-05, "partial_rotary_factor": 0.4, "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"})"));
  const ModelConfig& c = phi2.model;
  EXPECT_EQ(c.architecture, "phi2");
  EXPECT_EQ(c.n_rot, 6);  // int(16 · 0.4), as transformers truncates
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_EQ(c.norm_kind, NormKind::kLayer);
  EXPECT_EQ(c.ffn_kind, FfnKind::kGelu);
  EXPECT_TRUE(c.norm_bias && c.qkv_bias && c.ffn_bias && c.attn_output_bias && c.output_bias);
  EXPECT_TRUE(c.parallel_block);
  // transformers 5.x keeps the factor inside rope_parameters too.
  EXPECT_EQ(
      read(
          config(
              R"("architectures": ["PhiForCausalLM"], "hidden_act": "gelu_new", "rope_parameters": {"rope_theta": 1e4, "partial_rotary_factor": 0.5})"))
          .model.n_rot,
      8);
  const HfConfig sc2 = read(config(
      R"("architectures": ["Starcoder2ForCausalLM"], "hidden_act": "gelu_pytorch_tanh", "norm_epsilon": 2e-05, "use_bias": true, "sliding_window": 16)"));
  EXPECT_EQ(sc2.model.architecture, "starcoder2");
  EXPECT_FLOAT_EQ(sc2.model.norm_eps, 2e-5f);
  EXPECT_FALSE(sc2.model.parallel_block || sc2.model.output_bias);
  EXPECT_EQ(sc2.model.sliding_window, (std::vector<int32_t>{16, 16}));
}

// transformers' _compute_longrope_parameters, both generations of keys: Phi-3.5's older
// rope_scaling {type: longrope} with original_max_position_embeddings at the top level, and 5.x's
// rope_parameters.
TEST(HfConfig, Phi3LongRope) {
  const std::string factors =
      R"("short_factor": [1, 1, 1, 1, 1, 1, 1, 2], "long_factor": [1, 2, 3, 4, 5, 6, 7, 8])";
  for (
      const std::string& keys :
      {R"("max_position_embeddings": 4096, "original_max_position_embeddings": 64, "rope_scaling": {"type": "longrope", )" +
           factors + "}",
       R"("max_position_embeddings": 4096, "rope_parameters": {"rope_type": "longrope", "rope_theta": 10000.0, "original_max_position_embeddings": 64, )" +
           factors + "}",
       // "su", LongRoPE's first name in Phi-3 configs.
       R"("max_position_embeddings": 4096, "original_max_position_embeddings": 64, "rope_scaling": {"type": "su", )" +
           factors + "}"}) {
    const HfConfig hf = read(config(R"("architectures": ["Phi3ForCausalLM"], )" + keys));
    const ModelConfig& c = hf.model;
    EXPECT_EQ(c.architecture, "phi3");
    EXPECT_TRUE(c.fused_gate_up);
    EXPECT_EQ(c.rope_freq_factors, (std::vector<float>{1, 1, 1, 1, 1, 1, 1, 2}));
    EXPECT_EQ(c.rope_freq_factors_long, (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));
    EXPECT_EQ(c.rope_long_from, 64);
    // s = 4096 / 64 = 64: sqrt(1 + ln 64 / ln 64) = sqrt(2).
    EXPECT_FLOAT_EQ(c.rope_attn_factor, float(std::sqrt(2.0)));
  }
  // An explicit attention_factor wins.
  EXPECT_FLOAT_EQ(
      read(
          config(
              R"("architectures": ["Phi3ForCausalLM"], "rope_parameters": {"rope_type": "longrope", "attention_factor": 1.5, "original_max_position_embeddings": 64, )" +
              factors + "}"))
          .model.rope_attn_factor,
      1.5f);
  expect_error(
      config(
          R"("architectures": ["Phi3ForCausalLM"], "rope_parameters": {"rope_type": "longrope", "short_factor": [1, 2], "long_factor": [1, 2]})"),
      {"'short_factor'", "2 values, expected 8"});
  expect_error(
      config(
          R"("architectures": ["Phi3ForCausalLM"], "rope_parameters": {"rope_type": "longrope", "short_factor": [1, 1, 1, 1, 1, 1, 1, 1], "long_factor": [1, 2, 3, 4, 5, 6, 7, "x"]})"),
      {"'long_factor'", "positive numbers"});
}

TEST(HfConfigMalformed, InvalidJson) {
  expect_error("{\"hidden_size\": ", {"invalid JSON"});
  expect_error("[]", {"not a JSON object"});
}

TEST(HfConfigMalformed, MissingKeys) {
  for (const char* key : {"hidden_size", "num_hidden_layers", "num_attention_heads",
                          "intermediate_size", "vocab_size"}) {
    expect_error(config("", key), {std::string("'") + key + "'", "missing"});
  }
  expect_error(config("", "architectures"), {"'architectures'", "LlamaForCausalLM"});
}

TEST(HfConfigMalformed, WrongTypes) {
  expect_error(config(R"("hidden_size": "64")"), {"'hidden_size'", "not an integer"});
  expect_error(config(R"("num_hidden_layers": 2.5)"), {"'num_hidden_layers'"});
  expect_error(config(R"("num_hidden_layers": -2)"), {"'num_hidden_layers'", "out of range"});
  expect_error(config(R"("vocab_size": 99999999999)"), {"'vocab_size'", "out of range"});
  expect_error(config(R"("rms_norm_eps": "small")"), {"'rms_norm_eps'"});
  expect_error(config(R"("rms_norm_eps": 0)"), {"'rms_norm_eps'", "positive"});
  expect_error(config(R"("rope_theta": -1)"), {"'rope_theta'"});
  expect_error(config(R"("rope_parameters": [1])"), {"'rope_parameters'"});
  expect_error(config(R"("rope_parameters": {"rope_theta": "x"})"), {"'rope_theta'"});
  expect_error(config(R"("tie_word_embeddings": 1)"), {"'tie_word_embeddings'"});
  expect_error(config(R"("eos_token_id": "</s>")"), {"'eos_token_id'"});
  expect_error(config(R"("architectures": "LlamaForCausalLM")"), {"'architectures'"});
  expect_error(config(R"("architectures": [])"), {"'architectures'"});
  expect_error(config(R"("hidden_act": 3)"), {"'hidden_act'"});
}

TEST(HfConfigMalformed, InconsistentValues) {
  expect_error(config(R"("num_key_value_heads": 3)"), {"'num_key_value_heads'"});
  expect_error(config(R"("head_dim": 7)"), {"'head_dim'", "even"});
  expect_error(config(R"("sliding_window": -5)"), {"'sliding_window'"});
  expect_error(config(R"("partial_rotary_factor": 1.5)"), {"'partial_rotary_factor'", "exceeds 1"});
  expect_error(config(R"("partial_rotary_factor": 0.1)"), {"'partial_rotary_factor'", "even"});
}

// Older (transformers 4.x) Gemma 2/3 and SmolLM3 configs: no layer_types, the pattern from the
// class or sliding_window_pattern, rope_local_base_freq, no_rope_layer_interval.
TEST(HfConfig, GemmaFamilyDefaults) {
  const ModelConfig g2 = read(config(R"("architectures": ["Gemma2ForCausalLM"],
      "num_hidden_layers": 4, "sliding_window": 16, "query_pre_attn_scalar": 256,
      "attn_logit_softcapping": 50.0, "final_logit_softcapping": null)"))
                             .model;
  EXPECT_EQ(g2.sliding_window, (std::vector<int32_t>{16, 0, 16, 0}));
  EXPECT_TRUE(g2.layer_rope_base.empty());
  EXPECT_FLOAT_EQ(g2.attention_scale, 1.0f / 16);
  EXPECT_FLOAT_EQ(g2.attn_softcap, 50.0f);
  EXPECT_EQ(g2.final_softcap, 0.0f);
  EXPECT_FLOAT_EQ(g2.embedding_scale, 8.0f);
  EXPECT_EQ(g2.norm_weight_offset, 1.0f);
  EXPECT_EQ(g2.ffn_activation, FfnActivation::kGeluTanh);

  const ModelConfig g3 = read(config(R"("architectures": ["Gemma3ForCausalLM"],
      "num_hidden_layers": 4, "sliding_window": 16, "sliding_window_pattern": 2,
      "rope_theta": 1000000.0, "rope_local_base_freq": 5000.0)"))
                             .model;
  EXPECT_EQ(g3.sliding_window, (std::vector<int32_t>{16, 0, 16, 0}));
  EXPECT_EQ(g3.layer_rope_base, (std::vector<float>{5000, 1e6, 5000, 1e6}));
  const ModelConfig g3_default = read(config(R"("architectures": ["Gemma3ForCausalLM"],
      "num_hidden_layers": 7, "rope_theta": 1000000.0)"))
                                     .model;
  EXPECT_TRUE(g3_default.sliding_window.empty());  // no window: the layers do not slide
  EXPECT_EQ(g3_default.layer_rope_base, (std::vector<float>{1e4, 1e4, 1e4, 1e4, 1e4, 1e6, 1e4}));
  // Linear RoPE scaling: Gemma 3's global layers only (4.x rope_scaling, 5.x per layer type),
  // Llama's every layer.
  const ModelConfig g3_linear = read(config(R"("architectures": ["Gemma3ForCausalLM"],
      "num_hidden_layers": 7, "rope_scaling": {"rope_type": "linear", "factor": 8.0})"))
                                    .model;
  EXPECT_EQ(g3_linear.layer_rope_linear, (std::vector<float>{1, 1, 1, 1, 1, 8, 1}));
  const ModelConfig g3_linear5 = read(config(R"("architectures": ["Gemma3ForCausalLM"],
      "num_hidden_layers": 2, "sliding_window_pattern": 2, "rope_parameters": {
      "full_attention": {"rope_theta": 1e6, "rope_type": "linear", "factor": 4.0},
      "sliding_attention": {"rope_theta": 1e4, "rope_type": "default"}})"))
                                     .model;
  EXPECT_EQ(g3_linear5.layer_rope_linear, (std::vector<float>{1, 4}));
  EXPECT_EQ(g3_linear5.layer_rope_base, (std::vector<float>{1e4, 1e6}));
  const ModelConfig llama_linear =
      read(config(R"("rope_scaling": {"type": "linear", "factor": 2.0})")).model;
  EXPECT_EQ(llama_linear.layer_rope_linear, (std::vector<float>{2, 2}));

  const ModelConfig smol = read(config(R"("architectures": ["SmolLM3ForCausalLM"],
      "num_hidden_layers": 8, "no_rope_layer_interval": 4, "rope_theta": 2e6)"))
                               .model;
  EXPECT_EQ(smol.layer_rope_base, (std::vector<float>{2e6, 2e6, 2e6, 0, 2e6, 2e6, 2e6, 0}));

  const ModelConfig granite = read(config(R"("architectures": ["GraniteForCausalLM"],
      "embedding_multiplier": 12.0, "attention_multiplier": 0.015625, "residual_multiplier": 0.22,
      "logits_scaling": 8.0)"))
                                  .model;
  EXPECT_FLOAT_EQ(granite.embedding_scale, 12.0f);
  EXPECT_FLOAT_EQ(granite.attention_scale, 0.015625f);
  EXPECT_FLOAT_EQ(granite.residual_scale, 0.22f);
  EXPECT_FLOAT_EQ(granite.logit_scale, 0.125f);

  const ModelConfig olmo = read(config(R"("architectures": ["Olmo2ForCausalLM"])")).model;
  EXPECT_FALSE(olmo.pre_norms);
  EXPECT_TRUE(olmo.post_norms && olmo.qk_norm && olmo.qk_norm_whole);
}

TEST(HfConfigMalformed, UnsupportedFeatures) {
  expect_error<UnsupportedError>(
      config(R"("architectures": ["FalconForCausalLM"])"),
      {"FalconForCausalLM", "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM"});
  expect_error<UnsupportedError>(
      config(R"("rope_parameters": {"rope_theta": 1e4, "rope_type": "yarn"})"), {"yarn"});
  expect_error<UnsupportedError>(config(R"("rope_scaling": {"type": "dynamic", "factor": 2.0})"),
                                 {"rope_scaling", "dynamic"});
  expect_error<FormatError>(config(R"("rope_scaling": {"type": "linear"})"), {"factor"});
  expect_error<UnsupportedError>(config(R"("hidden_act": "gelu")"), {"gelu"});
  expect_error<UnsupportedError>(
      config(R"("architectures": ["PhiForCausalLM"], "hidden_act": "silu")"),
      {"hidden_act 'silu'", "gelu_new, gelu_pytorch_tanh"});
  expect_error<UnsupportedError>(
      config(
          R"("architectures": ["Starcoder2ForCausalLM"], "hidden_act": "gelu_pytorch_tanh", "use_bias": false)"),
      {"use_bias"});
  EXPECT_EQ(read(config(R"("use_bias": false)")).model.architecture, "llama");  // no biases anyway
  expect_error<UnsupportedError>(
      config(
          R"("architectures": ["PhiForCausalLM"], "hidden_act": "gelu_new", "qk_layernorm": true)"),
      {"qk_layernorm"});
  expect_error<UnsupportedError>(config(R"("attention_bias": true)"), {"attention_bias"});
  expect_error<UnsupportedError>(config(R"("sliding_window": 16)"),
                                 {"sliding_window = 16", "LlamaForCausalLM"});
}

TEST(HfConfigMalformed, MissingFile) {
  EXPECT_THROW(read_hf_config((test::temp_dir() / "absent.json").string()), IoError);
}

}  // namespace
}  // namespace slm
