// Pieces shared by the slm subcommands: finding the model, the prompt, KV types, timing.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "args.h"
#include "slm/slm.h"

namespace slm::cli {

// Each subcommand: args are what follows the command name. Returns the exit code; throws
// UsageError (exit 2) or slm::Error / std::exception (exit 1).
int cmd_run(std::span<char* const> args);
int cmd_logits(std::span<char* const> args);
int cmd_inspect(std::span<char* const> args);
int cmd_bench(std::span<char* const> args);
int cmd_tokenize(std::span<char* const> args);
int cmd_synth(std::span<char* const> args);
int cmd_quantize(std::span<char* const> args);
int cmd_convert(std::span<char* const> args);
int cmd_chat(std::span<char* const> args);
int cmd_embed(std::span<char* const> args);

// `model` when given (it must exist), else the bundled stories260K: beside the sources, then
// the install prefix, then ../share/slm relative to the executable. Throws IoError naming the
// file, or listing the places searched.
std::string resolve_model_path(const std::string& model);

// "f32" | "f16"; "q8_0" throws UnsupportedError (the KV cache has no q8_0 yet); other text
// throws UsageError (help_command filled in by the caller).
KvType parse_kv_type(const std::string& text);
const char* kv_type_name(KvType type);

// The prompt as ids: `tokens` when given (no BOS), else `text` tokenized with BOS when the
// tokenizer adds one. An empty prompt is an InvalidArgumentError; ids out of range are left to
// the engine. check_fits says how to raise the context when the prompt does not fit.
std::vector<TokenId> prompt_ids(const Model& model, const std::vector<TokenId>* tokens,
                                const std::string& text);
void check_fits(std::span<const TokenId> prompt, int32_t context_length);

// --mmap / --no-mmap / --quantize, shared by the commands that load a model. Without either, the
// library's default (LoadOptions{}); both is a usage error.
struct LoadFlags {
  bool mmap = false;
  bool no_mmap = false;
  std::string quantize;  // --quantize TYPE: LoadOptions::quantize
  void add_to(ArgParser& parser);
  LoadOptions options(const ArgParser& parser) const;
};

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, --seed.
void add_sampling_flags(ArgParser& parser, SamplingOptions* sampling);

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double ms() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_)
        .count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace slm::cli
