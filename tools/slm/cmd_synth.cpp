// `slm synth`: writes a random-weight GGUF model at a real model's shapes, for benchmarks that
// need real shapes without a download.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "args.h"
#include "common.h"

namespace slm::cli {
namespace {

std::string synth_description() {
  std::string out =
      "Writes a GGUF model with random weights (≈ N(0, 0.02²)) at the shapes of a real model,\n"
      "with llama.cpp's key and tensor names and a small SentencePiece vocabulary padded to the\n"
      "model's size, so slm and llama.cpp both load it. Quantized types follow llama-quantize's\n"
      "per-tensor rules (e.g. the output matrix in Q6_K, q4_k_m's Q6_K layers).\n\npresets:\n";
  for (const SynthPreset& p : synth_presets()) {
    out += fmt::format("  {:<15} {:<6} {:<38} {}\n", p.name, p.architecture, p.source,
                       p.runs_in_slm ? "slm runs it" : "slm cannot run it yet");
  }
  out += "\ntypes:";
  for (const std::string& t : synth_types()) out += " " + t;
  return out;
}

}  // namespace

int cmd_synth(std::span<char* const> args) {
  SynthOptions o;
  o.type.clear();
  std::string out;
  ArgParser p("slm synth",
              "slm synth --preset NAME --type TYPE -o FILE.gguf [--seed S] [--layers N] "
              "[--vocab N]",
              synth_description());
  p.add_string({"--preset"}, "NAME", "the model whose shapes to use (see the list above)",
               &o.preset);
  p.add_string({"--type"}, "TYPE", "weight type, named like llama.cpp's file types", &o.type);
  p.add_string({"-o", "--output"}, "FILE", "the GGUF file to write", &out);
  p.add_uint64({"--seed"}, "S", "random seed (default 1; same seed, same bytes)", &o.seed);
  p.add_int({"--layers"}, "N", "write only N blocks (quick tests; default: all)", &o.layers, 0,
            1 << 20);
  p.add_int({"--vocab"}, "N", "a smaller vocabulary (quick tests; default: the preset's)",
            &o.vocab_size, 0, 1 << 30);
  if (!p.parse(args)) return 0;
  if (o.preset.empty()) throw p.error("missing --preset");
  if (o.type.empty()) throw p.error("missing --type");
  if (out.empty()) throw p.error("missing -o FILE");
  // An unknown name is bad usage (exit 2), like an unknown option; synthesize() checks too.
  const auto names = [](const auto& list, auto name) {
    std::string text;
    for (const auto& item : list) text += (text.empty() ? "" : ", ") + std::string(name(item));
    return text;
  };
  const std::vector<SynthPreset> presets = synth_presets();
  const std::vector<std::string> types = synth_types();
  if (std::ranges::find(presets, o.preset, &SynthPreset::name) == presets.end()) {
    throw p.error(fmt::format("unknown preset '{}' (presets: {})", o.preset,
                              names(presets, [](const SynthPreset& x) { return x.name; })));
  }
  if (std::ranges::find(types, o.type) == types.end()) {
    throw p.error(fmt::format("unknown type '{}' (types: {})", o.type,
                              names(types, [](const std::string& x) { return x; })));
  }

  // Progress on a terminal only: big files take a while, logs should not fill with it.
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  int last_percent = -1;
  o.on_progress = [&](uint64_t done, uint64_t total) {
    const int percent = total > 0 ? int(done * 100 / total) : 100;
    if (!tty || percent == last_percent) return;
    last_percent = percent;
    fmt::print(stderr, "\rslm synth: {:3}% ({} of {} MB)", percent, done / 1000000,
               total / 1000000);
    std::fflush(stderr);
  };
  Stopwatch clock;
  const SynthResult r = synthesize(out, o);
  if (tty) fmt::print(stderr, "\n");
  fmt::print(stderr,
             "slm synth: wrote {} ({} {}, {} tensors, {} parameters, {} bytes) in {:.1f} s\n", out,
             o.preset, o.type, r.tensor_count, r.parameter_count, r.file_bytes, clock.ms() / 1000);
  return 0;
}

}  // namespace slm::cli
