// Retrieval-augmented generation with a reused context. The passages are embedded once; each
// question picks the passage most similar to it (cosine of L2-normalised embeddings: a dot
// product), and the model answers after "<instructions> <all passages> <question>". The
// instructions and passages are the same for every question, so the session keeps their keys
// and values: Session::rewind_to_common_prefix finds how much of the new prompt is cached and
// only the question is computed.
// usage: rag MODEL.gguf
#include <slm/slm.h>

#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

namespace {

float dot(const std::vector<float>& a, const std::vector<float>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0f);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
    return 2;
  }
  const std::vector<std::string> passages = {
      "Lily had a red ball. She played with it in the park every day.",
      "Tom liked to eat apples. His mom gave him a big green apple.",
      "The cat was sleeping in the sun. A bird sang in the tree.",
  };
  const std::vector<std::string> questions = {
      "What did Lily play with?", "What did Tom eat?", "Where was the cat?"};
  try {
    const slm::Model model = slm::Model::load(argv[1]);
    const slm::Tokenizer& tokenizer = model.tokenizer();

    std::vector<std::vector<float>> passage_vectors;
    for (const std::string& p : passages) passage_vectors.push_back(slm::embed(model, p));

    std::string context = "Read the stories and answer.\n";
    for (const std::string& p : passages) context += p + "\n";

    slm::Session session(model);
    slm::GenerateOptions options;
    options.max_tokens = 24;
    options.sampling.temperature = 0;  // greedy
    options.stop_strings = {"\n"};     // one line per answer
    std::string answer;
    options.on_token = [&answer](std::string_view piece, slm::TokenId) {
      answer += piece;  // the stop string itself is never delivered
      return true;
    };
    for (const std::string& q : questions) {
      const std::vector<float> qv = slm::embed(model, q);
      size_t best = 0;
      for (size_t i = 1; i < passages.size(); ++i) {
        if (dot(qv, passage_vectors[i]) > dot(qv, passage_vectors[best])) best = i;
      }
      const std::vector<slm::TokenId> prompt =
          tokenizer.encode(context + "Question: " + q + "\nAnswer:");
      const int32_t reused = session.rewind_to_common_prefix(prompt);
      answer.clear();
      slm::generate(session, std::span(prompt).subspan(size_t(reused)), options);
      std::printf("Q: %s\n  closest passage: %zu (cosine %.3f)\n  prompt: %zu tokens, %d reused\n"
                  "  A:%s\n",
                  q.c_str(), best, dot(qv, passage_vectors[best]), prompt.size(), reused,
                  answer.c_str());
    }
  } catch (const slm::Error& e) {
    std::fprintf(stderr, "rag: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
