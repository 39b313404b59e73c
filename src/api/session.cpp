#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "slm/error.h"
#include "src/api/kv_pool_impl.h"
#include "src/api/model_impl.h"
#include "src/graph/decoder.h"
#include "src/api/session_access.h"
#include "src/runtime/kv_state.h"
#include "src/runtime/paged_kv_cache.h"

namespace slm {
namespace {

// The model's default context is capped: a 128k-token cache for a chat would waste memory.
constexpr int32_t kDefaultContextCap = 4096;

int32_t checked_context_length(const ModelConfig& c, const SessionOptions& options) {
  if (options.context_length < 0) {
    throw InvalidArgumentError(fmt::format("context length {} is negative", options.context_length));
  }
  if (options.context_length > c.n_ctx_train) {
    throw InvalidArgumentError(fmt::format("context length {} exceeds the model's {}",
                                           options.context_length, c.n_ctx_train));
  }
  return options.context_length > 0 ? options.context_length
                                     : std::min(c.n_ctx_train, kDefaultContextCap);
}

KvElement kv_element(const ModelConfig& c, KvType type) {
  switch (type) {
    case KvType::kF32: return KvElement::kF32;
    case KvType::kF16: return KvElement::kF16;
    case KvType::kQ8_0:
      // Each head's key/value row is whole Q8_0 blocks (attention reads heads separately).
      if (c.head_dim % 32 != 0) {
        throw UnsupportedError(fmt::format(
            "a q8_0 KV cache needs a head size that is a multiple of 32; this model's is {} "
            "(use an f16 or f32 KV cache)",
            c.head_dim));
      }
      return KvElement::kQ8_0;
  }
  throw InvalidArgumentError(fmt::format("unknown KV type {}", int(type)));
}

std::shared_ptr<KvBlockPool> make_pool(const ModelConfig& c, const SessionOptions& options,
                                       int32_t context) {
  if (options.kv_block_tokens <= 0) {
    throw InvalidArgumentError(
        fmt::format("KV block size {} must be positive", options.kv_block_tokens));
  }
  const KvElement element = kv_element(c, options.kv_type);
  const int32_t B = options.kv_block_tokens;
  const size_t per_block = size_t(c.n_layer) * 2 * size_t(B) *
                           kv_row_bytes(element, size_t(c.n_head_kv) * size_t(c.head_dim));
  const size_t budget = options.kv_budget_bytes > 0
                            ? options.kv_budget_bytes
                            : (size_t(context) + size_t(B) - 1) / size_t(B) * per_block;
  if (budget < per_block) {
    throw InvalidArgumentError(fmt::format(
        "KV budget of {} bytes is less than one block of {} positions ({} bytes)", budget, B,
        per_block));
  }
  return std::make_shared<KvBlockPool>(c.n_layer, c.n_head_kv * c.head_dim, element, B, budget);
}

}  // namespace

struct Session::Impl {
  Impl(const Model& m, int threads, PagedKvCache cache)
      : model(m),
        decoder(m.impl()->config, m.impl()->weights),
        threads(threads),
        cache(std::move(cache)) {}

  Model model;  // keeps the weights alive
  Decoder decoder;
  int threads;
  PagedKvCache cache;
  std::vector<TokenId> tokens;  // the sequence: its size is the position
  std::vector<float> logits;
  int32_t chunk = SessionOptions{}.prefill_chunk_tokens;  // most tokens in one forward pass
  bool share_prefix = true;  // publish full blocks and adopt published ones (no window layers)

  // Chunk by chunk: every token's logits are bit-identical to one pass's (a matmul gives each
  // token of a batch what it gives that token alone, and attention reads the same cached rows),
  // while a sliding-window table releases what the next chunk no longer sees.
  void eval_chunks(std::span<const TokenId> input, bool all_logits) {
    const size_t V = size_t(model.impl()->config.n_vocab), n = input.size();
    const int32_t start = int32_t(tokens.size());
    for (size_t at = 0; at < n; at += size_t(chunk)) {
      const auto part = input.subspan(at, std::min(size_t(chunk), n - at));
      const bool last = at + part.size() == n;
      float* out = all_logits ? logits.data() + at * V : last ? logits.data() : nullptr;
      try {
        decoder.forward(part, int32_t(tokens.size()), cache, all_logits, out, threads);
      } catch (...) {
        if (cache.can_truncate(start)) {  // else the chunks done stay (see Session::eval)
          cache.truncate(start);
          tokens.resize(size_t(start));
        }
        throw;
      }
      tokens.insert(tokens.end(), part.begin(), part.end());
    }
  }

  // Throws for ids out of range or tokens past the context.
  void check(std::span<const TokenId> more) const;
  // Evaluates `more` after the sequence and publishes the blocks it fills.
  std::span<const float> run(std::span<const TokenId> more, bool all_logits);
  // Takes the pool's published blocks for the first of `more` (never its last token); returns
  // how many tokens they hold (now part of the sequence).
  int32_t adopt(std::span<const TokenId> more);
  // adopt() (when `reuse`) then run(); a pass that fails gives the adopted blocks back too, so
  // the sequence stays as it was.
  PromptResult extend(std::span<const TokenId> more, bool all_logits, bool reuse);
  // Whether the pool evicted the sequence since the last call; the session is then empty.
  bool lost(const PagedKvCache::Use& use) {
    if (use.evicted()) tokens.clear();
    return use.evicted();
  }

  KvStateShape state_shape() const {
    const ModelConfig& c = model.impl()->config;
    return {model.impl()->fingerprint, c.n_layer,
            kv_row_bytes(cache.element(), size_t(c.n_head_kv) * size_t(c.head_dim)),
            c.sliding_window};
  }
};

Session::Session(const Model& model, const SessionOptions& options) {
  const ModelConfig& c = model.impl()->config;
  if (options.threads < 0) {
    throw InvalidArgumentError(fmt::format("thread count {} is negative", options.threads));
  }
  const int threads = options.threads > 0
                          ? options.threads
                          : int(std::max(1u, std::thread::hardware_concurrency()));
  const int32_t context = checked_context_length(c, options);
  if (options.prefill_chunk_tokens <= 0) {
    throw InvalidArgumentError(
        fmt::format("prefill chunk of {} tokens must be positive", options.prefill_chunk_tokens));
  }
  std::shared_ptr<KvBlockPool> pool;
  if (options.kv_pool != nullptr) {
    if (options.kv_pool->model().impl() != model.impl()) {
      throw InvalidArgumentError("the KV pool was made for another model");
    }
    pool = options.kv_pool->impl()->blocks;
  } else {
    pool = make_pool(c, options, context);
    pool->set_hash_seed(model.impl()->fingerprint);
  }
  // Sliding-window layers get a block table of their own that keeps only their window and one
  // chunk: what a pass reads, and room to rewind by a chunk.
  impl_ = std::make_unique<Impl>(model, threads,
                                 PagedKvCache(std::move(pool), context, c.sliding_window,
                                              options.prefill_chunk_tokens));
  impl_->chunk = options.prefill_chunk_tokens;
  // Published blocks hold every layer's rows for positions from 0; a window layer's rows are
  // kept apart and released, so a model with any sliding-window layer shares no prefix.
  impl_->share_prefix = std::none_of(c.sliding_window.begin(), c.sliding_window.end(),
                                     [](int32_t w) { return w > 0; });
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::span<const float> Session::eval(std::span<const TokenId> tokens, bool all_logits) {
  Impl& s = *impl_;
  const PagedKvCache::Use use(s.cache);
  if (s.lost(use)) {
    throw EvictedError(
        "the session's KV cache was evicted from the shared pool for another session: its "
        "sequence is lost and it now starts empty; evaluate the whole sequence again");
  }
  if (tokens.empty()) throw InvalidArgumentError("eval: no tokens given");
  s.check(tokens);
  return s.extend(tokens, all_logits, /*reuse=*/!all_logits).logits;
}

void Session::Impl::check(std::span<const TokenId> more) const {
  const int32_t n_vocab = model.impl()->config.n_vocab;
  for (const TokenId id : more) {
    if (id < 0 || id >= n_vocab) {
      throw InvalidArgumentError(
          fmt::format("token id {} is out of range (the vocabulary has {} tokens)", id, n_vocab));
    }
  }
  const int32_t capacity = cache.capacity(), position = int32_t(tokens.size());
  if (more.size() > size_t(capacity - position)) {
    throw InvalidArgumentError(fmt::format(
        "{} tokens do not fit in the context: {} of {} positions are already used", more.size(),
        position, capacity));
  }
}

std::span<const float> Session::Impl::run(std::span<const TokenId> more, bool all_logits) {
  const int32_t n_vocab = model.impl()->config.n_vocab;
  const size_t rows = all_logits ? more.size() : 1;
  if (logits.size() < rows * size_t(n_vocab)) logits.resize(rows * size_t(n_vocab));
  tokens.reserve(size_t(cache.capacity()));  // once: decoding a token allocates nothing
  eval_chunks(more, all_logits);
  if (share_prefix) cache.publish_full_blocks(tokens);
  return {logits.data(), rows * size_t(n_vocab)};
}

Session::PromptResult Session::Impl::extend(std::span<const TokenId> more, bool all_logits,
                                            bool reuse) {
  const int32_t before = int32_t(tokens.size());
  const int32_t reused = reuse ? adopt(more) : 0;
  try {
    return {reused, run(more.subspan(size_t(reused)), all_logits)};
  } catch (...) {
    if (reused > 0) {
      cache.truncate(before);
      tokens.resize(size_t(before));
    }
    throw;
  }
}

int32_t Session::Impl::adopt(std::span<const TokenId> more) {
  if (!share_prefix) return 0;
  if (more.size() <= size_t(cache.pool().block_tokens())) return 0;  // no whole block to take
  const size_t had = tokens.size();
  tokens.reserve(size_t(cache.capacity()));
  tokens.insert(tokens.end(), more.begin(), more.end());  // the intended sequence, for a moment
  const int32_t length =
      cache.adopt_published(tokens, int32_t(had), int32_t(tokens.size()) - 1);
  tokens.resize(size_t(length));
  return length - int32_t(had);
}

int32_t Session::position() const { return int32_t(impl_->tokens.size()); }
const std::vector<TokenId>& Session::tokens() const { return impl_->tokens; }
int32_t Session::context_length() const { return impl_->cache.capacity(); }
void Session::reset() { rewind(0); }
const Model& Session::model() const { return impl_->model; }
size_t Session::kv_bytes() const { return impl_->cache.bytes(); }

void Session::rewind(int32_t n) {
  const PagedKvCache::Use use(impl_->cache);
  if (impl_->lost(use) && n > 0) {
    throw EvictedError("cannot rewind: the session's KV cache was evicted from the shared pool "
                       "and it is now empty");
  }
  if (n < 0 || n > position()) {
    throw InvalidArgumentError(
        fmt::format("cannot rewind to {} tokens: the sequence has {}", n, position()));
  }
  if (!impl_->cache.can_truncate(n)) {
    throw InvalidArgumentError(fmt::format(
        "cannot rewind to {} tokens: the sliding-window layers have released the rows position "
        "{} would attend to (rewind to 0, or not as far back)",
        n, n));
  }
  impl_->cache.truncate(n);
  impl_->tokens.resize(size_t(n));
}

int32_t Session::rewind_to_common_prefix(std::span<const TokenId> tokens) {
  const PagedKvCache::Use use(impl_->cache);
  impl_->lost(use);  // an evicted session simply has no common prefix
  const std::vector<TokenId>& have = impl_->tokens;
  size_t common = 0;
  while (common < have.size() && common + 1 < tokens.size() && have[common] == tokens[common]) {
    ++common;
  }
  // Rows a sliding-window layer released cannot be had back: start over (a shorter prefix
  // would miss them too).
  if (!impl_->cache.can_truncate(int32_t(common))) common = 0;
  rewind(int32_t(common));
  return int32_t(common);
}

Session::PromptResult Session::prompt(std::span<const TokenId> tokens, bool all_logits) {
  if (tokens.empty()) throw InvalidArgumentError("prompt: no tokens given");
  Impl& s = *impl_;
  const PagedKvCache::Use use(s.cache);
  s.lost(use);  // an evicted session starts from empty: `tokens` is the whole sequence anyway
  const int32_t kept = rewind_to_common_prefix(tokens);
  s.check(tokens.subspan(size_t(kept)));
  const PromptResult r = s.extend(tokens.subspan(size_t(kept)), all_logits, /*reuse=*/true);
  return {kept + r.reused, r.logits};
}

Session Session::fork() const {
  const PagedKvCache::Use use(impl_->cache);
  if (impl_->lost(use)) {
    throw EvictedError("cannot fork: the session's KV cache was evicted from the shared pool "
                       "and it is now empty");
  }
  auto copy = std::make_unique<Impl>(impl_->model, impl_->threads, impl_->cache.fork());
  copy->tokens = impl_->tokens;
  copy->chunk = impl_->chunk;
  return Session(std::move(copy));
}

}  // namespace slm

namespace slm {

void Session::save_state(const std::string& path) const {
  const PagedKvCache::Use use(impl_->cache);
  if (impl_->lost(use)) {
    throw EvictedError(fmt::format("{}: not saved: the session's KV cache was evicted from the "
                                   "shared pool and it is now empty", path));
  }
  save_kv_state(path, impl_->state_shape(), impl_->cache, impl_->tokens);
}

// Takes a state file's rows and drops them: load_kv_state into it checks a whole file.
class DiscardingKvCache final : public KvCache {
 public:
  DiscardingKvCache(int32_t capacity, KvElement element, size_t row_bytes)
      : capacity_(capacity), element_(element), row_(row_bytes) {}
  int32_t capacity() const override { return capacity_; }
  KvElement element() const override { return element_; }
  void prepare(int32_t, int32_t) override {}
  uint8_t* k_row(int32_t, int32_t) override { return row_.data(); }
  uint8_t* v_row(int32_t, int32_t) override { return row_.data(); }
  ref::KvRows k_rows(int32_t, int32_t) const override { return {}; }
  ref::KvRows v_rows(int32_t, int32_t) const override { return {}; }
  size_t bytes() const override { return 0; }

 private:
  int32_t capacity_;
  KvElement element_;
  std::vector<uint8_t> row_;
};

// The whole file is checked first (its rows read into nowhere), so a bad file leaves the
// sequence as it was; only then does the old sequence go back to the pool and the file's rows
// come into new blocks, so the pool never holds both (its budget may be shared by many sessions).
void Session::load_state(const std::string& path) {
  Impl& s = *impl_;
  const PagedKvCache::Use use(s.cache);
  s.lost(use);
  const KvStateShape shape = s.state_shape();
  DiscardingKvCache nowhere(s.cache.capacity(), s.cache.element(), shape.row_bytes);
  std::vector<TokenId> tokens = load_kv_state(path, shape, nowhere);
  const int32_t n_vocab = s.model.impl()->config.n_vocab;
  for (const TokenId id : tokens) {
    if (id < 0 || id >= n_vocab) {
      throw FormatError(fmt::format("{}: token id {} is out of the vocabulary", path, id));
    }
  }
  const KvBlockPool& pool = s.cache.pool();
  const size_t B = size_t(pool.block_tokens()), needed = (tokens.size() + B - 1) / B;
  size_t own = 0;  // blocks that go back to the pool when this sequence does
  for (const int32_t b : s.cache.blocks()) own += pool.references(b) == 1 ? 1 : 0;
  const size_t available = pool.max_blocks() - pool.blocks_in_use() + own;
  // Counted in blocks of every layer; a sequence with a window table takes blocks of other sizes
  // (and releases window blocks as it loads), so it relies on the rollback below instead.
  if (!pool.evicts() && s.cache.window_layers() == 0 && needed > available) {
    throw OutOfMemoryError(fmt::format(
        "{}: the state needs {} KV blocks of {} positions, and only {} are free in the pool "
        "(counting this session's own)", path, needed, B, available));
  }
  s.cache.truncate(0);
  s.tokens.clear();
  try {
    load_kv_state(path, shape, s.cache);
  } catch (...) {  // the file changed since it was checked, or the disk failed: empty
    s.cache.truncate(0);
    throw;
  }
  s.tokens = std::move(tokens);
  if (s.share_prefix) s.cache.publish_full_blocks(s.tokens);
}

void Session::pin(bool pinned) { impl_->cache.set_pinned(pinned); }

}  // namespace slm

namespace slm {

std::vector<float> embed(const Model& model, std::span<const TokenId> tokens,
                         const EmbedOptions& options) {
  if (tokens.empty()) throw InvalidArgumentError("embed: no tokens given");
  const ModelConfig& c = model.impl()->config;
  if (tokens.size() > size_t(c.n_ctx_train)) {
    throw InvalidArgumentError(fmt::format("embed: {} tokens exceed the model's context of {}",
                                           tokens.size(), c.n_ctx_train));
  }
  Session session(model, {.context_length = int32_t(tokens.size()), .threads = options.threads,
                          .kv_type = KvType::kF32});
  Session::Impl& s = *session.impl_;
  for (const TokenId id : tokens) {
    if (id < 0 || id >= c.n_vocab) {
      throw InvalidArgumentError(
          fmt::format("token id {} is out of range (the vocabulary has {} tokens)", id, c.n_vocab));
    }
  }
  const Pooling pooling = options.pooling == Pooling::kModel ? model.impl()->pooling : options.pooling;
  const bool all = pooling == Pooling::kMean;
  const size_t E = size_t(c.n_embd), rows = all ? tokens.size() : 1;
  std::vector<float> hidden(rows * E);
  s.decoder.forward(tokens, 0, s.cache, all, /*logits=*/nullptr, s.threads, hidden.data());
  std::vector<double> sum(E, 0.0);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t i = 0; i < E; ++i) sum[i] += hidden[r * E + i];
  }
  std::vector<float> out(E);
  double norm = 0;
  for (size_t i = 0; i < E; ++i) norm += (sum[i] / double(rows)) * (sum[i] / double(rows));
  const double scale = options.normalize && norm > 0 ? 1.0 / std::sqrt(norm) : 1.0;
  for (size_t i = 0; i < E; ++i) out[i] = float(sum[i] / double(rows) * scale);
  return out;
}

std::vector<float> embed(const Model& model, std::string_view text, const EmbedOptions& options) {
  return embed(model, model.tokenizer().encode(text), options);
}

}  // namespace slm

namespace slm {

// --- KvPool: one KV block pool shared by the sessions of one model ---

KvPool::KvPool(const Model& model, const KvPoolOptions& options) {
  const ModelConfig& c = model.impl()->config;
  const SessionOptions as_session{.kv_type = options.kv_type,
                                  .kv_block_tokens = options.block_tokens,
                                  .kv_budget_bytes = options.budget_bytes};
  auto blocks = make_pool(c, as_session, checked_context_length(c, as_session));
  blocks->set_hash_seed(model.impl()->fingerprint);
  blocks->set_evict(options.evict);
  impl_ = std::make_unique<Impl>(Impl{model, std::move(blocks)});
}

KvPool::~KvPool() = default;
const Model& KvPool::model() const { return impl_->model; }
size_t KvPool::block_bytes() const { return impl_->blocks->block_bytes(); }
size_t KvPool::budget_bytes() const {
  return impl_->blocks->max_blocks() * impl_->blocks->block_bytes();
}
size_t KvPool::bytes() const { return impl_->blocks->bytes(); }
size_t KvPool::blocks_in_use() const { return impl_->blocks->blocks_in_use(); }
size_t KvPool::cached_blocks() const { return impl_->blocks->cached_blocks(); }

SessionAccess::Parts SessionAccess::parts(Session& session) {
  return {session.impl_->cache, session.impl_->tokens, session.impl_->share_prefix};
}

}  // namespace slm
