// `slm convert`: a Hugging Face model directory to a GGUF file.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "args.h"
#include "common.h"

namespace slm::cli {

int cmd_convert(std::span<char* const> args) {
  std::string dir, out;
  ConvertOptions o;
  std::string types;
  for (const std::string& t : convert_types()) types += (types.empty() ? "" : "|") + t;
  ArgParser p("slm convert", "slm convert MODEL_DIR OUT.gguf [--type TYPE]",
              "Writes a GGUF file from a Hugging Face directory (config.json + safetensors) of\n"
              "the llama architecture, with llama.cpp's key and tensor names; q/k rows are\n"
              "permuted to the interleaved RoPE order llama.cpp's converter writes. Every matrix\n"
              "gets TYPE (norms stay F32); rows that are not whole blocks keep the checkpoint's\n"
              "float type (K-quants first try q5_0 / q8_0), and each such matrix is listed.\n"
              "The tokenizer (tokenizer.ggml.*) and chat template come from tokenizer.json and\n"
              "tokenizer_config.json; when none can be written it says why (run the file with\n"
              "--tokenizer DIR/tokenizer.json then).");
  p.add_positional("MODEL_DIR", "the Hugging Face model directory", &dir);
  p.add_positional("OUT.gguf", "the file to write", &out);
  p.add_string({"--type"}, "TYPE", types + " (default f16, like convert_hf_to_gguf.py)", &o.type);
  if (!p.parse(args)) return 0;
  if (dir.empty() || out.empty()) throw p.error("expected MODEL_DIR OUT.gguf");
  const std::vector<std::string> known = convert_types();
  if (std::ranges::find(known, o.type) == known.end()) {
    throw p.error(fmt::format("unknown type '{}' (types: {})", o.type, types));
  }

  // Progress on a terminal only, so logs do not fill with it.
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  o.on_tensor = [&](size_t i, size_t count, const std::string& name) {
    if (!tty) return;
    fmt::print(stderr, "\r\033[Kslm convert: [{}/{}] {}", i + 1, count, name);
    std::fflush(stderr);
  };
  Stopwatch clock;
  const ConvertResult r = convert_hf_model(dir, out, o);
  if (tty) fmt::print(stderr, "\r\033[K");
  for (const std::string& f : r.fallbacks) fmt::print(stderr, "slm convert: fallback {}\n", f);
  if (!r.tokenizer_note.empty()) fmt::print(stderr, "slm convert: {}\n", r.tokenizer_note);
  fmt::print(
      stderr, "slm convert: wrote {} ({}, {} tensors), {} -> {} bytes ({:.1f}%) in {:.1f} s\n", out,
      o.type, r.tensor_count, r.bytes_in, r.bytes_out,
      r.bytes_in > 0 ? 100.0 * double(r.bytes_out) / double(r.bytes_in) : 0.0, clock.ms() / 1000);
  return 0;
}

}  // namespace slm::cli
