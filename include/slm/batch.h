// Batched evaluation: one forward pass advances several sessions of one Model, e.g. the next
// token of each of N conversations, with a new prompt beside them. The weight matrices are read
// once per pass for all of them, so while decoding is bound by memory bandwidth the aggregate
// tokens per second grows with N. Sampling stays per session (own Sampler).
#pragma once

#include <memory>
#include <span>

#include "slm/model.h"

namespace slm {

struct BatchItem {
  Session* session = nullptr;
  std::span<const TokenId> tokens;  // appended to the session, as Session::eval would
  bool all_logits = false;          // logits of every token, else of the last one
};

class Batch {
 public:
  // The forward pass's scratch for sessions of `model`; threads: 0 = all cores.
  explicit Batch(const Model& model, int32_t threads = 0);
  ~Batch();
  Batch(Batch&&) noexcept;
  Batch& operator=(Batch&&) noexcept;

  // Appends each item's tokens to its session, all in one forward pass, and returns each item's
  // logits in item order: exactly what Session::eval(tokens, all_logits) on each session alone
  // would have returned, bit for bit. The spans stay valid until the next eval of this Batch.
  // Throws InvalidArgumentError (no items, a null session, a session of another model, a session
  // listed twice, no tokens, an id out of range, tokens that do not fit in a session's context)
  // or OutOfMemoryError (a KV pool's budget is used up); then no session has changed. With an
  // evicting shared KvPool, no session of the batch is evicted during the pass; one evicted
  // before it makes the call throw EvictedError (that session is then empty, the others have not
  // changed). The sessions must not be used by other threads during the call.
  std::span<const std::span<const float>> eval(std::span<const BatchItem> items);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slm
