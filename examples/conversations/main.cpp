// Two conversations served at once from one Model: the weights are loaded once and shared, read
// only, by both threads; each thread owns a Session (its own sequence and KV cache) and its own
// sampling seed, so the two never wait for each other and never mix.
// usage: conversations MODEL.gguf [PROMPT_A] [PROMPT_B]
#include <slm/slm.h>

#include <cstdio>
#include <string>
#include <thread>

namespace {

// One conversation: a prompt continued by sampling, the text collected as it streams.
struct Conversation {
  std::string prompt;
  uint64_t seed;
  std::string text;   // what the model wrote
  std::string error;  // set if the thread failed
};

void serve(const slm::Model& model, Conversation& c) {
  try {
    slm::SessionOptions session_options;
    session_options.threads = 1;  // one core per conversation
    slm::Session session(model, session_options);

    slm::GenerateOptions options;
    options.max_tokens = 48;
    options.sampling.seed = c.seed;
    options.on_token = [&c](std::string_view piece, slm::TokenId) {
      c.text += piece;
      return true;
    };
    slm::generate(session, model.tokenizer().encode(c.prompt), options);
  } catch (const slm::Error& e) {
    c.error = e.what();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.gguf [PROMPT_A] [PROMPT_B]\n", argv[0]);
    return 2;
  }
  Conversation a{argc > 2 ? argv[2] : "Once upon a time", 1, {}, {}};
  Conversation b{argc > 3 ? argv[3] : "The little dog", 2, {}, {}};
  try {
    const slm::Model model = slm::Model::load(argv[1]);
    std::thread first(serve, std::cref(model), std::ref(a));
    std::thread second(serve, std::cref(model), std::ref(b));
    first.join();
    second.join();
  } catch (const slm::Error& e) {
    std::fprintf(stderr, "conversations: error: %s\n", e.what());
    return 1;
  }
  int status = 0;
  for (const Conversation* c : {&a, &b}) {
    if (!c->error.empty()) {
      std::fprintf(stderr, "conversations: error: %s\n", c->error.c_str());
      status = 1;
      continue;
    }
    std::printf("[seed %llu] %s%s\n", static_cast<unsigned long long>(c->seed), c->prompt.c_str(),
                c->text.c_str());
  }
  return status;
}
