// slm: the reference command-line tool. It uses only the public API (include/slm).
// Exit codes: 0 success, 1 bad input (slm::Error or any other failure), 2 bad usage.
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <span>
#include <string_view>

#include "args.h"
#include "common.h"

namespace {

struct Command {
  std::string_view name;
  int (*run)(std::span<char* const> args);
  std::string_view summary;
};

constexpr Command kCommands[] = {
    {"run", slm::cli::cmd_run, "generate text from a prompt"},
    {"chat", slm::cli::cmd_chat, "talk with a model, turn by turn, reusing the cache between turns"},
    {"embed", slm::cli::cmd_embed, "print the embedding of a text (pooled final hidden state)"},
    {"logits", slm::cli::cmd_logits, "write the logits of every prompt position to a file"},
    {"inspect", slm::cli::cmd_inspect, "show a model file's metadata and tensors"},
    {"tokenize", slm::cli::cmd_tokenize, "print the token ids of a text"},
    {"bench", slm::cli::cmd_bench, "measure prompt and generation tokens/s (like llama-bench)"},
    {"synth", slm::cli::cmd_synth, "write a random-weight model with a real model's shapes"},
    {"convert", slm::cli::cmd_convert, "write a GGUF file from a Hugging Face model directory"},
    {"quantize", slm::cli::cmd_quantize, "convert a GGUF file's weight matrices to a block type"},
};

std::string main_help() {
  std::string out =
      "usage: slm COMMAND [options]\n"
      "       slm --help | --version\n\n"
      "A from-scratch inference engine for small language models.\n\ncommands:\n";
  for (const Command& c : kCommands) out += fmt::format("  {:<10} {}\n", c.name, c.summary);
  out += "\nRun 'slm COMMAND --help' for the options of a command.\n";
  return out;
}

// Messages are printed on one line so `slm: error:` is always the whole story for scripts.
std::string one_line(std::string_view message) {
  std::string out(message);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

int dispatch(int argc, char** argv) {
  const std::span<char* const> args(argv + 1, static_cast<size_t>(argc > 0 ? argc - 1 : 0));
  if (args.empty()) throw slm::cli::UsageError("missing command", "slm");
  const std::string_view first = args[0];
  if (first == "-h" || first == "--help" || first == "help") {
    fmt::print("{}", main_help());
    return 0;
  }
  if (first == "--version" || first == "-V") {
    fmt::print("slm {}\n", slm::version());
    return 0;
  }
  for (const Command& c : kCommands) {
    if (c.name == first) return c.run(args.subspan(1));
  }
  if (first.starts_with("-")) {
    throw slm::cli::UsageError(fmt::format("unknown option '{}' (give a command first)", first),
                               "slm");
  }
  throw slm::cli::UsageError(fmt::format("unknown command '{}'", first), "slm");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const slm::cli::UsageError& e) {
    std::fflush(stdout);
    fmt::print(stderr, "slm: error: {}\n", one_line(e.what()));
    fmt::print(stderr, "Run '{} --help' for usage.\n",
               e.help_command().empty() ? "slm" : e.help_command());
    return 2;
  } catch (const std::exception& e) {
    // slm::Error (bad input) and anything else: never a crash, always one line.
    std::fflush(stdout);
    fmt::print(stderr, "slm: error: {}\n", one_line(e.what()));
    return 1;
  } catch (...) {
    std::fflush(stdout);
    fmt::print(stderr, "slm: error: unknown failure\n");
    return 1;
  }
}
