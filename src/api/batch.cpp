#include "slm/batch.h"

#include <fmt/format.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "slm/error.h"
#include "src/api/model_impl.h"
#include "src/api/session_access.h"
#include "src/graph/decoder.h"

namespace slm {

struct Batch::Impl {
  Impl(const Model& m, int threads)
      : model(m), decoder(m.impl()->config, m.impl()->weights), threads(threads) {}

  Model model;  // keeps the weights alive
  Decoder decoder;
  int threads;
  // Reused from pass to pass: a batch of N one-token steps allocates nothing once they have grown.
  std::vector<DecoderSegment> segments;
  std::vector<float> logits;
  std::vector<std::span<const float>> results;
  std::vector<PagedKvCache*> in_use;  // sequences between begin_use and end_use

  void check(std::span<const BatchItem> items) const;
  void begin_use(std::span<const BatchItem> items);
  void end_use();
  void prepare_all(std::span<const BatchItem> items);
};

Batch::Batch(const Model& model, int32_t threads) {
  if (threads < 0) throw InvalidArgumentError(fmt::format("thread count {} is negative", threads));
  const int team = threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
  impl_ = std::make_unique<Impl>(model, team);
}

Batch::~Batch() = default;
Batch::Batch(Batch&&) noexcept = default;
Batch& Batch::operator=(Batch&&) noexcept = default;

// Everything Session::eval checks, for every item, and that the items can share one pass: all
// before anything changes.
void Batch::Impl::check(std::span<const BatchItem> items) const {
  if (items.empty()) throw InvalidArgumentError("batch: no items given");
  const int32_t n_vocab = model.impl()->config.n_vocab;
  for (size_t i = 0; i < items.size(); ++i) {
    const BatchItem& item = items[i];
    if (!item.session) throw InvalidArgumentError(fmt::format("batch item {}: no session", i));
    if (item.session->model().impl() != model.impl()) {
      throw InvalidArgumentError(
          fmt::format("batch item {}: the session is of another model than the batch", i));
    }
    for (size_t j = 0; j < i; ++j) {
      if (items[j].session == item.session) {
        throw InvalidArgumentError(
            fmt::format("batch items {} and {} are the same session (one item per session)", j, i));
      }
    }
    if (item.tokens.empty()) throw InvalidArgumentError(fmt::format("batch item {}: no tokens", i));
    for (const TokenId id : item.tokens) {
      if (id < 0 || id >= n_vocab) {
        throw InvalidArgumentError(
            fmt::format("batch item {}: token id {} is out of range (the vocabulary has {} tokens)",
                        i, id, n_vocab));
      }
    }
    const int32_t capacity = item.session->context_length(), position = item.session->position();
    if (item.tokens.size() > size_t(capacity - position)) {
      throw InvalidArgumentError(fmt::format(
          "batch item {}: {} tokens do not fit in the context: {} of {} positions are already used",
          i, item.tokens.size(), position, capacity));
    }
  }
}

// Like Session's Use guard, for every sequence of the pass: a shared evicting pool takes none of
// them while the batch reads them. A sequence evicted since its last use is now empty, so the
// batch throws EvictedError before anything else changes.
void Batch::Impl::begin_use(std::span<const BatchItem> items) {
  in_use.clear();
  size_t evicted = items.size();
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].session) continue;  // check() says so
    const SessionAccess::Parts s = SessionAccess::parts(*items[i].session);
    in_use.push_back(&s.cache);
    if (s.cache.begin_use()) {
      s.tokens.clear();
      evicted = std::min(evicted, i);
    }
  }
  if (evicted < items.size()) {
    end_use();
    throw EvictedError(fmt::format(
        "batch item {}: the session's KV cache was evicted from the shared pool for another "
        "session: its sequence is lost and it now starts empty; evaluate the whole sequence again",
        evicted));
  }
}

void Batch::Impl::end_use() {
  for (PagedKvCache* cache : in_use) cache->end_use();
  in_use.clear();
}

// Makes every sequence's new positions writable before the pass. When a pool runs out, the
// sequences prepared before give their new blocks back: every sequence is as it was.
void Batch::Impl::prepare_all(std::span<const BatchItem> items) {
  for (size_t i = 0; i < items.size(); ++i) {
    const SessionAccess::Parts s = SessionAccess::parts(*items[i].session);
    try {
      s.cache.prepare(int32_t(s.tokens.size()), int32_t(items[i].tokens.size()));
    } catch (...) {
      for (size_t j = 0; j < i; ++j) {
        const SessionAccess::Parts done = SessionAccess::parts(*items[j].session);
        done.cache.truncate(int32_t(done.tokens.size()));
      }
      throw;
    }
  }
}

std::span<const std::span<const float>> Batch::eval(std::span<const BatchItem> items) {
  Impl& b = *impl_;
  b.begin_use(items);
  struct EndUse {
    Impl& b;
    ~EndUse() { b.end_use(); }
  } const end_use{b};
  b.check(items);
  b.prepare_all(items);
  const size_t V = size_t(b.model.impl()->config.n_vocab);
  size_t rows = 0;
  b.segments.clear();
  for (const BatchItem& item : items) {
    const SessionAccess::Parts s = SessionAccess::parts(*item.session);
    s.tokens.reserve(size_t(item.session->context_length()));  // once, as Session::eval does
    b.segments.push_back({item.tokens, int32_t(s.tokens.size()), &s.cache, item.all_logits});
    rows += item.all_logits ? item.tokens.size() : 1;
  }
  if (b.logits.size() < rows * V) b.logits.resize(rows * V);
  b.decoder.forward(b.segments, b.logits.data(), b.threads);
  b.results.clear();
  size_t row = 0;
  for (const BatchItem& item : items) {
    const SessionAccess::Parts s = SessionAccess::parts(*item.session);
    s.tokens.insert(s.tokens.end(), item.tokens.begin(), item.tokens.end());
    if (s.share_prefix) s.cache.publish_full_blocks(s.tokens);  // as Session::eval does
    const size_t n = item.all_logits ? item.tokens.size() : 1;
    b.results.emplace_back(&b.logits[row * V], n * V);
    row += n;
  }
  return b.results;
}

}  // namespace slm
