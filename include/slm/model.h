// Model: the immutable weights, configuration and tokenizer of one model file, shared by any
// number of Sessions and threads. Session: one sequence of tokens with its own KV cache.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "slm/sampler.h"
#include "slm/tokenizer.h"

namespace slm {

// Element type of a session's KV cache. kQ8_0: ggml Q8_0 blocks (34 bytes per 32 elements,
// 0.53× F16), for models whose head_dim is a multiple of 32 (else Session throws UnsupportedError).
enum class KvType { kF32, kF16, kQ8_0 };

struct LoadOptions {
  // false (the default): read the file into huge-page-backed memory, so no page faults slow the
  // tokens down (the faster and steadier decode, docs/performance.md). true: mmap the file (fast
  // start, pages shared between processes).
  bool use_mmap = false;
  // "q8_0", "q4_0" or "q4_k": converts every F32/F16/BF16 weight matrix to this type once at
  // load (the same bytes `slm quantize` writes; rows that are not whole blocks: q4_k tries q5_0,
  // else the matrix stays as stored), so it runs as that type. Empty: weights run as stored.
  // Norms and other vectors stay F32. The original weights stay mapped (or read) as well.
  std::string quantize;
  // Called after each matrix `quantize` converts: matrices done of all, and the bytes of the
  // matrices looked at so far, before and after.
  std::function<void(size_t done, size_t total, uint64_t bytes_before, uint64_t bytes_after)>
      on_quantize = nullptr;
};

struct ModelInfo {
  std::string architecture;  // e.g. "llama"
  std::string name;          // general.name, may be empty
  int32_t vocab_size = 0;
  int32_t context_length = 0;  // the model's trained context
  int32_t embedding_length = 0;
  int32_t block_count = 0;
  int32_t head_count = 0;
  int32_t head_count_kv = 0;
  int32_t head_dim = 0;
  int32_t feed_forward_length = 0;
  uint64_t parameter_count = 0;
  uint64_t weight_bytes = 0;  // bytes of tensor data
  std::string weight_types;   // e.g. "q8_0 x32, f32 x16"
  // With LoadOptions::quantize: weight_bytes before the conversion (0 without).
  uint64_t weight_bytes_before_quantize = 0;
  // Weight bytes the kernel set rewrote at load into the layout its tiles read fastest (Q8_0
  // and Q4_0 rows interleaved 8 by 8 on AVX2), in place: no memory is added. 0 with use_mmap,
  // whose pages stay the file's (except matrices converted by LoadOptions::quantize).
  uint64_t weight_bytes_repacked = 0;
};

class Model {
 public:
  struct Impl;
  // Loads a GGUF file or a Hugging Face model directory (config.json, model.safetensors or
  // model.safetensors.index.json and its shards, tokenizer.json when there is one).
  // Throws slm::Error (FormatError, UnsupportedError, IoError).
  static Model load(const std::string& path, const LoadOptions& options = {});
  // The same, with `tokenizer` in place of the model file's own (e.g. Tokenizer::from_file of a
  // tokenizer.json). It must not have more tokens than the model has embeddings.
  static Model load(const std::string& path, const LoadOptions& options, Tokenizer tokenizer);

  const ModelInfo& info() const;
  // A directory without tokenizer.json loads without a tokenizer: it runs on token ids, and
  // tokenizer() throws InvalidArgumentError saying so.
  bool has_tokenizer() const;
  const Tokenizer& tokenizer() const;
  // Whether `id` ends generation: the tokenizer's EOS/EOT, and for a Hugging Face directory
  // every eos_token_id of config.json and generation_config.json (a number or a list).
  bool is_eog(TokenId id) const;
  // The tokenizer's BOS, else generation_config.json's (or config.json's) bos_token_id; -1 when
  // there is none.
  TokenId bos_id() const;
  // The Jinja chat template: GGUF `tokenizer.chat_template`, or tokenizer_config.json's
  // `chat_template` (its "default" entry when it is a list). Empty when the model has none.
  const std::string& chat_template() const;

  const std::shared_ptr<const Impl>& impl() const { return impl_; }

 private:
  explicit Model(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  // Both load()s: the file's own tokenizer when `tokenizer` is empty.
  static Model load_impl(const std::string& path, const LoadOptions& options,
                         std::optional<Tokenizer> tokenizer);
  std::shared_ptr<const Impl> impl_;
};

struct EmbedOptions;

struct KvPoolOptions {
  KvType kv_type = KvType::kF16;
  int32_t block_tokens = 32;  // positions per block
  size_t budget_bytes = 0;    // for all its sessions together; 0: one context of the model
                              // (capped at 4096 positions)
  // When the budget is used up: false, the session that needs a block gets OutOfMemoryError;
  // true, the least recently used idle session that is not pinned (Session::pin) and holds a
  // block no other session holds loses its cached sequence. It learns it on its next call:
  // eval, rewind(n > 0), fork and save_state throw EvictedError and leave it empty; prompt,
  // reset and load_state simply start from empty. (position() and tokens() describe the lost
  // sequence until that call.)
  bool evict = false;
};

// A KV cache pool that many sessions of one model share (SessionOptions::kv_pool): one memory
// budget, and prefix sharing between unrelated sessions. Each full block of a sequence is
// published under a hash of all its tokens from position 0 on (and the model); a session whose
// prompt starts with the same whole blocks takes them instead of computing them (the tokens are
// compared too, so a hash collision is never a wrong block). Blocks no session holds any more
// stay cached until their memory is needed (the least recently released first). Thread-safe:
// sessions on different threads may use one pool.
class KvPool {
 public:
  struct Impl;
  // Throws InvalidArgumentError for a block size ≤ 0 or a budget below one block.
  explicit KvPool(const Model& model, const KvPoolOptions& options = {});
  ~KvPool();
  KvPool(const KvPool&) = delete;
  KvPool& operator=(const KvPool&) = delete;

  const Model& model() const;
  size_t block_bytes() const;    // one block of block_tokens positions, all layers, K and V
  size_t budget_bytes() const;   // the most memory it takes (whole blocks)
  size_t bytes() const;          // memory taken so far
  size_t blocks_in_use() const;  // held by some session
  size_t cached_blocks() const;  // held by none, kept for prefix reuse until memory is needed
  const std::unique_ptr<Impl>& impl() const { return impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

struct SessionOptions {
  int32_t context_length = 0;  // 0: the model's, capped at 4096
  int32_t threads = 0;         // 0: all cores
  KvType kv_type = KvType::kF16;
  // The KV cache is paged: blocks of kv_block_tokens positions, taken from a pool as the sequence
  // grows (memory follows what is cached, not the context length). kv_budget_bytes caps the
  // pool; 0: enough for one full context. A fork shares its parent's pool.
  int32_t kv_block_tokens = 32;
  size_t kv_budget_bytes = 0;
  // A pool shared with other sessions of the same model: its KV type, block size and budget
  // apply (the three fields above are ignored), and eval()/prompt() on a fresh or block-aligned
  // sequence take the prompt's whole blocks that any session of the pool published (not for a
  // model with sliding-window layers: its sessions share the budget only).
  std::shared_ptr<KvPool> kv_pool = nullptr;
  // eval() runs longer inputs as consecutive passes of at most this many tokens (the logits are
  // exactly those of one pass). Sliding-window layers (Mistral, Gemma 2/3, Phi-3) keep only
  // their window plus one such chunk of positions, so this also bounds their cache.
  int32_t prefill_chunk_tokens = 512;
};

class Session {
 public:
  explicit Session(const Model& model, const SessionOptions& options = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Appends `tokens` at the end of the sequence in one forward pass and returns the logits
  // (vocab_size floats per row) of the last token, or of every token when all_logits is set.
  // Without all_logits, whole KV blocks that the pool holds for the same tokens are taken
  // instead of computed (bit-identical results). The returned span stays valid until the next
  // call. Throws InvalidArgumentError for ids out of range or when the tokens do not fit in the
  // context; EvictedError (the session is then empty) when an evicting pool took its blocks. An
  // input longer than SessionOptions::prefill_chunk_tokens runs chunk by chunk; if a later chunk
  // fails (the KV budget), the sequence is rewound to where it was, or, where sliding-window
  // layers have already released the rows that needs, keeps the chunks done (position() says
  // how far).
  std::span<const float> eval(std::span<const TokenId> tokens, bool all_logits = false);

  int32_t position() const;        // tokens in the sequence so far
  int32_t context_length() const;  // the most it can hold
  void reset();                    // forget the sequence (its KV blocks go back to the pool)
  // Keeps the first n tokens (n ≤ position()) and forgets the rest: the next eval continues
  // from position n, exactly as if the later tokens had never been evaluated. Sliding-window
  // layers release rows that no later query reads, so rewinding further back than their window
  // (to n > 0) can be impossible: InvalidArgumentError (rewinding to 0 always works).
  void rewind(int32_t n);
  // A second session on the same model whose sequence is a copy of this one. They share the
  // cached positions' memory until either writes (copy on write), and share the KV pool and its
  // budget. Each session is for one thread at a time; different sessions may run concurrently.
  Session fork() const;
  size_t kv_bytes() const;  // KV memory this sequence holds (shared blocks counted in full)
  // A pinned session is never evicted from an evicting KvPool (the default: unpinned).
  void pin(bool pinned = true);

  // Prefix reuse: makes the sequence `tokens`, keeping the longest prefix of them it already
  // holds (a system prompt, a document), then taking whole blocks of the next tokens that the
  // pool holds (published by any session), and evaluating only the rest. The last token is
  // always evaluated, so its logits (or every evaluated token's, with all_logits) are returned.
  // After an eviction it simply starts from empty (no EvictedError).
  struct PromptResult {
    int32_t reused = 0;  // tokens taken from the cache, not computed
    std::span<const float> logits;
  };
  PromptResult prompt(std::span<const TokenId> tokens, bool all_logits = false);
  // prompt()'s first half: rewinds to the longest prefix of `tokens` the sequence holds (leaving
  // at least the last token to evaluate; 0 where sliding-window layers no longer hold what that
  // prefix needs) and returns its length; evaluate tokens from there on (e.g. with generate) to
  // continue.
  int32_t rewind_to_common_prefix(std::span<const TokenId> tokens);
  const std::vector<TokenId>& tokens() const;  // the sequence so far

  // Writes the sequence (its tokens and their cached keys and values) to a file, and reads one
  // back in place of the current sequence: evaluation then continues bit-identically. Throws
  // IoError, or FormatError for a file that is malformed or was written for another model or KV
  // type.
  void save_state(const std::string& path) const;
  void load_state(const std::string& path);

  const Model& model() const;

 private:
  struct Impl;
  friend std::vector<float> embed(const Model&, std::span<const TokenId>, const EmbedOptions&);
  friend struct SessionAccess;  // batched evaluation (slm/batch.h)
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What generate does when the sequence reaches the session's context length.
enum class ContextPolicy {
  kStop,   // stop; GenerateResult::stopped_by_context says so
  kShift,  // drop the oldest tokens after the first keep_tokens (half of the rest) and go on;
           // the kept tail is re-evaluated at its new positions, so every logit is exactly what
           // a fresh session given the shortened sequence would compute
};

// How embed() pools the final hidden states of a text's tokens.
enum class Pooling {
  kModel,  // what the model's metadata says (GGUF {arch}.pooling_type: mean or last), else mean
  kMean,   // the average over all tokens
  kLast,   // the last token's (what a causal model has read everything at)
};

struct EmbedOptions {
  Pooling pooling = Pooling::kModel;
  bool normalize = true;  // scale to unit L2 norm (cosine similarity is then a dot product)
  int32_t threads = 0;    // 0: all cores
};

// The embedding of a token sequence: its final hidden states (after the output norm) pooled,
// n_embd floats. Throws InvalidArgumentError for no tokens, ids out of range, or more tokens
// than the model's context.
std::vector<float> embed(const Model& model, std::span<const TokenId> tokens,
                         const EmbedOptions& options = {});
// The same for a text, tokenized with BOS as the model asks.
std::vector<float> embed(const Model& model, std::string_view text,
                         const EmbedOptions& options = {});

struct GenerateOptions {
  int32_t max_tokens = 128;
  SamplingOptions sampling{};
  bool ignore_eos = false;  // keep going past end-of-generation tokens
  // Further ids that end generation like the model's own end-of-generation tokens.
  std::vector<TokenId> stop_tokens{};
  // Generation stops when the text contains one of these; the text from the stop string on is
  // not delivered. Text that may be the start of a stop string is held back until it is not.
  // (Needs a tokenizer; ignored without one.)
  std::vector<std::string> stop_strings{};
  ContextPolicy on_full_context = ContextPolicy::kStop;
  int32_t keep_tokens = 0;  // kShift: the first tokens always kept (e.g. the system prompt)
  // Called with each complete UTF-8 piece as it is generated (piece may be empty while a
  // multi-byte character is incomplete or held back); return false to stop. A final call with
  // id -1 delivers text still pending at the end.
  std::function<bool(std::string_view piece, TokenId id)> on_token{};
};

struct GenerateResult {
  std::vector<TokenId> tokens;  // generated ids (the prompt not included)
  int32_t prompt_tokens = 0;
  double prompt_ms = 0;  // time of the prompt's forward pass
  double generate_ms = 0;  // time of all generation steps
  bool stopped_by_eos = false;      // an end-of-generation token came (not included in tokens)
  bool stopped_by_context = false;  // the context is full
  bool stopped_by_string = false;   // a stop string came (its text not delivered)
  int32_t context_shifts = 0;       // times the oldest tokens were dropped (ContextPolicy::kShift)
};

// Evaluates `prompt` in `session` and samples up to max_tokens tokens after it.
GenerateResult generate(Session& session, std::span<const TokenId> prompt,
                        const GenerateOptions& options);

}  // namespace slm
