// generate(): end-of-generation lists, stop strings (held back while they may be starting) and
// the full-context policies, on the bundled model with greedy sampling.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "slm/slm.h"

namespace slm {
namespace {

struct Generated {
  GenerateResult result;
  std::string text;  // everything on_token delivered
};

Generated greedy(const Model& model, GenerateOptions options, SessionOptions session_options = {}) {
  session_options.threads = 1;
  Session session(model, session_options);
  options.sampling.temperature = 0;
  options.ignore_eos = true;
  Generated run;
  options.on_token = [&](std::string_view piece, TokenId) {
    run.text += piece;
    return true;
  };
  run.result = generate(session, model.tokenizer().encode("Once upon a time"), options);
  return run;
}

TEST(Generate, StopStringEndsTheTextBeforeIt) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  const Generated full = greedy(model, {.max_tokens = 64});
  ASSERT_GT(full.text.size(), 60u);
  // A stop string from the middle of the text, spanning several tokens.
  const std::string stop = full.text.substr(30, 7);
  const size_t at = full.text.find(stop);
  const Generated cut = greedy(model, {.max_tokens = 64, .stop_strings = {"no such text", stop}});
  EXPECT_TRUE(cut.result.stopped_by_string);
  EXPECT_EQ(cut.text, full.text.substr(0, at));
  EXPECT_LT(cut.result.tokens.size(), full.result.tokens.size());
  // A stop string that never comes changes nothing, even though its first letter comes often.
  const Generated same = greedy(model, {.max_tokens = 64, .stop_strings = {"e#never"}});
  EXPECT_EQ(same.text, full.text);
  EXPECT_FALSE(same.result.stopped_by_string);
}

TEST(Generate, StopTokensEndGeneration) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  const Generated full = greedy(model, {.max_tokens = 32});
  const TokenId stop = full.result.tokens[10];
  const auto first = std::find(full.result.tokens.begin(), full.result.tokens.end(), stop);
  const Generated cut = greedy(model, {.max_tokens = 32, .stop_tokens = {stop}});
  EXPECT_TRUE(cut.result.stopped_by_eos);
  EXPECT_EQ(cut.result.tokens, std::vector<TokenId>(full.result.tokens.begin(), first));
}

TEST(Generate, FullContextStopsOrShifts) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  const Generated stopped = greedy(model, {.max_tokens = 100}, {.context_length = 32});
  EXPECT_TRUE(stopped.result.stopped_by_context);
  // Every position holds a token; the last generated one came from the last position's logits.
  EXPECT_EQ(stopped.result.prompt_tokens + int32_t(stopped.result.tokens.size()), 33);

  GenerateOptions shift{.max_tokens = 100, .on_full_context = ContextPolicy::kShift,
                        .keep_tokens = 3};
  const Generated shifted = greedy(model, shift, {.context_length = 32});
  EXPECT_FALSE(shifted.result.stopped_by_context);
  EXPECT_EQ(shifted.result.tokens.size(), 100u);
  EXPECT_GE(shifted.result.context_shifts, 3);
  // Up to the first shift, the same tokens as without it.
  EXPECT_EQ(std::vector<TokenId>(shifted.result.tokens.begin(),
                                 shifted.result.tokens.begin() + long(stopped.result.tokens.size())),
            stopped.result.tokens);
  EXPECT_THROW(greedy(model, {.keep_tokens = -1}), InvalidArgumentError);
}

}  // namespace
}  // namespace slm
