// `slm run`: load a model, evaluate a prompt and stream sampled text (or ids) to stdout.
#include <fmt/format.h>

#include <cstdio>
#include <limits>

#include "args.h"
#include "common.h"

namespace slm::cli {
namespace {

constexpr int32_t kMaxInt = std::numeric_limits<int32_t>::max();
constexpr const char* kDefaultPrompt = "Once upon a time";

struct RunArgs {
  std::string model;
  std::string tokenizer;
  std::string prompt;
  bool has_prompt = false;
  std::string tokens;
  bool has_tokens = false;
  int32_t n_predict = 128;
  SamplingOptions sampling;
  int32_t threads = 0;
  int32_t context = 0;
  std::string kv_type = "f16";
  bool ids = false;
  bool ignore_eos = false;
  LoadFlags load;
  bool verbose = false;
};

void write_stdout(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

double per_second(size_t n, double ms) { return ms > 0 ? static_cast<double>(n) * 1000.0 / ms : 0; }

void print_model_info(const std::string& path, const ModelInfo& info) {
  fmt::print(stderr, "slm: model {} ({}{}{})\n", path, info.architecture,
             info.name.empty() ? "" : ", ", info.name);
  fmt::print(stderr,
             "slm: vocab {} | context {} | embd {} | layers {} | heads {}/{} (kv) | head_dim {} | "
             "ffn {}\n",
             info.vocab_size, info.context_length, info.embedding_length, info.block_count,
             info.head_count, info.head_count_kv, info.head_dim, info.feed_forward_length);
  fmt::print(stderr, "slm: {} parameters, {} bytes of weights ({})\n", info.parameter_count,
             info.weight_bytes, info.weight_types);
  if (info.weight_bytes_repacked > 0) {
    fmt::print(stderr, "slm: {} bytes of weights repacked at load for the kernels' tiles\n",
               info.weight_bytes_repacked);
  }
}

}  // namespace

int cmd_run(std::span<char* const> args) {
  RunArgs a;
  ArgParser p("slm run", "slm run [-m MODEL] [-p TEXT | --tokens \"1 2 3\"] [options]",
              "Evaluates a prompt and streams the sampled continuation to stdout; timings go to\n"
              "stderr. Without -m it runs the bundled stories260K model.");
  p.add_string({"-m", "--model"}, "MODEL", "model file (.gguf) or Hugging Face directory; default: the bundled model",
               &a.model);
  p.add_string({"--tokenizer"}, "FILE",
               "tokenizer to use instead of the model's own (tokenizer.json or a folder with one)",
               &a.tokenizer);
  p.add_string({"-p", "--prompt"}, "TEXT",
               fmt::format("prompt text, BOS added as the model asks (default \"{}\")",
                           kDefaultPrompt),
               &a.prompt, &a.has_prompt);
  p.add_string({"--tokens"}, "IDS", "prompt as space-separated token ids (no BOS added)",
               &a.tokens, &a.has_tokens);
  p.add_int({"-n", "--n-predict"}, "N", "tokens to generate (default 128)", &a.n_predict, 0,
            kMaxInt);
  add_sampling_flags(p, &a.sampling);
  p.add_int({"-t", "--threads"}, "N", "threads, 0 = all cores (default 0)", &a.threads, 0, 4096);
  p.add_int({"-c", "--ctx-size"}, "N", "context length, 0 = the model's, capped at 4096",
            &a.context, 0, kMaxInt);
  p.add_string({"--kv-type"}, "TYPE", "KV cache type: f32, f16 or q8_0 (default f16)", &a.kv_type);
  p.add_flag({"--ids"}, "print only the generated token ids, space-separated, on one line",
             &a.ids);
  p.add_flag({"--ignore-eos"}, "keep generating past end-of-generation tokens", &a.ignore_eos);
  a.load.add_to(p);
  p.add_flag({"-v", "--verbose"}, "print the model, settings and seed to stderr", &a.verbose);
  if (!p.parse(args)) return 0;

  if (a.has_prompt && a.has_tokens) throw p.error("give either -p or --tokens, not both");
  std::vector<TokenId> token_list;
  if (a.has_tokens) {
    try {
      token_list = parse_token_list(a.tokens, "--tokens");
    } catch (const UsageError& e) {
      throw p.error(e.what());
    }
  }
  KvType kv_type;
  try {
    kv_type = parse_kv_type(a.kv_type);
  } catch (const UsageError& e) {
    throw p.error(e.what());
  }
  const std::string text = a.has_prompt ? a.prompt : kDefaultPrompt;

  const std::string path = resolve_model_path(a.model);
  Stopwatch load_clock;
  const LoadOptions load_options = a.load.options(p);
  const Model model = a.tokenizer.empty()
                          ? Model::load(path, load_options)
                          : Model::load(path, load_options, Tokenizer::from_file(a.tokenizer));
  const double load_ms = load_clock.ms();

  Session session(model, SessionOptions{.context_length = a.context, .threads = a.threads,
                                        .kv_type = kv_type});
  const std::vector<TokenId> prompt = prompt_ids(model, a.has_tokens ? &token_list : nullptr, text);
  check_fits(prompt, session.context_length());

  if (a.verbose) {
    print_model_info(path, model.info());
    fmt::print(stderr, "slm: kernels {} | context {} | threads {} | kv {} | prompt {} tokens\n",
               kernel_isa(), session.context_length(), a.threads, kv_type_name(kv_type),
               prompt.size());
    fmt::print(stderr,
               "slm: sampling temp {} | top-k {} | top-p {} | min-p {} | repeat-penalty {} "
               "(last {}) | seed {}\n",
               a.sampling.temperature, a.sampling.top_k, a.sampling.top_p, a.sampling.min_p,
               a.sampling.repeat_penalty, a.sampling.repeat_last_n, a.sampling.seed);
  }

  GenerateOptions options;
  options.max_tokens = a.n_predict;
  options.sampling = a.sampling;
  options.ignore_eos = a.ignore_eos;
  // A model without a tokenizer (a Hugging Face directory without tokenizer.json) can only
  // print ids; prompt_ids() has already refused text.
  const bool print_ids = a.ids || !model.has_tokenizer();
  if (!a.ids && print_ids) {
    fmt::print(stderr, "slm: the model has no tokenizer: printing the generated token ids\n");
  }
  if (!print_ids) {
    // Echo the prompt, then stream each piece as soon as it is complete UTF-8.
    write_stdout(a.has_tokens ? model.tokenizer().decode(prompt) : text);
    options.on_token = [](std::string_view piece, TokenId) {
      write_stdout(piece);
      return true;
    };
  }
  const GenerateResult result = generate(session, prompt, options);

  if (print_ids) {
    std::string line;
    for (const TokenId id : result.tokens) line += fmt::format("{}{}", line.empty() ? "" : " ", id);
    write_stdout(line + "\n");
  } else {
    write_stdout("\n");
  }
  if (result.stopped_by_context) {
    fmt::print(stderr, "slm: stopped after {} tokens: the context ({} tokens) is full (raise -c)\n",
               result.tokens.size(), session.context_length());
  }
  fmt::print(stderr, "slm: load {:.1f} ms | prompt {} tok, {:.1f} tok/s | gen {} tok, {:.1f} tok/s\n",
             load_ms, result.prompt_tokens, per_second(result.prompt_tokens, result.prompt_ms),
             result.tokens.size(), per_second(result.tokens.size(), result.generate_ms));
  return 0;
}

}  // namespace slm::cli
