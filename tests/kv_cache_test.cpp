// The paged KV cache (issue 7): a block pool with reference counts and a budget, sequences as
// block tables with fork (shared blocks, copy on write) and truncate; and the forward pass over it
// giving the same logits as the contiguous cache for any block size.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "slm/slm.h"
#include "src/api/model_impl.h"
#include "src/graph/decoder.h"
#include "src/runtime/paged_kv_cache.h"
#include "tests/test_data.h"

namespace slm {
namespace {

using test::data_path;

// 2 layers, rows of 8 f32: a block of 4 positions is 2·2·4·8·4 = 512 bytes.
std::shared_ptr<KvBlockPool> small_pool(size_t blocks) {
  return std::make_shared<KvBlockPool>(2, 8, KvElement::kF32, 4, blocks * 512);
}

TEST(KvBlockPool, AllocatesLazilyReusesAndEnforcesItsBudget) {
  const auto pool = small_pool(3);
  EXPECT_EQ(pool->block_bytes(), 512u);
  EXPECT_EQ(pool->max_blocks(), 3u);
  EXPECT_EQ(pool->bytes(), 0u);  // nothing taken before use
  const int32_t a = pool->allocate(), b = pool->allocate();
  EXPECT_EQ(pool->bytes(), 1024u);
  pool->retain(a);
  EXPECT_EQ(pool->references(a), 2);
  pool->release(a);
  pool->release(b);
  EXPECT_EQ(pool->blocks_in_use(), 1u);
  EXPECT_EQ(pool->allocate(), b);  // reused, no new memory
  EXPECT_EQ(pool->bytes(), 1024u);
  pool->allocate();
  EXPECT_THROW(pool->allocate(), OutOfMemoryError);
  EXPECT_THROW(KvBlockPool(2, 8, KvElement::kF32, 0, 4096), InvalidArgumentError);
}

TEST(PagedKvCache, GrowsByBlocksForksCopiesOnWriteAndTruncates) {
  const auto pool = small_pool(8);
  PagedKvCache seq(pool, 32);
  seq.prepare(0, 6);  // positions 0..5: two blocks
  ASSERT_EQ(seq.blocks().size(), 2u);
  for (int32_t pos = 0; pos < 6; ++pos) {
    for (int32_t layer = 0; layer < 2; ++layer) {
      std::memset(seq.k_row(layer, pos), pos + 1, 32);
      std::memset(seq.v_row(layer, pos), 100 + pos, 32);
    }
  }
  // KvRows walks the same rows the writes went to.
  const ref::KvRows k1 = seq.k_rows(1, 2);
  EXPECT_EQ(k1.row(0), seq.k_row(1, 2));
  EXPECT_EQ(k1.row(2), seq.k_row(1, 4));  // across the block boundary

  PagedKvCache child = seq.fork();
  EXPECT_EQ(child.blocks(), seq.blocks());
  EXPECT_EQ(pool->references(seq.blocks()[1]), 2);
  child.prepare(5, 1);  // writes into shared block 1: the child gets its own copy
  EXPECT_NE(child.blocks()[1], seq.blocks()[1]);
  EXPECT_EQ(child.blocks()[0], seq.blocks()[0]);  // block 0 is still shared
  std::memset(child.k_row(0, 5), 77, 32);
  EXPECT_EQ(child.k_row(0, 4)[0], 5);  // the copy holds the parent's rows
  EXPECT_EQ(seq.k_row(0, 5)[0], 6);    // and the child's write did not reach the parent

  child.truncate(3);  // keeps block 0 (positions 0..3)
  EXPECT_EQ(child.blocks().size(), 1u);
  EXPECT_EQ(pool->blocks_in_use(), 2u);  // seq's two blocks; the child's copy went back
  seq.truncate(0);
  EXPECT_TRUE(seq.blocks().empty());
  EXPECT_EQ(pool->references(child.blocks()[0]), 1);
}

// Logits of a prompt then greedy decode steps through `cache`.
std::vector<float> run_decoder(const Model& model, KvCache& cache) {
  const auto& m = *model.impl();
  Decoder decoder(m.config, m.weights);
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 432, 383, 42, 7, 300};
  const size_t V = size_t(m.config.n_vocab);
  std::vector<float> out(prompt.size() * V);
  decoder.forward(prompt, 0, cache, true, out.data(), 2);
  std::vector<float> step(V);
  int32_t next = int32_t(std::max_element(out.end() - long(V), out.end()) - (out.end() - long(V)));
  for (int32_t pos = int32_t(prompt.size()); pos < 40; ++pos) {
    decoder.forward(std::span(&next, 1), pos, cache, false, step.data(), 2);
    out.insert(out.end(), step.begin(), step.end());
    next = int32_t(std::max_element(step.begin(), step.end()) - step.begin());
  }
  return out;
}

TEST(PagedKvCache, LogitsEqualTheContiguousCacheForAnyBlockSize) {
  for (const char* file : {"models/stories260K/stories260K.gguf", "zoo/gguf/llama-gqa-F32.gguf",
                           "zoo/hf/mistral-swa"}) {
    SLM_REQUIRE_DATA(data_path(file));
    const Model model = Model::load(data_path(file).string());
    const ModelConfig& c = model.impl()->config;
    const int32_t row = c.n_head_kv * c.head_dim;
    for (KvElement e : {KvElement::kF32, KvElement::kF16}) {
      ContiguousKvCache flat(c.n_layer, 64, row, e);
      const std::vector<float> want = run_decoder(model, flat);
      for (int32_t block : {1, 3, 16, 64}) {
        PagedKvCache paged(std::make_shared<KvBlockPool>(c.n_layer, row, e, block, size_t(1) << 30),
                           64);
        const std::vector<float> got = run_decoder(model, paged);
        ASSERT_EQ(got.size(), want.size());
        EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0)
            << file << ", block " << block;
      }
    }
  }
}

// Session-level: fork and rewind give exactly what independent runs give.
std::vector<float> eval_all(Session& s, const std::vector<int32_t>& tokens) {
  const auto l = s.eval(tokens, true);
  return {l.begin(), l.end()};
}

TEST(SessionKv, ForkedContinuationsEqualIndependentRuns) {
  SLM_REQUIRE_DATA(data_path("models/stories260K/stories260K.gguf"));
  const Model model = Model::load(data_path("models/stories260K/stories260K.gguf").string());
  const std::vector<int32_t> prefix = {1, 403, 407, 261, 378, 432, 383};  // ends mid-block
  const std::vector<int32_t> a = {42, 7, 300}, b = {9, 8};
  for (int32_t block : {4, 32}) {
    const SessionOptions options{.threads = 1, .kv_block_tokens = block};
    Session parent(model, options);
    parent.eval(prefix);
    Session child = parent.fork();
    EXPECT_EQ(child.position(), 7);
    const std::vector<float> got_a = eval_all(parent, a), got_b = eval_all(child, b);

    Session fresh_a(model, options), fresh_b(model, options);
    fresh_a.eval(prefix);
    fresh_b.eval(prefix);
    EXPECT_EQ(got_a, eval_all(fresh_a, a)) << "block " << block;
    EXPECT_EQ(got_b, eval_all(fresh_b, b)) << "block " << block;
  }
}

TEST(SessionKv, RewindThenDecodeEqualsAFreshRun) {
  SLM_REQUIRE_DATA(data_path("models/stories260K/stories260K.gguf"));
  const Model model = Model::load(data_path("models/stories260K/stories260K.gguf").string());
  const SessionOptions options{.threads = 1, .kv_block_tokens = 4};
  Session s(model, options);
  s.eval(std::vector<int32_t>{1, 403, 407, 261, 378, 432, 383, 42, 7, 300});
  const size_t held = s.kv_bytes();
  s.rewind(5);
  EXPECT_EQ(s.position(), 5);
  EXPECT_LT(s.kv_bytes(), held);  // blocks past position 5 went back to the pool
  const std::vector<float> got = eval_all(s, {9, 8, 7});
  Session fresh(model, options);
  fresh.eval(std::vector<int32_t>{1, 403, 407, 261, 378});
  EXPECT_EQ(got, eval_all(fresh, {9, 8, 7}));
  EXPECT_THROW(s.rewind(9), InvalidArgumentError);
  EXPECT_THROW(s.rewind(-1), InvalidArgumentError);
}

TEST(SessionKv, MemoryFollowsUseAndABudgetIsAClearError) {
  SLM_REQUIRE_DATA(data_path("models/stories260K/stories260K.gguf"));
  const Model model = Model::load(data_path("models/stories260K/stories260K.gguf").string());
  const ModelConfig& c = model.impl()->config;
  const size_t block_bytes = size_t(c.n_layer) * 2 * 16 * size_t(c.n_head_kv * c.head_dim) * 2;
  Session s(model, {.threads = 1, .kv_block_tokens = 16, .kv_budget_bytes = 2 * block_bytes});
  EXPECT_EQ(s.kv_bytes(), 0u);
  s.eval(std::vector<int32_t>{1, 403, 407});
  EXPECT_EQ(s.kv_bytes(), block_bytes);  // one block, not the context's worth
  Session other = s.fork();  // shares the pool and its budget
  other.eval(std::vector<int32_t>{5, 6});  // copies the shared block: both blocks are in use
  const std::vector<int32_t> long_input(20, 300);
  try {
    s.eval(long_input);
    FAIL() << "expected OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    EXPECT_NE(std::string(e.what()).find("KV cache is full"), std::string::npos) << e.what();
  }
  EXPECT_EQ(s.position(), 3);  // nothing was lost: the sequence still decodes once memory frees
  other.reset();
  EXPECT_NO_THROW(s.eval(long_input));
  EXPECT_THROW(Session(model, {.kv_block_tokens = 0}), InvalidArgumentError);
  EXPECT_THROW(Session(model, {.kv_budget_bytes = 1}), InvalidArgumentError);
}

}  // namespace
}  // namespace slm

namespace slm {
namespace {

// A request sharing 90 % of its tokens with the cached sequence computes only the rest and
// gives the logits of a cold run.
TEST(SessionKv, PromptReusesTheCachedPrefix) {
  SLM_REQUIRE_DATA(data_path("zoo/gguf/llama-gqa-F32.gguf"));
  const Model model = Model::load(data_path("zoo/gguf/llama-gqa-F32.gguf").string());
  std::vector<int32_t> first(50), second;
  for (size_t i = 0; i < first.size(); ++i) first[i] = int32_t(3 + (i * 37) % 500);
  second.assign(first.begin(), first.begin() + 45);  // the shared prefix
  for (int32_t t : {11, 12, 13, 14, 15}) second.push_back(t);

  Session warm(model, {.threads = 1, .kv_block_tokens = 16});
  EXPECT_EQ(warm.prompt(first).reused, 0);
  const Session::PromptResult r = warm.prompt(second, /*all_logits=*/true);
  EXPECT_EQ(r.reused, 45);
  EXPECT_EQ(r.logits.size(), 5u * 512u);  // only the 5 new tokens were evaluated
  EXPECT_EQ(warm.tokens(), second);
  const std::vector<float> got(r.logits.begin(), r.logits.end());

  Session cold(model, {.threads = 1, .kv_block_tokens = 16});
  const auto all = cold.eval(second, true);
  const std::vector<float> want(all.end() - 5 * 512, all.end());
  EXPECT_EQ(got, want);
  // The same prompt again: everything but the last token comes from the cache.
  EXPECT_EQ(warm.prompt(second).reused, 49);
}

TEST(SessionKv, SavedStateResumesBitIdentically) {
  SLM_REQUIRE_DATA(data_path("models/stories260K/stories260K.gguf"));
  const Model model = Model::load(data_path("models/stories260K/stories260K.gguf").string());
  const std::string path = (test::temp_dir() / "state.bin").string();
  Session a(model, {.threads = 1, .kv_block_tokens = 8});
  a.eval(std::vector<int32_t>{1, 403, 407, 261, 378, 432, 383, 42, 7, 300, 9});
  a.save_state(path);
  const std::vector<float> want = eval_all(a, {5, 6, 7});

  Session b(model, {.threads = 1, .kv_block_tokens = 32});  // any block size
  b.eval(std::vector<int32_t>{1, 2, 3});                   // replaced by the loaded sequence
  b.load_state(path);
  EXPECT_EQ(b.position(), 11);
  EXPECT_EQ(eval_all(b, {5, 6, 7}), want);
}

TEST(SessionKv, BadStateFilesAreClearErrorsAndLoseNothing) {
  SLM_REQUIRE_DATA(data_path("models/stories260K/stories260K.gguf"));
  SLM_REQUIRE_DATA(data_path("zoo/gguf/llama-gqa-F32.gguf"));
  const Model model = Model::load(data_path("models/stories260K/stories260K.gguf").string());
  const Model other = Model::load(data_path("zoo/gguf/llama-gqa-F32.gguf").string());
  const std::filesystem::path dir = test::temp_dir();
  Session a(model, {.threads = 1});
  a.eval(std::vector<int32_t>{1, 403, 407, 261});
  a.save_state((dir / "good.bin").string());

  Session b(model, {.threads = 1});
  b.eval(std::vector<int32_t>{1, 403});
  const auto expect_error = [&](Session& s, const std::string& file, const char* needle) {
    try {
      s.load_state(file);
      ADD_FAILURE() << file << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(b, (dir / "missing.bin").string(), "cannot open");
  const std::string good = test::read_text(dir / "good.bin");
  for (size_t cut : {size_t(3), size_t(20), good.size() - 1}) {
    std::ofstream(dir / "cut.bin", std::ios::binary) << good.substr(0, cut);
    expect_error(b, (dir / "cut.bin").string(), "truncated");
  }
  std::ofstream(dir / "junk.bin", std::ios::binary) << std::string(64, 'x');
  expect_error(b, (dir / "junk.bin").string(), "not an slm session state");
  Session f32(model, {.threads = 1, .kv_type = KvType::kF32});
  expect_error(f32, (dir / "good.bin").string(), "KV cache");
  Session wrong(other, {.threads = 1});
  expect_error(wrong, (dir / "good.bin").string(), "another model");
  EXPECT_EQ(b.tokens(), (std::vector<int32_t>{1, 403}));  // b still holds its own sequence
}

}  // namespace
}  // namespace slm
