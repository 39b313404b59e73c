#include "src/model/hf_names.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace slm {
namespace {

// '#' stands for a number: the layer, then (experts) the expert.
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
    // Biases (Phi-2, Phi-3, StarCoder2).
    {"output_norm.bias", "model.norm.bias"},
    {"output.bias", "lm_head.bias"},
    {"blk.#.attn_norm.bias", "model.layers.#.input_layernorm.bias"},
    {"blk.#.attn_output.bias", "model.layers.#.self_attn.o_proj.bias"},
    {"blk.#.ffn_norm.bias", "model.layers.#.post_attention_layernorm.bias"},
    {"blk.#.ffn_up.bias", "model.layers.#.mlp.up_proj.bias"},
    {"blk.#.ffn_down.bias", "model.layers.#.mlp.down_proj.bias"},
    // Mixture of experts (Qwen2-MoE, Qwen3-MoE): router, experts (second '#': the expert),
    // shared expert and its gate.
    {"blk.#.ffn_gate_inp.weight", "model.layers.#.mlp.gate.weight"},
    {"blk.#.ffn_gate.#.weight", "model.layers.#.mlp.experts.#.gate_proj.weight"},
    {"blk.#.ffn_up.#.weight", "model.layers.#.mlp.experts.#.up_proj.weight"},
    {"blk.#.ffn_down.#.weight", "model.layers.#.mlp.experts.#.down_proj.weight"},
    {"blk.#.ffn_gate_inp_shexp.weight", "model.layers.#.mlp.shared_expert_gate.weight"},
    {"blk.#.ffn_gate_shexp.weight", "model.layers.#.mlp.shared_expert.gate_proj.weight"},
    {"blk.#.ffn_up_shexp.weight", "model.layers.#.mlp.shared_expert.up_proj.weight"},
    {"blk.#.ffn_down_shexp.weight", "model.layers.#.mlp.shared_expert.down_proj.weight"},
    {"blk.#.post_attention_norm.weight", "model.layers.#.post_attention_layernorm.weight"},
    {"blk.#.post_ffw_norm.weight", "model.layers.#.post_feedforward_layernorm.weight"},
};

// Where an architecture's names differ from kCommon (looked up first).
struct ArchitectureName {
  std::string_view architecture;
  NamePair names;
};
constexpr ArchitectureName kOverrides[] = {
    {"phi2", {"output_norm.weight", "model.final_layernorm.weight"}},
    {"phi2", {"output_norm.bias", "model.final_layernorm.bias"}},
    {"phi2", {"blk.#.attn_output.weight", "model.layers.#.self_attn.dense.weight"}},
    {"phi2", {"blk.#.attn_output.bias", "model.layers.#.self_attn.dense.bias"}},
    {"phi2", {"blk.#.ffn_up.weight", "model.layers.#.mlp.fc1.weight"}},
    {"phi2", {"blk.#.ffn_up.bias", "model.layers.#.mlp.fc1.bias"}},
    {"phi2", {"blk.#.ffn_down.weight", "model.layers.#.mlp.fc2.weight"}},
    {"phi2", {"blk.#.ffn_down.bias", "model.layers.#.mlp.fc2.bias"}},
    {"phi3", {"blk.#.attn_qkv.weight", "model.layers.#.self_attn.qkv_proj.weight"}},
    {"phi3", {"blk.#.ffn_up.weight", "model.layers.#.mlp.gate_up_proj.weight"}},
    {"starcoder2", {"blk.#.ffn_up.weight", "model.layers.#.mlp.c_fc.weight"}},
    {"starcoder2", {"blk.#.ffn_up.bias", "model.layers.#.mlp.c_fc.bias"}},
    {"starcoder2", {"blk.#.ffn_down.weight", "model.layers.#.mlp.c_proj.weight"}},
    {"starcoder2", {"blk.#.ffn_down.bias", "model.layers.#.mlp.c_proj.bias"}},
    // Mixtral (the llama architecture with experts): block_sparse_moe, w1 = gate, w3 = up,
    // w2 = down.
    {"llama", {"blk.#.ffn_gate_inp.weight", "model.layers.#.block_sparse_moe.gate.weight"}},
    {"llama", {"blk.#.ffn_gate.#.weight", "model.layers.#.block_sparse_moe.experts.#.w1.weight"}},
    {"llama", {"blk.#.ffn_up.#.weight", "model.layers.#.block_sparse_moe.experts.#.w3.weight"}},
    {"llama", {"blk.#.ffn_down.#.weight", "model.layers.#.block_sparse_moe.experts.#.w2.weight"}},
    {"phimoe", {"blk.#.ffn_gate_inp.weight", "model.layers.#.block_sparse_moe.gate.weight"}},
    {"phimoe", {"blk.#.ffn_gate.#.weight", "model.layers.#.block_sparse_moe.experts.#.w1.weight"}},
    {"phimoe", {"blk.#.ffn_up.#.weight", "model.layers.#.block_sparse_moe.experts.#.w3.weight"}},
    {"phimoe", {"blk.#.ffn_down.#.weight", "model.layers.#.block_sparse_moe.experts.#.w2.weight"}},
    // Gemma 2/3: a norm before the MLP and one after it (post_attention_layernorm is the
    // attention output's norm, as in OLMo 2).
    {"gemma2", {"blk.#.ffn_norm.weight", "model.layers.#.pre_feedforward_layernorm.weight"}},
    {"gemma3", {"blk.#.ffn_norm.weight", "model.layers.#.pre_feedforward_layernorm.weight"}},
};

// "blk.12.ffn_gate.3.weight" → ("blk.#.ffn_gate.#.weight", {"12", "3"}): every number between
// dots (the layer, and an expert) becomes '#'.
std::pair<std::string, std::vector<std::string_view>> split_numbers(std::string_view name) {
  std::string pattern;
  std::vector<std::string_view> numbers;
  size_t start = 0;
  while (start <= name.size()) {
    const size_t end = std::min(name.find('.', start), name.size());
    const std::string_view part = name.substr(start, end - start);
    const bool number = !part.empty() && std::all_of(part.begin(), part.end(), [](char ch) {
      return std::isdigit(static_cast<unsigned char>(ch));
    });
    if (start > 0) pattern += '.';
    if (number) numbers.push_back(part);
    pattern += number ? std::string_view("#") : part;
    start = end + 1;
  }
  return {pattern, numbers};
}

// The pattern with its '#'s replaced by `numbers` in order.
std::string with_numbers(std::string_view pattern, const std::vector<std::string_view>& numbers) {
  std::string out(pattern);
  size_t at = 0;
  for (std::string_view n : numbers) {
    at = out.find('#', at);
    if (at == std::string::npos) break;
    out.replace(at, 1, n);
    at += n.size();
  }
  return out;
}

}  // namespace

std::string hf_tensor_name(std::string_view architecture, std::string_view gguf_name) {
  const auto [pattern, numbers] = split_numbers(gguf_name);
  for (const ArchitectureName& o : kOverrides) {
    if (o.architecture == architecture && o.names.gguf == pattern) {
      return with_numbers(o.names.hf, numbers);
    }
  }
  for (const NamePair& p : kCommon) {
    if (p.gguf == pattern) return with_numbers(p.hf, numbers);
  }
  return {};
}

}  // namespace slm
