#include "common.h"

#include <fmt/format.h>

#include <limits>
#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "args.h"

namespace slm::cli {
namespace {

namespace fs = std::filesystem;

// The running executable, for finding ../share/slm beside an installed binary.
fs::path executable_dir() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return self.parent_path();
}

}  // namespace

std::string resolve_model_path(const std::string& model) {
  std::error_code ec;
  if (!model.empty()) {
    if (!fs::exists(model, ec)) throw IoError(fmt::format("model file not found: {}", model));
    return model;
  }
  std::vector<fs::path> candidates = {SLM_SOURCE_MODEL, SLM_INSTALLED_MODEL};
  if (const fs::path dir = executable_dir(); !dir.empty()) {
    candidates.push_back(dir / ".." / "share" / "slm" / "stories260K.gguf");
  }
  std::string searched;
  for (const fs::path& path : candidates) {
    if (fs::is_regular_file(path, ec)) return path.string();
    searched += (searched.empty() ? "" : ", ") + path.string();
  }
  throw IoError(fmt::format("no model given (-m MODEL) and the bundled model was not found in: {}",
                            searched));
}

KvType parse_kv_type(const std::string& text) {
  if (text == "f32") return KvType::kF32;
  if (text == "f16") return KvType::kF16;
  if (text == "q8_0") return KvType::kQ8_0;
  throw UsageError(
      fmt::format("invalid value '{}' for --kv-type: expected f32, f16 or q8_0", text), "");
}

const char* kv_type_name(KvType type) {
  switch (type) {
    case KvType::kF16: return "f16";
    case KvType::kQ8_0: return "q8_0";
    case KvType::kF32: break;
  }
  return "f32";
}

std::vector<TokenId> prompt_ids(const Model& model, const std::vector<TokenId>* tokens,
                                const std::string& text) {
  std::vector<TokenId> ids;
  if (tokens) {
    ids = *tokens;
  } else {
    const Tokenizer& tokenizer = model.tokenizer();  // throws when the model has none
    ids = tokenizer.encode(text, tokenizer.adds_bos());
  }
  if (ids.empty()) throw InvalidArgumentError("the prompt is empty (it gave no tokens)");
  return ids;  // ids out of range are the engine's to reject
}

void check_fits(std::span<const TokenId> prompt, int32_t context_length) {
  if (static_cast<int64_t>(prompt.size()) > context_length) {
    throw InvalidArgumentError(
        fmt::format("the prompt has {} tokens but the context holds only {} (raise -c)",
                    prompt.size(), context_length));
  }
}

void add_sampling_flags(ArgParser& parser, SamplingOptions* sampling) {
  constexpr int32_t kMaxInt = std::numeric_limits<int32_t>::max();
  parser.add_float({"--temp"}, "T", "temperature, 0 = greedy (default 0.8)", &sampling->temperature,
              0, 1e6);
  parser.add_int({"--top-k"}, "K", "keep the K most likely tokens, 0 = off (default 40)",
            &sampling->top_k, 0, kMaxInt);
  parser.add_float({"--top-p"}, "P", "nucleus sampling, 1 = off (default 0.95)", &sampling->top_p, 0,
              1);
  parser.add_float({"--min-p"}, "P", "drop tokens below P x the top probability, 0 = off (default 0.05)",
              &sampling->min_p, 0, 1);
  parser.add_float({"--repeat-penalty"}, "R", "penalty for recent tokens, 1 = off (default 1)",
              &sampling->repeat_penalty, 1e-3, 1e3);
  parser.add_int({"--repeat-last-n"}, "N", "recent tokens the penalty looks at (default 64)",
            &sampling->repeat_last_n, 0, kMaxInt);
  parser.add_uint64({"--seed"}, "S", fmt::format("random seed (default {})", sampling->seed),
               &sampling->seed);
}

void LoadFlags::add_to(ArgParser& parser) {
  const bool mmap_default = LoadOptions{}.use_mmap;
  parser.add_flag({"--mmap"},
                  std::string("map the model file: fast start, pages shared between processes") +
                      (mmap_default ? " (default)" : ""),
                  &mmap);
  parser.add_flag({"--no-mmap"},
                  std::string("read the model into huge-page memory: steadier, faster decode") +
                      (mmap_default ? "" : " (default)"),
                  &no_mmap);
  parser.add_string({"--quantize"}, "TYPE",
                    "convert F32/F16/BF16 weight matrices to q8_0, q4_0 or q4_k once at load",
                    &quantize);
}

LoadOptions LoadFlags::options(const ArgParser& parser) const {
  if (mmap && no_mmap) throw parser.error("give either --mmap or --no-mmap, not both");
  LoadOptions o;
  if (mmap) o.use_mmap = true;
  if (no_mmap) o.use_mmap = false;
  if (quantize.empty()) return o;
  if (quantize != "q8_0" && quantize != "q4_0" && quantize != "q4_k") {
    throw parser.error(fmt::format("unknown --quantize type '{}' (q8_0, q4_0, q4_k)", quantize));
  }
  o.quantize = quantize;
  // Progress on a terminal only; the bytes before and after always (one line on stderr), so
  // logs say what ran.
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  o.on_quantize = [tty, type = quantize](size_t done, size_t total, uint64_t before,
                                         uint64_t after) {
    if (tty) fmt::print(stderr, "\r\033[Kslm: quantizing to {}: {}/{} matrices", type, done, total);
    if (done < total) return;
    fmt::print(stderr, "{}slm: weight matrices quantized to {} at load: {} -> {} bytes\n",
               tty ? "\r\033[K" : "", type, before, after);
  };
  return o;
}

}  // namespace slm::cli
