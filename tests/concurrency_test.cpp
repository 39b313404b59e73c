// One Model shared by several threads, each with its own Session (or a fork sharing KV blocks
// with others): every thread must get exactly what it gets running alone. CI also runs these
// under ThreadSanitizer (.ci/run), which reports any data race between the threads.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "slm/slm.h"

namespace slm {
namespace {

// Runs each job on its own thread, all at once.
void run_together(const std::vector<std::function<void()>>& jobs) {
  std::vector<std::thread> threads;
  for (const auto& job : jobs) threads.emplace_back(job);
  for (std::thread& t : threads) t.join();
}

struct Conversation {
  std::string prompt;
  uint64_t seed;
  std::vector<TokenId> tokens;  // generated
  std::string text;             // streamed
};

void converse(const Model& model, Conversation& c) {
  Session session(model, {.threads = 1});
  GenerateOptions options{.max_tokens = 40, .ignore_eos = true};
  options.sampling.seed = c.seed;  // sampled, not greedy: each thread has its own sampler
  options.on_token = [&c](std::string_view piece, TokenId) {
    c.text += piece;
    return true;
  };
  c.tokens = generate(session, model.tokenizer().encode(c.prompt), options).tokens;
}

TEST(Concurrency, SessionsOnThreadsMatchRunningAlone) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  std::vector<Conversation> alone = {
      {"Once upon a time", 1, {}, {}}, {"The little dog", 2, {}, {}}, {"Lily and Tom", 3, {}, {}}};
  for (Conversation& c : alone) converse(model, c);
  std::vector<Conversation> together = alone;
  std::vector<std::function<void()>> jobs;
  for (Conversation& c : together) {
    c.tokens.clear();
    c.text.clear();
    jobs.emplace_back([&model, &c] { converse(model, c); });
  }
  run_together(jobs);
  for (size_t i = 0; i < alone.size(); ++i) {
    EXPECT_EQ(together[i].tokens, alone[i].tokens) << alone[i].prompt;
    EXPECT_EQ(together[i].text, alone[i].text) << alone[i].prompt;
    EXPECT_EQ(alone[i].tokens.size(), 40u);
  }
}

// Forks share their parent's KV blocks (and pool) and copy a block on their first write to it:
// the parent and two forks extending the same sequence on three threads at once.
TEST(Concurrency, ForksExtendSharedBlocksOnThreads) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  const std::vector<TokenId> prefix = model.tokenizer().encode("Once upon a time, there was");
  const std::vector<std::vector<TokenId>> continuations = {
      model.tokenizer().encode(" a little girl", false),
      model.tokenizer().encode(" a big red ball", false),
      model.tokenizer().encode(" a cat who liked", false)};
  // kv_block_tokens 4: the prefix ends inside a shared block, which each writer must copy.
  const SessionOptions options{.threads = 1, .kv_block_tokens = 4};

  std::vector<std::vector<float>> alone;
  for (const auto& c : continuations) {
    Session s(model, options);
    s.eval(prefix);
    const auto logits = s.eval(c);
    alone.emplace_back(logits.begin(), logits.end());
  }

  Session parent(model, options);
  parent.eval(prefix);
  std::vector<Session> sessions;
  sessions.push_back(parent.fork());
  sessions.push_back(parent.fork());
  sessions.push_back(std::move(parent));
  std::vector<std::vector<float>> together(continuations.size());
  std::vector<std::function<void()>> jobs;
  for (size_t i = 0; i < continuations.size(); ++i) {
    jobs.emplace_back([&, i] {
      const auto logits = sessions[i].eval(continuations[i]);
      together[i].assign(logits.begin(), logits.end());
    });
  }
  run_together(jobs);
  for (size_t i = 0; i < continuations.size(); ++i) EXPECT_EQ(together[i], alone[i]) << i;
}

// Embeddings and generation from the same model at the same time.
TEST(Concurrency, EmbedWhileGenerating) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  const std::vector<float> embedding = embed(model, "The cat sat", {.threads = 1});
  Conversation alone{"Once upon a time", 7, {}, {}};
  converse(model, alone);

  std::vector<float> embedding_together;
  Conversation together{"Once upon a time", 7, {}, {}};
  run_together({[&] { embedding_together = embed(model, "The cat sat", {.threads = 1}); },
                [&] { converse(model, together); }});
  EXPECT_EQ(embedding_together, embedding);
  EXPECT_EQ(together.tokens, alone.tokens);
}

}  // namespace
}  // namespace slm
