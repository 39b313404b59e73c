// `slm chat`: a multi-turn conversation on stdin/stdout. Each turn formats the whole
// conversation in the model's chat format and evaluates only what the session does not already
// hold (Session::rewind_to_common_prefix), so earlier turns are never recomputed.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <limits>

#include "args.h"
#include "common.h"

namespace slm::cli {
namespace {

struct ChatArgs {
  std::string model;
  std::string tokenizer;
  std::string system;
  std::string format = "auto";
  int32_t n_predict = 256;
  SamplingOptions sampling;
  int32_t threads = 0;
  int32_t context = 0;
  std::string kv_type = "f16";
  LoadFlags load;
  bool verbose = false;
};

void write_stdout(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

ChatFormat parse_format(const std::string& name, const Model& model) {
  if (name == "auto") return detect_chat_format(model.chat_template());
  for (ChatFormat f : {ChatFormat::kChatMl, ChatFormat::kLlama3, ChatFormat::kLlama2,
                       ChatFormat::kGemma, ChatFormat::kPhi3, ChatFormat::kPlain}) {
    if (name == chat_format_name(f)) return f;
  }
  throw UsageError(fmt::format(
      "unknown chat format '{}' (auto, chatml, llama3, llama2, gemma, phi3, plain)", name),
      "chat");
}

// Trims the whitespace a format puts between the role marker and the text.
std::string trimmed(std::string s) {
  const size_t b = s.find_first_not_of(" \n");
  const size_t e = s.find_last_not_of(" \n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

int cmd_chat(std::span<char* const> args) {
  ChatArgs a;
  ArgParser p("slm chat", "slm chat [-m MODEL] [--system TEXT] [options] < turns",
              "Reads one user turn per line from stdin and streams each reply to stdout. The\n"
              "conversation is formatted in the model's chat format (from its chat template;\n"
              "--format overrides) and the cache is reused between turns. /exit ends.");
  p.add_string({"-m", "--model"}, "MODEL",
               "model file (.gguf) or Hugging Face directory; default: the bundled model",
               &a.model);
  p.add_string({"--tokenizer"}, "FILE", "tokenizer to use instead of the model's own",
               &a.tokenizer);
  p.add_string({"--system"}, "TEXT", "system prompt", &a.system);
  p.add_string({"--format"}, "NAME",
               "chat format: auto (default), chatml, llama3, llama2, gemma, phi3, plain",
               &a.format);
  p.add_int({"-n", "--n-predict"}, "N", "most tokens per reply (default 256)", &a.n_predict, 1,
            std::numeric_limits<int32_t>::max());
  add_sampling_flags(p, &a.sampling);
  p.add_int({"-t", "--threads"}, "N", "threads, 0 = all cores (default 0)", &a.threads, 0, 4096);
  p.add_int({"-c", "--ctx-size"}, "N", "context length, 0 = the model's, capped at 4096",
            &a.context, 0, std::numeric_limits<int32_t>::max());
  p.add_string({"--kv-type"}, "TYPE", "KV cache type: f32, f16 or q8_0 (default f16)", &a.kv_type);
  a.load.add_to(p);
  p.add_flag({"-v", "--verbose"}, "print the format and per-turn token counts to stderr",
             &a.verbose);
  if (!p.parse(args)) return 0;
  KvType kv_type;
  try {
    kv_type = parse_kv_type(a.kv_type);
  } catch (const UsageError& e) {
    throw p.error(e.what());
  }

  const std::string path = resolve_model_path(a.model);
  const LoadOptions load_options = a.load.options(p);
  const Model model = a.tokenizer.empty()
                          ? Model::load(path, load_options)
                          : Model::load(path, load_options, Tokenizer::from_file(a.tokenizer));
  ChatFormat format;
  try {
    format = parse_format(a.format, model);
  } catch (const UsageError& e) {
    throw p.error(e.what());
  }
  const Tokenizer& tokenizer = model.tokenizer();  // a chat needs text: throws without one
  Session session(model, {.context_length = a.context, .threads = a.threads, .kv_type = kv_type});
  if (a.verbose) fmt::print(stderr, "slm: chat format {}\n", chat_format_name(format));

  std::vector<ChatMessage> messages;
  if (!a.system.empty()) messages.push_back({"system", a.system});
  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  std::string line;
  for (int turn = 1;; ++turn) {
    if (interactive) fmt::print(stderr, "> ");
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (trimmed(line).empty()) {
      --turn;
      continue;
    }
    messages.push_back({"user", line});
    const std::vector<TokenId> tokens =
        tokenizer.encode(format_chat(format, messages), /*add_bos=*/true, /*parse_special=*/true);
    check_fits(tokens, session.context_length());
    const int32_t reused = session.rewind_to_common_prefix(tokens);
    std::string reply;
    GenerateOptions options{.max_tokens = a.n_predict, .sampling = a.sampling,
                            .stop_strings = {chat_turn_end(format)}};
    options.on_token = [&](std::string_view piece, TokenId) {
      reply += piece;
      write_stdout(piece);
      return true;
    };
    const GenerateResult r =
        generate(session, std::span(tokens).subspan(size_t(reused)), options);
    write_stdout("\n");
    messages.push_back({"assistant", trimmed(reply)});
    if (a.verbose) {
      fmt::print(stderr, "slm: turn {}: prompt {} tokens ({} reused, {} evaluated), reply {} tokens\n",
                 turn, tokens.size(), reused, r.prompt_tokens, r.tokens.size());
    }
    if (r.stopped_by_context) {
      fmt::print(stderr, "slm: the context ({} tokens) is full: the conversation ends (raise -c)\n",
                 session.context_length());
      break;
    }
  }
  return 0;
}

}  // namespace slm::cli
