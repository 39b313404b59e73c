#include <chrono>
#include <optional>

#include "slm/model.h"

namespace slm {
namespace {
double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

GenerateResult generate(Session& session, std::span<const TokenId> prompt,
                        const GenerateOptions& options) {
  const Model& model = session.model();
  Sampler sampler(options.sampling);
  // The stream starts with the prompt so the first generated piece keeps its leading space.
  // Without a tokenizer, on_token gets empty pieces (the ids are all there is).
  std::optional<Tokenizer::StreamDecoder> stream;
  if (model.has_tokenizer()) {
    stream.emplace(model.tokenizer());
    for (const TokenId id : prompt) stream->push(id);
  }
  std::vector<TokenId> history(prompt.begin(), prompt.end());
  GenerateResult result;
  result.prompt_tokens = int32_t(prompt.size());

  auto start = std::chrono::steady_clock::now();
  std::span<const float> logits = session.eval(prompt);
  result.prompt_ms = ms_since(start);

  start = std::chrono::steady_clock::now();
  for (int32_t i = 0; i < options.max_tokens; ++i) {
    const TokenId next = sampler.sample(logits, history);
    if (!options.ignore_eos && model.is_eog(next)) {
      result.stopped_by_eos = true;
      break;
    }
    result.tokens.push_back(next);
    history.push_back(next);
    if (options.on_token && !options.on_token(stream ? stream->push(next) : std::string(), next))
      break;
    // The last token needs no forward pass; a full context ends generation.
    if (i + 1 == options.max_tokens) break;
    if (session.position() >= session.context_length()) {
      result.stopped_by_context = true;
      break;
    }
    logits = session.eval(std::span(&next, 1));
  }
  if (options.on_token) {
    if (std::string rest = stream ? stream->flush() : std::string(); !rest.empty())
      options.on_token(rest, -1);
  }
  result.generate_ms = ms_since(start);
  return result;
}

}  // namespace slm
