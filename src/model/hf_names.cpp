#include "src/model/hf_names.h"

#include <cctype>

namespace slm {
namespace {

// '#' stands for the layer number.
struct NamePair {
  std::string_view gguf, hf;
};

// transformers' Llama names, which most architectures share.
constexpr NamePair kCommon[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
    {"blk.#.attn_norm.weight", "model.layers.#.input_layernorm.weight"},
    {"blk.#.attn_q.weight", "model.layers.#.self_attn.q_proj.weight"},
    {"blk.#.attn_k.weight", "model.layers.#.self_attn.k_proj.weight"},
    {"blk.#.attn_v.weight", "model.layers.#.self_attn.v_proj.weight"},
    {"blk.#.attn_q.bias", "model.layers.#.self_attn.q_proj.bias"},
    {"blk.#.attn_k.bias", "model.layers.#.self_attn.k_proj.bias"},
    {"blk.#.attn_v.bias", "model.layers.#.self_attn.v_proj.bias"},
    {"blk.#.attn_output.weight", "model.layers.#.self_attn.o_proj.weight"},
    {"blk.#.attn_q_norm.weight", "model.layers.#.self_attn.q_norm.weight"},
    {"blk.#.attn_k_norm.weight", "model.layers.#.self_attn.k_norm.weight"},
    {"blk.#.ffn_norm.weight", "model.layers.#.post_attention_layernorm.weight"},
    {"blk.#.ffn_gate.weight", "model.layers.#.mlp.gate_proj.weight"},
    {"blk.#.ffn_up.weight", "model.layers.#.mlp.up_proj.weight"},
    {"blk.#.ffn_down.weight", "model.layers.#.mlp.down_proj.weight"},
    {"blk.#.post_attention_norm.weight", "model.layers.#.post_attention_layernorm.weight"},
    {"blk.#.post_ffw_norm.weight", "model.layers.#.post_feedforward_layernorm.weight"},
};

// Where an architecture's names differ from kCommon (looked up first).
struct ArchitectureName {
  std::string_view architecture;
  NamePair names;
};
constexpr ArchitectureName kOverrides[] = {
    // Gemma 2/3: a norm before the MLP and one after it (post_attention_layernorm is the
    // attention output's norm, as in OLMo 2).
    {"gemma2", {"blk.#.ffn_norm.weight", "model.layers.#.pre_feedforward_layernorm.weight"}},
    {"gemma3", {"blk.#.ffn_norm.weight", "model.layers.#.pre_feedforward_layernorm.weight"}},
};

// "blk.12.attn_q.weight" → ("blk.#.attn_q.weight", "12"); other names unchanged.
std::pair<std::string, std::string_view> split_layer(std::string_view name) {
  constexpr std::string_view kBlock = "blk.";
  if (name.substr(0, kBlock.size()) != kBlock) return {std::string(name), {}};
  size_t end = kBlock.size();
  while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
  if (end == kBlock.size()) return {std::string(name), {}};
  return {std::string(kBlock) + "#" + std::string(name.substr(end)),
          name.substr(kBlock.size(), end - kBlock.size())};
}

std::string with_layer(std::string_view pattern, std::string_view layer) {
  std::string out(pattern);
  if (const size_t at = out.find('#'); at != std::string::npos) out.replace(at, 1, layer);
  return out;
}

}  // namespace

std::string hf_tensor_name(std::string_view architecture, std::string_view gguf_name) {
  const auto [pattern, layer] = split_layer(gguf_name);
  for (const ArchitectureName& o : kOverrides) {
    if (o.architecture == architecture && o.names.gguf == pattern) {
      return with_layer(o.names.hf, layer);
    }
  }
  for (const NamePair& p : kCommon) {
    if (p.gguf == pattern) return with_layer(p.hf, layer);
  }
  return {};
}

}  // namespace slm
