// Batched evaluation (issue 7 item 4): N sequences of different lengths advanced in one forward
// pass give exactly (bit for bit) the logits each gives alone, with prefills sharing passes with
// decode steps; errors change no session.
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "slm/slm.h"
#include "tests/allocation_counter.h"
#include "tests/test_data.h"

namespace slm {
namespace {

using test::data_path;

// One sequence's part in a schedule: at step `start` it evaluates its prompt (all of its logits
// when all_logits), then one token per step for `decode` steps. Token ids are fixed (not
// sampled), so each call's logits can be compared on their own.
struct Plan {
  int32_t prompt = 1;
  int32_t start = 0;
  int32_t decode = 4;
  bool all_logits = false;
};

std::vector<TokenId> plan_tokens(const Plan& p, size_t seq, int32_t vocab) {
  std::vector<TokenId> ids(size_t(p.prompt + p.decode));
  for (size_t i = 0; i < ids.size(); ++i)
    ids[i] = TokenId((i * 131 + seq * 977 + 5) % size_t(vocab));
  return ids;
}

// The tokens sequence `seq` evaluates at `step` (empty: it sits this one out).
std::span<const TokenId> step_tokens(const Plan& p, const std::vector<TokenId>& ids, int32_t step) {
  if (step < p.start || step > p.start + p.decode) return {};
  if (step == p.start) return std::span(ids).first(size_t(p.prompt));
  return std::span(ids).subspan(size_t(p.prompt + step - p.start - 1), 1);
}

// Every call's logits of every sequence: alone (Session::eval, `threads`) and batched (Batch,
// `threads`), compared for exact equality.
void expect_batch_equals_alone(const Model& model, const std::vector<Plan>& plans, int threads,
                               KvType kv_type = KvType::kF16) {
  const int32_t vocab = model.info().vocab_size;
  const SessionOptions options{
      .context_length = 64, .threads = threads, .kv_type = kv_type, .kv_block_tokens = 8};
  int32_t steps = 0;
  std::vector<std::vector<TokenId>> ids;
  for (size_t s = 0; s < plans.size(); ++s) {
    ids.push_back(plan_tokens(plans[s], s, vocab));
    steps = std::max(steps, plans[s].start + plans[s].decode + 1);
  }
  // alone[s][step]: the logits of sequence s's call at `step`.
  std::vector<std::vector<std::vector<float>>> alone(plans.size());
  for (size_t s = 0; s < plans.size(); ++s) {
    Session session(model, options);
    for (int32_t step = 0; step < steps; ++step) {
      const std::span<const TokenId> tokens = step_tokens(plans[s], ids[s], step);
      if (tokens.empty()) {
        alone[s].emplace_back();
        continue;
      }
      const bool all = plans[s].all_logits && step == plans[s].start;
      const std::span<const float> logits = session.eval(tokens, all);
      alone[s].emplace_back(logits.begin(), logits.end());
    }
  }

  std::vector<Session> sessions;
  for (size_t s = 0; s < plans.size(); ++s) sessions.emplace_back(model, options);
  Batch batch(model, threads);
  for (int32_t step = 0; step < steps; ++step) {
    std::vector<BatchItem> items;
    std::vector<size_t> seq;
    for (size_t s = 0; s < plans.size(); ++s) {
      const std::span<const TokenId> tokens = step_tokens(plans[s], ids[s], step);
      if (tokens.empty()) continue;
      items.push_back({&sessions[s], tokens, plans[s].all_logits && step == plans[s].start});
      seq.push_back(s);
    }
    if (items.empty()) continue;
    const std::span<const std::span<const float>> logits = batch.eval(items);
    ASSERT_EQ(logits.size(), items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      const std::vector<float>& want = alone[seq[i]][size_t(step)];
      ASSERT_EQ(logits[i].size(), want.size()) << "sequence " << seq[i] << " step " << step;
      EXPECT_EQ(std::memcmp(logits[i].data(), want.data(), want.size() * sizeof(float)), 0)
          << "sequence " << seq[i] << " step " << step << " (" << items.size() << " in the pass)";
    }
  }
  for (size_t s = 0; s < plans.size(); ++s) {
    EXPECT_EQ(sessions[s].position(), plans[s].prompt + plans[s].decode);
    EXPECT_EQ(sessions[s].tokens(), ids[s]);
  }
}

// N sequences with different prompt lengths, prefilled together, then decoded together.
std::vector<Plan> together(size_t n) {
  std::vector<Plan> plans;
  for (size_t s = 0; s < n; ++s) plans.push_back({.prompt = int32_t(1 + (s * 5) % 13)});
  return plans;
}

// Prompts that arrive while others decode: each prefill shares its pass with decode rows (one
// asks for all of its logits); sequences end at different steps.
const std::vector<Plan> kStaggered = {
    {.prompt = 7, .start = 0, .decode = 6},
    {.prompt = 1, .start = 1, .decode = 3},
    {.prompt = 11, .start = 2, .decode = 4, .all_logits = true},
    {.prompt = 3, .start = 2, .decode = 5},
};

class BatchModels : public ::testing::TestWithParam<std::string> {};

TEST_P(BatchModels, LogitsEqualEachSequenceAlone) {
  const auto path = data_path(GetParam());
  SLM_REQUIRE_DATA(path);
  const Model model = Model::load(path.string());
  for (const int threads : {1, 2}) {
    for (const size_t n : {1, 3, 8}) {
      SCOPED_TRACE(testing::Message() << n << " sequences, " << threads << " threads");
      expect_batch_equals_alone(model, together(n), threads);
    }
    SCOPED_TRACE(testing::Message() << "staggered, " << threads << " threads");
    expect_batch_equals_alone(model, kStaggered, threads);
  }
}

INSTANTIATE_TEST_SUITE_P(Zoo, BatchModels,
                         ::testing::Values("models/stories260K/stories260K-Q4_0.gguf",
                                           "models/stories260K/stories260K-Q8_0.gguf",
                                           "zoo/gguf/llama-gqa-Q4_0.gguf",
                                           "zoo/gguf/llama-gqa-F32.gguf",
                                           "zoo/gguf/llama-moe-F32.gguf",
                                           "zoo/gguf/phimoe-F32.gguf", "zoo/hf/mistral-swa"),
                         [](const auto& info) {
                           std::string name = std::filesystem::path(info.param).stem().string();
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

TEST(Batch, F32KvCacheToo) {
  const auto path = data_path("models/stories260K/stories260K-Q8_0.gguf");
  SLM_REQUIRE_DATA(path);
  expect_batch_equals_alone(Model::load(path.string()), kStaggered, 2, KvType::kF32);
}

// LongRoPE decides per sequence: in one pass, a sequence that reaches the original context (32
// positions) rotates with the long factors, one that does not with the short ones.
TEST(Batch, LongRopeIsDecidedPerSequence) {
  const auto path = data_path("zoo/hf/phi3-longrope");
  SLM_REQUIRE_DATA(path);
  const Model model = Model::load(path.string());
  expect_batch_equals_alone(model,
                            {{.prompt = 30, .decode = 6},
                             {.prompt = 3, .decode = 6},
                             {.prompt = 20, .start = 2, .decode = 4, .all_logits = true}},
                            2);
}

// A fork and its parent in one pass: both write into the block they share (each gets its own).
TEST(Batch, ForkAndParentInOnePass) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  Session parent(model, {.threads = 1, .kv_block_tokens = 8});
  const std::vector<TokenId> prompt = {1, 403, 407, 261, 378};
  parent.eval(prompt);
  Session child = parent.fork();
  const TokenId a = 300, b = 301;
  Batch batch(model, 1);
  const std::vector<BatchItem> items = {{&parent, std::span(&a, 1)}, {&child, std::span(&b, 1)}};
  const std::span<const std::span<const float>> got = batch.eval(items);
  for (const auto& [logits, next] : {std::pair{got[0], a}, std::pair{got[1], b}}) {
    Session alone(model, {.threads = 1});
    alone.eval(prompt);
    const std::span<const float> want = alone.eval(std::span(&next, 1));
    EXPECT_EQ(std::memcmp(logits.data(), want.data(), want.size_bytes()), 0) << next;
  }
  EXPECT_EQ(parent.tokens().back(), a);
  EXPECT_EQ(child.tokens().back(), b);
}

// Sampling stays per sequence: each session has its own sampler and seed, and the tokens the
// batched loop samples are the ones generate() samples for that session alone.
TEST(Batch, PerSequenceSamplingMatchesGenerate) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  const std::vector<std::string> prompts = {"Once upon a time", "The cat", "Lily and Ben went"};
  constexpr int32_t kTokens = 24;
  std::vector<Session> sessions;
  std::vector<Sampler> samplers;
  std::vector<std::vector<TokenId>> history, generated(prompts.size());
  for (size_t s = 0; s < prompts.size(); ++s) {
    sessions.emplace_back(model, SessionOptions{.threads = 1});
    samplers.emplace_back(SamplingOptions{.seed = 100 + s});
    history.push_back(model.tokenizer().encode(prompts[s]));
  }
  Batch batch(model, 1);
  std::vector<TokenId> next(prompts.size());
  std::vector<BatchItem> items;
  for (size_t s = 0; s < prompts.size(); ++s) items.push_back({&sessions[s], history[s]});
  for (int32_t step = 0; step < kTokens; ++step) {
    const std::span<const std::span<const float>> logits = batch.eval(items);
    for (size_t s = 0; s < prompts.size(); ++s) {
      next[s] = samplers[s].sample(logits[s], history[s]);
      history[s].push_back(next[s]);
      generated[s].push_back(next[s]);
      items[s].tokens = std::span(&next[s], 1);
    }
  }
  for (size_t s = 0; s < prompts.size(); ++s) {
    Session alone(model, {.threads = 1});
    const GenerateResult want =
        generate(alone, model.tokenizer().encode(prompts[s]),
                 {.max_tokens = kTokens, .sampling = {.seed = 100 + s}, .ignore_eos = true});
    EXPECT_EQ(generated[s], want.tokens) << prompts[s];
  }
}

TEST(Batch, BadItemsAreClearErrorsAndChangeNothing) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  const auto other_path = data_path("models/stories260K/stories260K-Q8_0.gguf");
  Session a(model, {.context_length = 8, .threads = 1}), b(model, {.context_length = 8});
  a.eval(std::vector<TokenId>{1, 2, 3});
  const std::vector<TokenId> one = {5}, bad = {5, 999999}, six = {1, 2, 3, 4, 5, 6};
  Batch batch(model, 1);
  const auto fails = [&](std::vector<BatchItem> items, const std::string& needle) {
    test::expect_error<InvalidArgumentError>([&] { batch.eval(items); }, {needle});
    EXPECT_EQ(a.tokens(), (std::vector<TokenId>{1, 2, 3}));
    EXPECT_EQ(b.position(), 0);
  };
  fails({}, "no items");
  fails({{&a, one}, {nullptr, one}}, "item 1: no session");
  fails({{&a, one}, {&b, one}, {&a, one}}, "items 0 and 2 are the same session");
  fails({{&a, one}, {&b, {}}}, "item 1: no tokens");
  fails({{&a, one}, {&b, bad}}, "999999");
  fails({{&b, one}, {&a, six}}, "item 1: 6 tokens do not fit");
  if (std::filesystem::exists(other_path)) {
    const Model other = Model::load(other_path.string());
    Session c(other, {.threads = 1});
    fails({{&a, one}, {&c, one}}, "another model");
  }
  EXPECT_THROW(Batch(model, -1), InvalidArgumentError);
  // After the errors the sessions work as before.
  batch.eval(std::vector<BatchItem>{{&a, one}, {&b, one}});
  EXPECT_EQ(a.position(), 4);
  EXPECT_EQ(b.position(), 1);
}

// Once the first steps have grown the scratch, a batched decode step allocates nothing.
TEST(Batch, DecodingAllocatesNothing) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  for (const int threads : {1, 2}) {
    std::vector<Session> sessions;
    for (int i = 0; i < 4; ++i) sessions.emplace_back(model, SessionOptions{.threads = threads});
    Batch batch(model, threads);
    const std::vector<TokenId> prompt = {1, 403, 407, 261};
    std::vector<BatchItem> items;
    for (Session& s : sessions) items.push_back({&s, prompt});
    batch.eval(items);
    const TokenId next = 378;
    for (BatchItem& item : items) item.tokens = std::span(&next, 1);
    batch.eval(items);
    test::AllocationCounter counter;
    for (int step = 0; step < 20; ++step) batch.eval(items);
    EXPECT_EQ(counter.count(), 0u) << threads << " threads";
  }
}

// A KV budget that cannot hold every sequence's next block: OutOfMemoryError, and the sequences
// prepared before the one that ran out give their new blocks back.
TEST(Batch, FullKvPoolChangesNoSession) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  // stories260K: 5 layers × K/V × 4 positions × 32 (n_head_kv · head_dim) f32 = 5120 bytes.
  Session a(
      model,
      {.threads = 1, .kv_type = KvType::kF32, .kv_block_tokens = 4, .kv_budget_bytes = 2 * 5120});
  a.eval(std::vector<TokenId>{1, 2, 3, 4});  // one block
  ASSERT_EQ(a.kv_bytes(), 5120u);
  Session b = a.fork();  // shares it and the pool
  const std::vector<TokenId> four = {5, 6, 7, 8};
  Batch batch(model, 1);
  // a takes the last free block, then b finds none.
  EXPECT_THROW(batch.eval(std::vector<BatchItem>{{&a, four}, {&b, four}}), OutOfMemoryError);
  EXPECT_EQ(a.position(), 4);
  EXPECT_EQ(b.position(), 4);
  EXPECT_EQ(a.kv_bytes(), 5120u);
  EXPECT_EQ(b.kv_bytes(), 5120u);
  // One of them fits, and gives the logits a fresh session does.
  const std::span<const std::span<const float>> got =
      batch.eval(std::vector<BatchItem>{{&b, four}});
  Session fresh(model, {.threads = 1, .kv_type = KvType::kF32});
  const std::span<const float> want = fresh.eval(std::vector<TokenId>{1, 2, 3, 4, 5, 6, 7, 8});
  EXPECT_EQ(std::memcmp(got[0].data(), want.data(), want.size_bytes()), 0);
}

}  // namespace
}  // namespace slm
