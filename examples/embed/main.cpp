// Embedding slm: load a model, continue a prompt greedily and stream the text to stdout.
// usage: embed MODEL.gguf [PROMPT]
#include <slm/slm.h>

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.gguf [PROMPT]\n", argv[0]);
    return 2;
  }
  const std::string prompt = argc > 2 ? argv[2] : "Once upon a time";
  try {
    const slm::Model model = slm::Model::load(argv[1]);  // share one Model between threads
    slm::Session session(model);                         // one sequence with its own KV cache
    const std::vector<slm::TokenId> tokens = model.tokenizer().encode(prompt);  // adds BOS

    slm::GenerateOptions options;
    options.max_tokens = 64;
    options.sampling.temperature = 0;  // greedy: always the most likely token
    options.on_token = [](std::string_view piece, slm::TokenId) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);  // complete UTF-8 only
      std::fflush(stdout);
      return true;  // false stops the generation
    };
    std::fputs(prompt.c_str(), stdout);
    const slm::GenerateResult result = slm::generate(session, tokens, options);
    std::fputs("\n", stdout);
    std::fprintf(stderr, "%zu tokens generated in %.1f ms\n", result.tokens.size(),
                 result.generate_ms);
  } catch (const slm::Error& e) {
    std::fprintf(stderr, "embed: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
