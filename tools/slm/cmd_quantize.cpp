// `slm quantize`: converts the weight matrices of a GGUF file to a block type.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "args.h"
#include "common.h"

namespace slm::cli {

int cmd_quantize(std::span<char* const> args) {
  std::string in, out, type;
  std::string types;
  for (const std::string& t : quantize_types()) types += " " + t;
  ArgParser p(
      "slm quantize", "slm quantize IN.gguf OUT.gguf TYPE",
      "Writes OUT.gguf: IN.gguf's metadata (general.file_type updated) and tensors, with\n"
      "the weight matrices converted from F32/F16/BF16 by the reference quantizers (bytes\n"
      "identical to ggml's). Norms and other 1-D tensors stay as they are. f32 ... q6_k put\n"
      "every matrix (token_embd and output too) in TYPE; q4_k_m and q5_k_m follow\n"
      "llama-quantize's per-tensor rules. A matrix whose rows are not whole blocks of TYPE\n"
      "gets a K-quant's 32-element fallback (q4_k: q5_0, q5_k: q5_1, q6_k: q8_0) when it\n"
      "fits, else keeps its input type (q4_k_m / q5_k_m: F16, like llama-quantize); each\n"
      "such matrix is listed. An already-quantized matrix is copied when it is in its\n"
      "target type and refused otherwise (no requantizing).\n\ntypes:" +
          types);
  p.add_positional("IN.gguf", "the model to read", &in);
  p.add_positional("OUT.gguf", "the file to write", &out);
  p.add_positional("TYPE", "the weight type (see the list above)", &type);
  if (!p.parse(args)) return 0;
  if (in.empty() || out.empty() || type.empty()) throw p.error("expected IN.gguf OUT.gguf TYPE");
  const std::vector<std::string> known = quantize_types();
  if (std::ranges::find(known, type) == known.end()) {
    throw p.error(fmt::format("unknown type '{}' (types:{})", type, types));
  }

  // Progress on a terminal only, so logs do not fill with it.
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  QuantizeOptions o{.type = type};
  o.on_tensor = [&](size_t i, size_t count, const std::string& name) {
    if (!tty) return;
    fmt::print(stderr, "\r\033[Kslm quantize: [{}/{}] {}", i + 1, count, name);
    std::fflush(stderr);
  };
  Stopwatch clock;
  const QuantizeResult r = quantize_model_file(in, out, o);
  if (tty) fmt::print(stderr, "\r\033[K");
  for (const std::string& f : r.fallbacks) {
    fmt::print(stderr, "slm quantize: fallback {}\n", f);
  }
  fmt::print(stderr,
             "slm quantize: wrote {} ({}: {} matrices converted, {} fallbacks, {} tensors "
             "unchanged), {} -> {} bytes ({:.1f}%) in {:.1f} s\n",
             out, type, r.converted, r.fallbacks.size(), r.unchanged, r.bytes_in, r.bytes_out,
             r.bytes_in > 0 ? 100.0 * double(r.bytes_out) / double(r.bytes_in) : 0.0,
             clock.ms() / 1000);
  return 0;
}

}  // namespace slm::cli
