#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "slm/error.h"
#include "src/api/model_impl.h"
#include "src/graph/decoder.h"

namespace slm {

// The model's default context is capped: a 128k-token cache for a chat would waste memory.
constexpr int32_t kDefaultContextCap = 4096;

struct Session::Impl {
  Impl(const Model& m, const SessionOptions& options)
      : model(m),
        decoder(m.impl()->config, m.impl()->weights),
        threads(options.threads > 0 ? options.threads
                                    : int(std::max(1u, std::thread::hardware_concurrency()))),
        cache(make_cache(m.impl()->config, options)) {}

  static ContiguousKvCache make_cache(const ModelConfig& c, const SessionOptions& options) {
    if (options.context_length < 0) {
      throw InvalidArgumentError(fmt::format("context length {} is negative", options.context_length));
    }
    if (options.context_length > c.n_ctx_train) {
      throw InvalidArgumentError(fmt::format("context length {} exceeds the model's {}",
                                             options.context_length, c.n_ctx_train));
    }
    if (options.threads < 0) {
      throw InvalidArgumentError(fmt::format("thread count {} is negative", options.threads));
    }
    const int32_t ctx = options.context_length > 0 ? options.context_length
                                                   : std::min(c.n_ctx_train, kDefaultContextCap);
    return ContiguousKvCache(c.n_layer, ctx, c.n_head_kv * c.head_dim,
                             options.kv_type == KvType::kF16 ? KvElement::kF16 : KvElement::kF32);
  }

  Model model;  // keeps the weights alive
  Decoder decoder;
  int threads;
  ContiguousKvCache cache;
  int32_t position = 0;
  std::vector<float> logits;
};

Session::Session(const Model& model, const SessionOptions& options)
    : impl_(std::make_unique<Impl>(model, options)) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

std::span<const float> Session::eval(std::span<const TokenId> tokens, bool all_logits) {
  Impl& s = *impl_;
  const int32_t n_vocab = s.model.impl()->config.n_vocab;
  if (tokens.empty()) throw InvalidArgumentError("eval: no tokens given");
  for (const TokenId id : tokens) {
    if (id < 0 || id >= n_vocab) {
      throw InvalidArgumentError(
          fmt::format("token id {} is out of range (the vocabulary has {} tokens)", id, n_vocab));
    }
  }
  const int32_t capacity = s.cache.capacity();
  if (tokens.size() > size_t(capacity - s.position)) {
    throw InvalidArgumentError(fmt::format(
        "{} tokens do not fit in the context: {} of {} positions are already used", tokens.size(),
        s.position, capacity));
  }
  const size_t rows = all_logits ? tokens.size() : 1;
  if (s.logits.size() < rows * size_t(n_vocab)) s.logits.resize(rows * size_t(n_vocab));
  s.decoder.forward(tokens, s.position, s.cache, all_logits, s.logits.data(), s.threads);
  s.position += int32_t(tokens.size());
  return {s.logits.data(), rows * size_t(n_vocab)};
}

int32_t Session::position() const { return impl_->position; }
int32_t Session::context_length() const { return impl_->cache.capacity(); }
void Session::reset() { impl_->position = 0; }
const Model& Session::model() const { return impl_->model; }

}  // namespace slm
