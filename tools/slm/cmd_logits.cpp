// `slm logits`: evaluate a prompt in one batch and write every position's logits as raw
// float32 little-endian, row-major (n_tokens x n_vocab) — the format of the *.f32 references.
#include <fmt/format.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "args.h"
#include "common.h"

namespace slm::cli {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

void write_f32_le(const std::string& path, std::span<const float> values) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
  if (!file) {
    throw IoError(fmt::format("cannot open {} for writing: {}", path, std::strerror(errno)));
  }
  std::vector<uint32_t> words(values.size());
  std::memcpy(words.data(), values.data(), values.size() * sizeof(float));
  if constexpr (std::endian::native == std::endian::big) {
    for (uint32_t& w : words) {
      w = (w >> 24) | ((w >> 8) & 0xFF00u) | ((w << 8) & 0xFF0000u) | (w << 24);
    }
  }
  const size_t written = std::fwrite(words.data(), sizeof(uint32_t), words.size(), file.get());
  // fclose flushes: its failure (e.g. a full disk) is a failed write too.
  if (written != words.size() || std::fclose(file.release()) != 0) {
    throw IoError(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  }
}

}  // namespace

int cmd_logits(std::span<char* const> args) {
  std::string model_arg, prompt, tokens, out, kv = "f32";
  bool has_prompt = false, has_tokens = false;
  LoadFlags load;
  int32_t threads = 0, context = 0;
  ArgParser p("slm logits", "slm logits [-m MODEL] (--tokens \"1 2 3\" | -p TEXT) -o OUT.f32",
              "Evaluates all tokens in one batch and writes the logits of every position as\n"
              "float32 little-endian, row-major (n_tokens x n_vocab).");
  p.add_string({"-m", "--model"}, "MODEL", "model file (.gguf) or Hugging Face directory; default: the bundled model",
               &model_arg);
  p.add_string({"--tokens"}, "IDS", "input as space-separated token ids (no BOS added)", &tokens,
               &has_tokens);
  p.add_string({"-p", "--prompt"}, "TEXT", "input text, BOS added as the model asks", &prompt,
               &has_prompt);
  p.add_string({"-o", "--output"}, "OUT.f32", "file to write", &out);
  p.add_string({"--kv-type"}, "TYPE", "KV cache type: f32, f16 or q8_0 (default f32)", &kv);
  p.add_int({"-t", "--threads"}, "N", "threads, 0 = all cores (default 0)", &threads, 0, 4096);
  p.add_int({"-c", "--ctx-size"}, "N", "context length, 0 = the model's, capped at 4096",
            &context, 0, std::numeric_limits<int32_t>::max());
  load.add_to(p);
  if (!p.parse(args)) return 0;

  if (has_prompt == has_tokens) throw p.error("give exactly one of --tokens or -p");
  if (out.empty()) throw p.error("missing -o OUT.f32");
  std::vector<TokenId> token_list;
  KvType kv_type;
  try {
    if (has_tokens) token_list = parse_token_list(tokens, "--tokens");
    kv_type = parse_kv_type(kv);
  } catch (const UsageError& e) {
    throw p.error(e.what());
  }

  const std::string path = resolve_model_path(model_arg);
  const Model model = Model::load(path, load.options(p));
  Session session(model,
                  SessionOptions{.context_length = context, .threads = threads, .kv_type = kv_type});
  const std::vector<TokenId> ids = prompt_ids(model, has_tokens ? &token_list : nullptr, prompt);
  check_fits(ids, session.context_length());

  Stopwatch clock;
  const std::span<const float> logits = session.eval(ids, /*all_logits=*/true);
  const double eval_ms = clock.ms();
  const size_t vocab = static_cast<size_t>(model.info().vocab_size);
  if (logits.size() != ids.size() * vocab) {
    // The engine broke its contract: say so rather than write a file of the wrong shape.
    throw std::runtime_error(fmt::format("internal error: eval returned {} logits, expected {} x {}",
                                         logits.size(), ids.size(), vocab));
  }
  write_f32_le(out, logits);
  fmt::print(stderr, "slm: wrote {} x {} logits to {} (eval {:.1f} ms)\n", ids.size(), vocab, out,
             eval_ms);
  return 0;
}

}  // namespace slm::cli
