// The parts of a Session that batched evaluation (batch.cpp) reads and advances; defined in
// session.cpp, where Session::Impl is.
#pragma once

#include <vector>

#include "slm/model.h"
#include "src/runtime/paged_kv_cache.h"

namespace slm {

struct SessionAccess {
  struct Parts {
    PagedKvCache& cache;
    std::vector<TokenId>& tokens;  // the sequence: its size is the position
    bool share_prefix;             // publishes the full blocks a pass fills
  };
  static Parts parts(Session& session);
};

}  // namespace slm
