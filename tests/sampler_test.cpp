#include "slm/sampler.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <vector>

#include "slm/error.h"

namespace slm {
namespace {

SamplingOptions greedy() {
  SamplingOptions o;
  o.temperature = 0.0f;
  return o;
}

// Options with every filter off, so only temperature shapes the distribution.
SamplingOptions plain(float temperature, uint64_t seed = 42) {
  SamplingOptions o;
  o.temperature = temperature;
  o.top_k = 0;
  o.top_p = 1.0f;
  o.min_p = 0.0f;
  o.repeat_penalty = 1.0f;
  o.seed = seed;
  return o;
}

// Logits whose softmax (at temperature 1) is exactly `probs`.
std::vector<float> logits_for(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

std::vector<int> histogram(Sampler& sampler, const std::vector<float>& logits, int draws) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[static_cast<size_t>(sampler.sample(logits, {}))];
  return counts;
}

TEST(Sampler, GreedyTakesArgmaxAndLowestIdOnTies) {
  Sampler sampler(greedy());
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f};
  EXPECT_EQ(sampler.sample(logits, {}), 1);
  const std::vector<float> all_equal(7, 3.0f);
  EXPECT_EQ(sampler.sample(all_equal, {}), 0);
  const std::vector<float> with_nan = {NAN, 1.0f, 1.0f};
  EXPECT_EQ(sampler.sample(with_nan, {}), 1);
}

TEST(Sampler, TopKOneEqualsGreedy) {
  SamplingOptions o = plain(1.5f);
  o.top_k = 1;
  Sampler top1(o);
  Sampler argmax(greedy());
  std::mt19937_64 gen(7);
  std::normal_distribution<float> normal;  // only makes inputs; results do not depend on it
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> logits(100);
    for (float& l : logits) l = normal(gen);
    logits[static_cast<size_t>(trial)] = logits[static_cast<size_t>(trial) + 1] = 9.0f;  // a tie
    EXPECT_EQ(top1.sample(logits, {}), argmax.sample(logits, {})) << "trial " << trial;
  }
}

TEST(Sampler, SameSeedSameTokens) {
  const std::vector<float> logits = {1.0f, 0.5f, 0.2f, 0.9f, 1.1f, -0.3f, 0.7f, 0.0f};
  SamplingOptions o;  // the defaults: top-k 40, top-p 0.95, min-p 0.05, T 0.8
  o.seed = 1234;
  Sampler a(o), b(o);
  o.seed = 1235;
  Sampler c(o);
  std::vector<TokenId> ta, tb, tc;
  for (int i = 0; i < 200; ++i) {
    ta.push_back(a.sample(logits, ta));
    tb.push_back(b.sample(logits, tb));
    tc.push_back(c.sample(logits, tc));
  }
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);
}

TEST(Sampler, SeededSequenceIsPinned) {
  // Pins the exact draws (mt19937_64 output is fixed by the standard and the uniform double
  // is ours), so any change to the chain or the draw shows up here.
  Sampler sampler(plain(1.0f, 0xC0FFEE));
  const std::vector<float> logits = logits_for({0.5, 0.3, 0.2});
  std::vector<TokenId> got;
  for (int i = 0; i < 12; ++i) got.push_back(sampler.sample(logits, {}));
  std::mt19937_64 rng(0xC0FFEE);
  std::vector<TokenId> expected;
  for (int i = 0; i < 12; ++i) {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    expected.push_back(u < 0.5 ? 0 : (u < 0.8 ? 1 : 2));
  }
  EXPECT_EQ(got, expected);
}

TEST(Sampler, DistributionMatchesProbabilities) {
  const std::vector<double> probs = {0.6, 0.3, 0.1};
  Sampler sampler(plain(1.0f, 99));
  const int draws = 20000;
  const auto counts = histogram(sampler, logits_for(probs), draws);
  for (size_t i = 0; i < probs.size(); ++i) {
    EXPECT_NEAR(counts[i] / static_cast<double>(draws), probs[i], 0.02) << "token " << i;
  }
}

TEST(Sampler, TemperatureSharpensAndFlattens) {
  const std::vector<float> logits = logits_for({0.6, 0.3, 0.1});
  const int draws = 20000;
  Sampler cold(plain(0.5f, 3));
  Sampler hot(plain(2.0f, 3));
  const auto c = histogram(cold, logits, draws);
  const auto h = histogram(hot, logits, draws);
  // T = 0.5 squares the probabilities: 0.36/0.09/0.01 over 0.46.
  EXPECT_NEAR(c[0] / static_cast<double>(draws), 0.36 / 0.46, 0.02);
  // T = 2 takes square roots: sqrt(.6)/(sqrt(.6)+sqrt(.3)+sqrt(.1)).
  const double z = std::sqrt(0.6) + std::sqrt(0.3) + std::sqrt(0.1);
  EXPECT_NEAR(h[0] / static_cast<double>(draws), std::sqrt(0.6) / z, 0.02);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  SamplingOptions o = greedy();
  o.repeat_penalty = 2.0f;
  o.repeat_last_n = 4;
  Sampler sampler(o);
  // Token 0 leads (3.0) but was seen: 3.0 / 2 = 1.5 < 2.0, so token 1 wins.
  EXPECT_EQ(sampler.sample(std::vector<float>{3.0f, 2.0f, 1.0f}, std::vector<TokenId>{0}), 1);
  // Seen several times: penalized once, 3.0 / 2 = 1.5 > 1.4.
  EXPECT_EQ(sampler.sample(std::vector<float>{3.0f, 1.4f}, std::vector<TokenId>{0, 0, 0, 0}), 0);
  // Negative logits get more negative: -1 * 2 = -2 < -1.5.
  EXPECT_EQ(sampler.sample(std::vector<float>{-1.0f, -1.5f}, std::vector<TokenId>{0}), 1);
  // Only the last repeat_last_n tokens count: 0 is five tokens back.
  EXPECT_EQ(
      sampler.sample(std::vector<float>{3.0f, 2.0f, 1.0f}, std::vector<TokenId>{0, 2, 2, 2, 2}), 0);
  // With the penalty off, history does not matter.
  Sampler off(greedy());
  EXPECT_EQ(off.sample(std::vector<float>{3.0f, 2.0f}, std::vector<TokenId>{0}), 0);
}

TEST(Sampler, RepetitionPenaltyLowersFrequencyWhenSampling) {
  SamplingOptions o = plain(1.0f, 5);
  o.repeat_penalty = 1.5f;
  Sampler penalized(o);
  Sampler unpenalized(plain(1.0f, 5));
  const std::vector<float> logits = {1.0f, 1.0f};
  const std::vector<TokenId> history = {0};
  int zeros_penalized = 0, zeros_plain = 0;
  for (int i = 0; i < 5000; ++i) {
    zeros_penalized += penalized.sample(logits, history) == 0;
    zeros_plain += unpenalized.sample(logits, history) == 0;
  }
  // exp(1/1.5) / (exp(1/1.5) + e) = 0.417 vs 0.5.
  EXPECT_NEAR(zeros_penalized / 5000.0, 0.417, 0.03);
  EXPECT_NEAR(zeros_plain / 5000.0, 0.5, 0.03);
}

TEST(Sampler, TopPKeepsSmallestSetReachingP) {
  const std::vector<float> logits = logits_for({0.5, 0.3, 0.15, 0.05});
  SamplingOptions o = plain(1.0f, 11);
  o.top_p = 0.75f;  // 0.5 is short of it, 0.5 + 0.3 reaches it: tokens 0 and 1 only
  Sampler sampler(o);
  const auto counts = histogram(sampler, logits, 10000);
  EXPECT_EQ(counts[2], 0);
  EXPECT_EQ(counts[3], 0);
  EXPECT_NEAR(counts[0] / 10000.0, 0.5 / 0.8, 0.03);

  o.top_p = 0.1f;  // the first token alone exceeds p: always kept
  Sampler tiny(o);
  const auto only = histogram(tiny, logits, 1000);
  EXPECT_EQ(only[0], 1000);
}

TEST(Sampler, MinPDropsTokensBelowFractionOfBest) {
  const std::vector<float> logits = logits_for({0.5, 0.3, 0.15, 0.05});
  SamplingOptions o = plain(1.0f, 13);
  o.min_p = 0.35f;  // threshold 0.175: tokens 0 and 1 stay
  Sampler sampler(o);
  const auto counts = histogram(sampler, logits, 10000);
  EXPECT_EQ(counts[2], 0);
  EXPECT_EQ(counts[3], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_NEAR(counts[0] / 10000.0, 0.5 / 0.8, 0.03);
}

TEST(Sampler, TopKLimitsCandidates) {
  const std::vector<float> logits = logits_for({0.1, 0.4, 0.2, 0.3});
  SamplingOptions o = plain(1.0f, 17);
  o.top_k = 2;  // tokens 1 and 3
  Sampler sampler(o);
  const auto counts = histogram(sampler, logits, 5000);
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[2], 0);
  EXPECT_NEAR(counts[1] / 5000.0, 0.4 / 0.7, 0.03);
}

TEST(Sampler, RejectsInvalidOptionsAndInputs) {
  auto make = [](auto change) {
    SamplingOptions o;
    change(o);
    return Sampler(o);
  };
  EXPECT_THROW(make([](SamplingOptions& o) { o.temperature = -0.1f; }), InvalidArgumentError);
  EXPECT_THROW(make([](SamplingOptions& o) { o.temperature = NAN; }), InvalidArgumentError);
  EXPECT_THROW(make([](SamplingOptions& o) { o.top_k = -1; }), InvalidArgumentError);
  EXPECT_THROW(make([](SamplingOptions& o) { o.top_p = 0.0f; }), InvalidArgumentError);
  EXPECT_THROW(make([](SamplingOptions& o) { o.top_p = 1.5f; }), InvalidArgumentError);
  EXPECT_THROW(make([](SamplingOptions& o) { o.min_p = -0.1f; }), InvalidArgumentError);
  EXPECT_THROW(make([](SamplingOptions& o) { o.min_p = 1.1f; }), InvalidArgumentError);
  EXPECT_THROW(make([](SamplingOptions& o) { o.repeat_penalty = 0.0f; }), InvalidArgumentError);
  EXPECT_THROW(make([](SamplingOptions& o) { o.repeat_last_n = -2; }), InvalidArgumentError);
  EXPECT_NO_THROW(make([](SamplingOptions& o) { o.repeat_last_n = -1; }));

  Sampler sampler{SamplingOptions{}};
  EXPECT_THROW(sampler.sample(std::span<const float>{}, {}), InvalidArgumentError);
  SamplingOptions o;
  o.repeat_penalty = 1.1f;
  Sampler penalized(o);
  EXPECT_THROW(penalized.sample(std::vector<float>{1.0f, 2.0f}, std::vector<TokenId>{5}),
               InvalidArgumentError);
}

}  // namespace
}  // namespace slm
