// A KV pool shared by sessions (issue 7, items 1 and 3): one budget for all of them, full blocks
// published under chained hashes so an unrelated session takes a shared prefix instead of
// computing it (exactly the logits of a cold run), the collision guard, eviction of the least
// recently used unpinned session, and two threads on one pool.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "slm/slm.h"
#include "src/api/kv_pool_impl.h"
#include "src/api/model_impl.h"
#include "src/runtime/paged_kv_cache.h"
#include "tests/test_data.h"

namespace slm {
namespace {

using test::data_path;

constexpr const char* kStories = "models/stories260K/stories260K.gguf";
constexpr const char* kZoo = "zoo/gguf/llama-gqa-F32.gguf";

std::vector<int32_t> sequence(size_t n, int32_t salt) {
  std::vector<int32_t> t(n);
  for (size_t i = 0; i < n; ++i) t[i] = int32_t(3 + (i * 37 + size_t(salt) * 11) % 500);
  return t;
}

std::vector<float> cold_logits(const Model& model, const std::vector<int32_t>& tokens,
                               bool all = false) {
  Session cold(model, {.threads = 1, .kv_type = KvType::kF32});
  const auto l = cold.eval(tokens, all);
  return {l.begin(), l.end()};
}

// 2 layers, rows of 8 f32, blocks of 4 positions (512 bytes).
TEST(KvBlockPool, PublishedBlocksAreFoundOnlyByTheirTokensAfterTheirParent) {
  KvBlockPool pool(2, 8, KvElement::kF32, 4, 3 * 512);
  const std::vector<int32_t> first = {1, 2, 3, 4}, second = {5, 6, 7, 8}, other = {1, 2, 3, 5};
  const int32_t a = pool.allocate(), b = pool.allocate();
  const uint64_t ha = pool.chain_hash(pool.first_parent_hash(), first);
  const uint64_t hb = pool.chain_hash(ha, second);
  pool.publish(a, ha, -1, first);
  pool.publish(b, hb, a, second);
  EXPECT_NE(ha, pool.chain_hash(pool.first_parent_hash(), other));
  // The guard: a hash with other tokens, or after another block, is a miss.
  EXPECT_EQ(pool.lookup(ha, -1, other), -1);
  EXPECT_EQ(pool.lookup(hb, -1, second), -1);
  EXPECT_EQ(pool.lookup(ha, -1, first), a);
  EXPECT_EQ(pool.references(a), 2);
  // Released, published blocks stay cached; a lookup takes them back.
  pool.release(a);
  pool.release(a);
  pool.release(b);
  EXPECT_EQ(pool.cached_blocks(), 2u);
  EXPECT_EQ(pool.blocks_in_use(), 0u);
  EXPECT_EQ(pool.lookup(ha, -1, first), a);
  EXPECT_EQ(pool.lookup(hb, a, second), b);
  // Rewriting a block in place (unpublish) cuts its children off too.
  pool.unpublish(a);
  EXPECT_EQ(pool.lookup(ha, -1, first), -1);
  pool.publish(a, ha, -1, first);  // the same content again: a new version
  EXPECT_EQ(pool.lookup(hb, a, second), -1);
  // Memory is needed: free memory first, then the oldest cached block.
  pool.release(b);
  EXPECT_EQ(pool.cached_blocks(), 1u);
  const int32_t c = pool.allocate();  // new memory (the budget holds 3)
  EXPECT_NE(c, b);
  EXPECT_EQ(pool.allocate(), b);  // the cached block, no longer published
  EXPECT_FALSE(pool.published(b));
  EXPECT_THROW(pool.allocate(), OutOfMemoryError);
}

// The check: a second, unrelated session whose prompt shares 90 % with the first's
// computes only the rest, and its logits equal a cold run exactly.
TEST(KvPool, UnrelatedSessionsShareAPrefixAndMatchAColdRun) {
  SLM_REQUIRE_DATA(data_path(kZoo));
  const Model model = Model::load(data_path(kZoo).string());
  const auto pool = std::make_shared<KvPool>(
      model,
      KvPoolOptions{.kv_type = KvType::kF32, .block_tokens = 10, .budget_bytes = size_t(1) << 26});
  const std::vector<int32_t> first = sequence(100, 0);
  std::vector<int32_t> second(first.begin(), first.begin() + 90);
  for (int32_t t = 0; t < 10; ++t) second.push_back(400 + t);

  Session a(model, {.threads = 1, .kv_pool = pool});
  EXPECT_EQ(a.prompt(first).reused, 0);
  EXPECT_EQ(pool->blocks_in_use(), 10u);
  Session b(model, {.threads = 1, .kv_pool = pool});
  const Session::PromptResult r = b.prompt(second, /*all_logits=*/true);
  EXPECT_EQ(r.reused, 90);
  EXPECT_EQ(r.logits.size(), 10u * 512u);  // only the 10 new tokens were computed
  EXPECT_EQ(pool->blocks_in_use(), 11u);   // nine shared blocks, one of b's own
  const std::vector<float> want = cold_logits(model, second, true);
  EXPECT_EQ(std::vector<float>(r.logits.begin(), r.logits.end()),
            std::vector<float>(want.end() - 10 * 512, want.end()));
  EXPECT_EQ(b.tokens(), second);

  // eval on a fresh session takes the blocks too (its last-token logits are the same).
  Session c(model, {.threads = 1, .kv_pool = pool});
  const auto l = c.eval(second);
  EXPECT_EQ(std::vector<float>(l.begin(), l.end()),
            std::vector<float>(want.end() - 512, want.end()));
  EXPECT_EQ(pool->blocks_in_use(), 12u);  // its last block holds the last token: computed
  // ... and decoding after a shared block writes only into its own.
  const int32_t next = 7;
  c.eval(std::span(&next, 1));
  std::vector<int32_t> longer = second;
  longer.push_back(next);
  const auto l2 = c.eval(std::span(&next, 1));
  longer.push_back(next);
  EXPECT_EQ(std::vector<float>(l2.begin(), l2.end()), cold_logits(model, longer));
  EXPECT_EQ(b.tokens(), second);  // b is untouched
  const auto lb = b.eval(std::vector<int32_t>{9});
  second.push_back(9);
  EXPECT_EQ(std::vector<float>(lb.begin(), lb.end()), cold_logits(model, second));

  // Released blocks stay cached for the next session with that prefix.
  a.reset();
  Session d(model, {.threads = 1, .kv_pool = pool});
  EXPECT_EQ(d.prompt(first).reused, 90);  // the last block holds the last token: computed

  const Model other = Model::load(data_path(kStories).string());
  EXPECT_THROW(Session(other, {.kv_pool = pool}), InvalidArgumentError);
  EXPECT_THROW(KvPool(model, {.block_tokens = 0}), InvalidArgumentError);
  EXPECT_THROW(KvPool(model, {.budget_bytes = 1}), InvalidArgumentError);
}

uint64_t colliding_hash(uint64_t, std::span<const int32_t>) { return 42; }

// Every block hashes alike: a lookup must compare tokens and parents, never trust the hash.
TEST(KvPool, HashCollisionsAreMissesNeverWrongBlocks) {
  SLM_REQUIRE_DATA(data_path(kStories));
  const Model model = Model::load(data_path(kStories).string());
  const auto pool =
      std::make_shared<KvPool>(model, KvPoolOptions{.kv_type = KvType::kF32, .block_tokens = 8});
  pool->impl()->blocks->set_token_hash(colliding_hash);
  const std::vector<int32_t> p1 = sequence(40, 1);
  std::vector<int32_t> p2 = p1;
  p2[3] = 1;  // differs inside the first block

  Session a(model, {.threads = 1, .kv_pool = pool});
  a.prompt(p1);
  Session b(model, {.threads = 1, .kv_pool = pool});
  const auto rb = b.prompt(p2, true);
  EXPECT_EQ(rb.reused, 0);
  EXPECT_EQ(std::vector<float>(rb.logits.begin(), rb.logits.end()), cold_logits(model, p2, true));
  // The same tokens: the first block matches; the second's hash entry is still the first
  // block (first publisher wins), whose parent and tokens differ: a miss.
  Session c(model, {.threads = 1, .kv_pool = pool});
  const auto rc = c.prompt(p1, true);
  EXPECT_EQ(rc.reused, 8);
  const std::vector<float> want = cold_logits(model, p1, true);
  EXPECT_EQ(std::vector<float>(rc.logits.begin(), rc.logits.end()),
            std::vector<float>(want.begin() + 8 * 512, want.end()));
}

// Budgets of whole blocks: stories260K, f32, 16 positions a block.
size_t block_bytes(const Model& model) {
  const ModelConfig& c = model.impl()->config;
  return size_t(c.n_layer) * 2 * 16 * size_t(c.n_head_kv * c.head_dim) * 4;
}

std::shared_ptr<KvPool> pool_of_blocks(const Model& model, size_t blocks, bool evict) {
  return std::make_shared<KvPool>(model, KvPoolOptions{.kv_type = KvType::kF32,
                                                       .block_tokens = 16,
                                                       .budget_bytes = blocks * block_bytes(model),
                                                       .evict = evict});
}

std::vector<float> last_logits(Session& s, std::vector<int32_t> tokens) {
  const auto l = s.eval(tokens);
  return {l.begin(), l.end()};
}

TEST(KvPool, AUsedUpBudgetIsAnErrorThatLeavesEverySessionIntact) {
  SLM_REQUIRE_DATA(data_path(kStories));
  const Model model = Model::load(data_path(kStories).string());
  const auto pool = pool_of_blocks(model, 3, /*evict=*/false);
  Session a(model, {.threads = 1, .kv_pool = pool}), b(model, {.threads = 1, .kv_pool = pool});
  a.eval(sequence(20, 1));  // two blocks
  b.eval(sequence(5, 2));   // one
  Session c(model, {.threads = 1, .kv_pool = pool});
  try {
    c.eval(sequence(5, 3));
    FAIL() << "expected OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    EXPECT_NE(std::string(e.what()).find("KV cache is full"), std::string::npos) << e.what();
  }
  EXPECT_EQ(c.position(), 0);
  EXPECT_EQ(a.position(), 20);
  std::vector<int32_t> want_a = sequence(20, 1), want_b = sequence(5, 2);
  want_a.push_back(9);
  want_b.push_back(9);
  EXPECT_EQ(last_logits(a, {9}), cold_logits(model, want_a));
  EXPECT_EQ(last_logits(b, {9}), cold_logits(model, want_b));
  b.reset();  // its block comes back: c runs
  EXPECT_EQ(last_logits(c, sequence(5, 3)), cold_logits(model, sequence(5, 3)));
  // A pass that cannot run gives back the published block it took from `a` as well.
  Session d(model, {.threads = 1, .kv_pool = pool});
  EXPECT_THROW(d.eval(sequence(20, 1)), OutOfMemoryError);  // block 0 shared, block 1: none
  EXPECT_EQ(d.position(), 0);
  EXPECT_EQ(d.kv_bytes(), 0u);
  EXPECT_EQ(pool->blocks_in_use(), 3u);
  EXPECT_THROW(d.prompt(sequence(20, 1)), OutOfMemoryError);
  EXPECT_EQ(d.position(), 0);
}

TEST(KvPool, EvictsTheLeastRecentlyUsedUnpinnedSessionAndNeverASharedBlock) {
  SLM_REQUIRE_DATA(data_path(kStories));
  const Model model = Model::load(data_path(kStories).string());
  const auto pool = pool_of_blocks(model, 3, /*evict=*/true);
  Session s1(model, {.threads = 1, .kv_pool = pool}), s2(model, {.threads = 1, .kv_pool = pool}),
      s3(model, {.threads = 1, .kv_pool = pool});
  s1.eval(sequence(3, 1));
  s2.eval(sequence(3, 2));
  s3.eval(sequence(3, 3));
  s1.eval(std::vector<int32_t>{5});  // s1 is now the most recently used
  Session s4(model, {.threads = 1, .kv_pool = pool});
  s4.eval(sequence(3, 4));  // the pool is full: s2, idle the longest, loses its blocks
  EXPECT_EQ(s2.kv_bytes(), 0u);
  EXPECT_THROW(s2.eval(std::vector<int32_t>{5}), EvictedError);
  EXPECT_EQ(s2.position(), 0);  // told once; now an empty session
  s3.pin();
  // s2 starts again: s3 (pinned) is skipped, s1 goes.
  EXPECT_EQ(last_logits(s2, sequence(3, 2)), cold_logits(model, sequence(3, 2)));
  EXPECT_THROW(s1.eval(std::vector<int32_t>{5}), EvictedError);
  std::vector<int32_t> want3 = sequence(3, 3);
  want3.push_back(6);
  EXPECT_EQ(last_logits(s3, {6}), cold_logits(model, want3));
  // prompt() after an eviction simply starts from empty.
  s1.pin();  // (empty: nothing to evict there)
  s4.pin();
  s2.pin();
  Session s5(model, {.threads = 1, .kv_pool = pool});
  EXPECT_THROW(s5.eval(sequence(3, 5)), OutOfMemoryError);  // every holder is pinned
  s4.pin(false);
  EXPECT_EQ(s5.prompt(sequence(3, 5)).reused, 0);
  EXPECT_EQ(s4.prompt(sequence(3, 4)).reused, 0);  // evicted: recomputed, no error

  // A fork shares its parent's block: evicting either would free nothing, so neither goes.
  const auto shared = pool_of_blocks(model, 2, /*evict=*/true);
  Session parent(model, {.threads = 1, .kv_pool = shared});
  parent.eval(sequence(3, 1));
  Session child = parent.fork();
  Session other(model, {.threads = 1, .kv_pool = shared});
  other.eval(sequence(3, 2));
  Session newest(model, {.threads = 1, .kv_pool = shared});
  newest.eval(sequence(3, 3));  // evicts `other`, though `parent` and `child` are older
  EXPECT_THROW(other.eval(std::vector<int32_t>{5}), EvictedError);
  std::vector<int32_t> want = sequence(3, 1);
  want.push_back(8);
  // The parent's write copies the shared block: the memory comes from evicting `newest`.
  EXPECT_EQ(last_logits(parent, {8}), cold_logits(model, want));
  want.back() = 9;
  EXPECT_EQ(last_logits(child, {9}), cold_logits(model, want));
  EXPECT_THROW(newest.eval(std::vector<int32_t>{5}), EvictedError);
}

// Two threads, a session each, one pool, a shared prefix: each gets the cold run's logits.
// (Also run under ThreadSanitizer: small, one thread inside each session.)
TEST(ConcurrencyKvPool, TwoThreadsShareOnePool) {
  SLM_REQUIRE_DATA(data_path(kStories));
  const Model model = Model::load(data_path(kStories).string());
  const auto pool = pool_of_blocks(model, 16, /*evict=*/false);
  const std::vector<int32_t> prefix = sequence(40, 7);
  std::vector<std::vector<int32_t>> prompts(2, prefix);
  prompts[0].push_back(10);
  prompts[1].push_back(20);
  std::vector<std::vector<float>> want(2), got(2);
  for (size_t i = 0; i < 2; ++i) {
    std::vector<int32_t> t = prompts[i];
    for (int32_t step = 0; step < 8; ++step) t.push_back(100 + step);
    want[i] = cold_logits(model, t);
  }
  std::vector<std::thread> threads;
  for (size_t i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      Session s(model, {.threads = 1, .kv_pool = pool});
      for (int round = 0; round < 3; ++round) {
        s.prompt(prompts[i]);
        std::span<const float> l;
        for (int32_t step = 0; step < 8; ++step) {
          const int32_t next = 100 + step;
          l = s.eval(std::span(&next, 1));
        }
        got[i].assign(l.begin(), l.end());
        if (got[i] != want[i]) return;
        s.reset();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(got[0], want[0]);
  EXPECT_EQ(got[1], want[1]);
}

// Two threads on an evicting pool too small for both: each evicts the other between its calls.
// A run either fails cleanly (EvictedError, or OutOfMemoryError while the other is busy) or
// gives the cold run's logits.
TEST(ConcurrencyKvPool, TwoThreadsEvictEachOtherCleanly) {
  SLM_REQUIRE_DATA(data_path(kStories));
  const Model model = Model::load(data_path(kStories).string());
  const auto pool = pool_of_blocks(model, 4, /*evict=*/true);
  std::vector<std::vector<int32_t>> prompts = {sequence(40, 1), sequence(40, 2)};
  std::vector<std::vector<float>> want(2);
  for (size_t i = 0; i < 2; ++i) want[i] = cold_logits(model, prompts[i]);
  std::vector<int> wrong(2, 0);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      Session s(model, {.threads = 1, .kv_pool = pool});
      for (int round = 0; round < 6; ++round) {
        try {
          s.rewind(30);  // the last 10 tokens again, on what is left of the sequence
        } catch (const Error&) {
        }
        try {
          const auto l = s.prompt(prompts[i]).logits;
          wrong[i] += std::vector<float>(l.begin(), l.end()) != want[i] ? 1 : 0;
        } catch (const OutOfMemoryError&) {
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong[0], 0);
  EXPECT_EQ(wrong[1], 0);
}

// load_state gives the old sequence's blocks back before it takes new ones, after checking the
// whole file, so a state that fits the budget loads in place of one that fills it.
TEST(KvPool, LoadStateFitsTheBudgetOfTheSequenceItReplaces) {
  SLM_REQUIRE_DATA(data_path(kStories));
  const Model model = Model::load(data_path(kStories).string());
  const std::string path = (test::temp_dir() / "state.bin").string();
  const auto pool = pool_of_blocks(model, 3, /*evict=*/false);
  Session a(model, {.threads = 1, .kv_pool = pool});
  a.eval(sequence(40, 1));  // all three blocks
  a.save_state(path);
  std::vector<int32_t> want = sequence(40, 1);
  want.push_back(5);
  EXPECT_NO_THROW(a.load_state(path));
  EXPECT_EQ(last_logits(a, {5}), cold_logits(model, want));
  EXPECT_EQ(pool->blocks_in_use(), 3u);
  // The same with a session's own pool.
  Session own(model, {.threads = 1,
                      .kv_type = KvType::kF32,
                      .kv_block_tokens = 16,
                      .kv_budget_bytes = 3 * block_bytes(model)});
  own.eval(sequence(40, 2));
  EXPECT_NO_THROW(own.load_state(path));
  EXPECT_EQ(last_logits(own, {5}), cold_logits(model, want));
  // Not enough even without its old blocks: a clear error, and the session keeps its sequence.
  a.rewind(10);  // one block
  Session b(model, {.threads = 1, .kv_pool = pool});
  b.eval(sequence(20, 3));  // two blocks
  EXPECT_THROW(a.load_state(path), OutOfMemoryError);
  EXPECT_EQ(a.position(), 10);
  std::vector<int32_t> ten(want.begin(), want.begin() + 10);
  ten.push_back(5);
  EXPECT_EQ(last_logits(a, {5}), cold_logits(model, ten));
}

// A batched pass holds every sequence in it (none is evicted for another's block, and a full
// pool rolls all of them back); a sequence evicted before the pass makes it an EvictedError that
// changes no other session.
TEST(KvPool, ABatchHoldsItsSessionsAndRefusesAnEvictedOne) {
  SLM_REQUIRE_DATA(data_path(kStories));
  const Model model = Model::load(data_path(kStories).string());
  const auto pool = pool_of_blocks(model, 4, /*evict=*/true);
  Session s1(model, {.threads = 1, .kv_pool = pool}), s2(model, {.threads = 1, .kv_pool = pool}),
      s3(model, {.threads = 1, .kv_pool = pool});
  s1.eval(sequence(3, 1));
  s2.eval(sequence(3, 2));
  s3.eval(sequence(3, 3));
  Batch batch(model, 1);
  const std::vector<int32_t> more1 = sequence(14, 4), more2 = sequence(14, 5), one{7};
  // s1 takes the free block; s2 needs one more and every holder is in the batch.
  EXPECT_THROW(batch.eval(std::vector<BatchItem>{{&s1, more1}, {&s2, more2}, {&s3, one}}),
               OutOfMemoryError);
  EXPECT_EQ(s1.position(), 3);
  EXPECT_EQ(s2.position(), 3);
  EXPECT_EQ(s3.position(), 3);
  EXPECT_EQ(pool->blocks_in_use(), 3u);
  // A fourth session takes three blocks: the free one, then s1's and s2's (idle the longest).
  Session s4(model, {.threads = 1, .kv_pool = pool});
  s4.eval(sequence(40, 6));
  try {
    batch.eval(std::vector<BatchItem>{{&s3, one}, {&s1, one}});
    FAIL() << "expected EvictedError";
  } catch (const EvictedError& e) {
    EXPECT_NE(std::string(e.what()).find("batch item 1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(s1.position(), 0);  // told once: now an empty session
  EXPECT_EQ(s3.position(), 3);
  std::vector<int32_t> want = sequence(3, 3);
  want.push_back(7);
  const auto logits = batch.eval(std::vector<BatchItem>{{&s3, one}});
  EXPECT_EQ(std::vector<float>(logits[0].begin(), logits[0].end()), cold_logits(model, want));
  EXPECT_THROW(s2.eval(one), EvictedError);
}

// Sessions of a model with sliding-window layers share a pool's budget and its eviction (both
// block tables of an evicted session go back) but publish and take no blocks.
TEST(KvPool, AWindowModelSharesTheBudgetButNoBlocks) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/gemma3"));
  const Model model = Model::load(data_path("zoo/hf/gemma3"));  // window 16 on 5 of 6 layers
  const KvPoolOptions options{.kv_type = KvType::kF32, .block_tokens = 16};
  const auto roomy = std::make_shared<KvPool>(model, options);
  Session a(model, {.context_length = 256, .threads = 1, .kv_pool = roomy});
  a.eval(sequence(64, 1));
  Session b(model, {.context_length = 256, .threads = 1, .kv_pool = roomy});
  EXPECT_EQ(b.prompt(sequence(64, 1)).reused, 0);
  a.reset();
  b.reset();
  EXPECT_EQ(roomy->cached_blocks(), 0u);
  const size_t one_sequence = roomy->bytes() / 2;  // a's and b's blocks, all free now
  // Room for one such sequence: b's pass evicts a, which must give back both of its tables.
  KvPoolOptions tight = options;
  tight.budget_bytes = one_sequence;
  tight.evict = true;
  const auto pool = std::make_shared<KvPool>(model, tight);
  Session c(model, {.context_length = 256, .threads = 1, .kv_pool = pool});
  Session d(model, {.context_length = 256, .threads = 1, .kv_pool = pool});
  c.eval(sequence(64, 1));
  EXPECT_EQ(pool->bytes(), one_sequence);
  const auto got = d.eval(sequence(64, 2));
  EXPECT_EQ(std::vector<float>(got.begin(), got.end()), cold_logits(model, sequence(64, 2)));
  EXPECT_THROW(c.eval(std::vector<int32_t>{5}), EvictedError);
  EXPECT_EQ(c.kv_bytes(), 0u);
}

}  // namespace
}  // namespace slm
