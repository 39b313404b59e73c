// What a public KvPool holds (tests reach the block pool through it).
#pragma once

#include <memory>

#include "slm/model.h"
#include "src/runtime/kv_pool.h"

namespace slm {

struct KvPool::Impl {
  Model model;  // the sessions' model (and its weights, alive while the pool is)
  std::shared_ptr<KvBlockPool> blocks;
};

}  // namespace slm
