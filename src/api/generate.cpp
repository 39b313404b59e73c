#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include "slm/error.h"
#include "slm/model.h"

namespace slm {
namespace {

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// Text on its way to the caller, held back while it might be the start of a stop string.
class StopStringFilter {
 public:
  explicit StopStringFilter(const std::vector<std::string>& stops) : stops_(stops) {}

  // Adds a piece; returns what can be delivered now. stopped() tells whether a stop string came.
  std::string push(std::string_view piece) {
    held_ += piece;
    size_t cut = std::string::npos;
    for (const std::string& s : stops_) {
      if (!s.empty()) cut = std::min(cut, held_.find(s));
    }
    if (cut != std::string::npos) {
      stopped_ = true;
      std::string out = held_.substr(0, cut);
      held_.clear();
      return out;
    }
    // Keep the longest suffix that is a proper prefix of some stop string.
    size_t keep = 0;
    for (const std::string& s : stops_) {
      for (size_t n = std::min(s.size() - (s.empty() ? 0 : 1), held_.size()); n > keep; --n) {
        if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
          keep = n;
          break;
        }
      }
    }
    std::string out = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    return out;
  }
  std::string flush() { return std::exchange(held_, {}); }
  bool stopped() const { return stopped_; }

 private:
  const std::vector<std::string>& stops_;
  std::string held_;
  bool stopped_ = false;
};

// ContextPolicy::kShift: the sequence without the oldest half of what follows keep_tokens, the
// kept tail re-evaluated at its new positions.
void shift_context(Session& session, int32_t keep) {
  const std::vector<TokenId> all = session.tokens();
  keep = std::clamp(keep, 0, int32_t(all.size()) - 2);
  const int32_t drop = std::max<int32_t>(1, (int32_t(all.size()) - keep) / 2);
  std::vector<TokenId> shifted(all.begin(), all.begin() + keep);
  shifted.insert(shifted.end(), all.begin() + keep + drop, all.end());
  session.prompt(shifted);
}

}  // namespace

GenerateResult generate(Session& session, std::span<const TokenId> prompt,
                        const GenerateOptions& options) {
  const Model& model = session.model();
  if (options.keep_tokens < 0) {
    throw InvalidArgumentError(fmt::format("keep_tokens {} is negative", options.keep_tokens));
  }
  Sampler sampler(options.sampling);
  // The stream starts with the prompt so the first generated piece keeps its leading space.
  // Without a tokenizer, on_token gets empty pieces (the ids are all there is).
  std::optional<Tokenizer::StreamDecoder> stream;
  if (model.has_tokenizer()) {
    stream.emplace(model.tokenizer());
    for (const TokenId id : prompt) stream->push(id);
  }
  StopStringFilter filter(options.stop_strings);
  const auto ends = [&](TokenId id) {
    return (!options.ignore_eos && model.is_eog(id)) ||
           std::find(options.stop_tokens.begin(), options.stop_tokens.end(), id) !=
               options.stop_tokens.end();
  };
  std::vector<TokenId> history(prompt.begin(), prompt.end());
  GenerateResult result;
  result.prompt_tokens = int32_t(prompt.size());

  auto start = std::chrono::steady_clock::now();
  std::span<const float> logits = session.eval(prompt);
  result.prompt_ms = ms_since(start);

  start = std::chrono::steady_clock::now();
  for (int32_t i = 0; i < options.max_tokens; ++i) {
    const TokenId next = sampler.sample(logits, history);
    if (ends(next)) {
      result.stopped_by_eos = true;
      break;
    }
    result.tokens.push_back(next);
    history.push_back(next);
    const std::string piece = stream ? filter.push(stream->push(next)) : std::string();
    if (options.on_token && (!piece.empty() || !filter.stopped()) &&
        !options.on_token(piece, next)) {
      break;
    }
    if (filter.stopped()) {
      result.stopped_by_string = true;
      break;
    }
    // The last token needs no forward pass; a full context ends generation or shifts it.
    if (i + 1 == options.max_tokens) break;
    if (session.position() >= session.context_length()) {
      if (options.on_full_context == ContextPolicy::kStop || session.context_length() < 2) {
        result.stopped_by_context = true;
        break;
      }
      shift_context(session, options.keep_tokens);
      ++result.context_shifts;
    }
    logits = session.eval(std::span(&next, 1));
  }
  if (options.on_token && !filter.stopped()) {
    std::string rest = stream ? filter.push(stream->flush()) : std::string();
    rest += filter.flush();
    if (!rest.empty()) options.on_token(rest, -1);
  }
  result.generate_ms = ms_since(start);
  return result;
}

}  // namespace slm
