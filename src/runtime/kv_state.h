// A sequence's state on disk: its tokens and their cached keys and values, so a session can be
// saved and resumed bit-identically. The file names the model it belongs to by a fingerprint of
// its shape and first weights; loading into another model or KV type is refused.
//
// Layout (little-endian): "SLMKVST2", u64 fingerprint, u32 KV element (0 f32, 1 f16, 2 q8_0),
// u32 layers, u64 row bytes, u32 tokens, i32 × tokens, u32 × layers: the first position each
// layer holds (sliding-window layers release older rows), then per position, per layer holding
// it: K row, V row (a Q8_0 row: each kv head's ggml blocks in turn). Version 1 ("SLMKVST1", still
// read) has no first positions: every layer holds every row.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "src/runtime/kv_cache.h"

namespace slm {

struct KvStateShape {
  uint64_t fingerprint = 0;  // of the model (Model::Impl::fingerprint)
  int32_t n_layer = 0;
  size_t row_bytes = 0;          // bytes of one position's K (or V) row of one layer
  std::vector<int32_t> windows;  // per layer (0: full attention; empty: none slides)
};

// Writes tokens and cache rows [0, tokens.size()). Throws IoError.
void save_kv_state(const std::string& path, const KvStateShape& shape, const KvCache& cache,
                   const std::vector<int32_t>& tokens);

// Reads a file written for the same shape: returns its tokens after writing their rows into
// `cache` (whose positions [0, n) it prepares one at a time, so a window table stays small).
// Throws IoError, FormatError (malformed, truncated, another model or KV type, or missing rows
// that the next query would read) or InvalidArgumentError (longer than the cache).
std::vector<int32_t> load_kv_state(const std::string& path, const KvStateShape& shape,
                                   KvCache& cache);

}  // namespace slm
