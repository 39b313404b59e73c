// Sampler: the fixed chain
//   repetition penalty -> top-k -> temperature -> softmax -> top-p -> min-p -> draw
// Temperature 0 skips everything after the penalty and takes the argmax (lowest id on ties).
// The draw uses our own 53-bit uniform double from std::mt19937_64 (whose output the standard
// fixes), so the same seed gives the same tokens with any standard library.
#include "slm/sampler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "slm/error.h"

namespace slm {

namespace {

void check_options(const SamplingOptions& o) {
  if (!(o.temperature >= 0.0f) || !std::isfinite(o.temperature)) {
    throw InvalidArgumentError(
        fmt::format("sampling temperature must be a finite number >= 0, got {}", o.temperature));
  }
  if (o.top_k < 0) {
    throw InvalidArgumentError(fmt::format("top-k must be >= 0 (0 = off), got {}", o.top_k));
  }
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) {
    throw InvalidArgumentError(fmt::format("top-p must be in (0, 1] (1 = off), got {}", o.top_p));
  }
  if (!(o.min_p >= 0.0f && o.min_p <= 1.0f)) {
    throw InvalidArgumentError(fmt::format("min-p must be in [0, 1] (0 = off), got {}", o.min_p));
  }
  if (!(o.repeat_penalty > 0.0f) || !std::isfinite(o.repeat_penalty)) {
    throw InvalidArgumentError(fmt::format(
        "repeat penalty must be a finite number > 0 (1 = off), got {}", o.repeat_penalty));
  }
  if (o.repeat_last_n < -1) {
    throw InvalidArgumentError(fmt::format(
        "repeat-last-n must be >= 0, or -1 for the whole history, got {}", o.repeat_last_n));
  }
}

// Uniform in [0, 1) from the top 53 bits of one 64-bit draw.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {
  check_options(options_);
}

TokenId Sampler::sample(std::span<const float> logits, std::span<const TokenId> history) {
  if (logits.empty()) throw InvalidArgumentError("cannot sample from empty logits");
  const size_t n = logits.size();

  // Candidates in id order; NaN would break the orderings below, so it counts as -inf.
  candidates_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const float l = logits[i];
    candidates_[i] = Candidate{static_cast<TokenId>(i),
                               std::isnan(l) ? -std::numeric_limits<float>::infinity() : l};
  }

  // Repetition penalty (llama.cpp / CTRL): l > 0 ? l / penalty : l * penalty, once per distinct
  // token among the last repeat_last_n of the history.
  if (options_.repeat_penalty != 1.0f && options_.repeat_last_n != 0 && !history.empty()) {
    const size_t window =
        options_.repeat_last_n < 0
            ? history.size()
            : std::min(history.size(), static_cast<size_t>(options_.repeat_last_n));
    const auto recent = history.subspan(history.size() - window);
    for (size_t i = 0; i < recent.size(); ++i) {
      const TokenId id = recent[i];
      if (id < 0 || static_cast<size_t>(id) >= n) {
        throw InvalidArgumentError(
            fmt::format("history token id {} is outside the vocabulary of {} logits", id, n));
      }
      // Seen earlier in the window: already penalized (the window is small, so O(w^2) is fine
      // and needs no scratch memory).
      if (std::find(recent.begin(), recent.begin() + static_cast<std::ptrdiff_t>(i), id) !=
          recent.begin() + static_cast<std::ptrdiff_t>(i)) {
        continue;
      }
      float& l = candidates_[static_cast<size_t>(id)].logit;
      l = l > 0.0f ? l / options_.repeat_penalty : l * options_.repeat_penalty;
    }
  }

  // Higher logit first; the lower id first on ties, so the order is unique.
  const auto better = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };

  if (options_.temperature == 0.0f) {
    return std::min_element(candidates_.begin(), candidates_.end(), better)->id;
  }

  // Top-k: keep the k best, sorted.
  size_t kept = n;
  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < n) {
    kept = static_cast<size_t>(options_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(kept),
                      candidates_.end(), better);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), better);
  }

  // Temperature, then softmax: p_i = exp((l_i - l_max) / T) / sum_j exp((l_j - l_max) / T).
  // The logit field holds the probability from here on.
  const float l_max = candidates_[0].logit;
  if (l_max == -std::numeric_limits<float>::infinity()) {
    return candidates_[0].id;  // every logit is -inf (or NaN): nothing to weigh
  }
  double sum = 0.0;
  for (size_t i = 0; i < kept; ++i) {
    const double p = std::exp(static_cast<double>(candidates_[i].logit - l_max) /
                              static_cast<double>(options_.temperature));
    candidates_[i].logit = static_cast<float>(p);
    sum += p;
  }
  for (size_t i = 0; i < kept; ++i) {
    candidates_[i].logit = static_cast<float>(candidates_[i].logit / sum);
  }

  // Top-p: the smallest prefix whose probability reaches p (at least one token).
  if (options_.top_p < 1.0f) {
    double cumulative = 0.0;
    for (size_t i = 0; i < kept; ++i) {
      cumulative += candidates_[i].logit;
      if (cumulative >= options_.top_p) {
        kept = i + 1;
        break;
      }
    }
  }

  // Min-p: drop tokens less likely than min_p times the most likely one.
  if (options_.min_p > 0.0f) {
    const float threshold = options_.min_p * candidates_[0].logit;
    size_t i = 1;
    while (i < kept && candidates_[i].logit >= threshold) ++i;
    kept = i;
  }

  // Draw from what is left, renormalized.
  double total = 0.0;
  for (size_t i = 0; i < kept; ++i) total += candidates_[i].logit;
  const double target = uniform01(rng_) * total;
  double cumulative = 0.0;
  for (size_t i = 0; i < kept; ++i) {
    cumulative += candidates_[i].logit;
    if (target < cumulative) return candidates_[i].id;
  }
  return candidates_[kept - 1].id;  // rounding left target at the very top
}

}  // namespace slm
