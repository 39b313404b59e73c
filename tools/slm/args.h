// Command-line parsing for the slm CLI: options bound to variables, strict number parsing, and
// one exception type for bad usage (exit code 2), kept apart from slm::Error (bad input, exit 1).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace slm::cli {

// Bad usage: unknown command or option, missing or malformed value. main() prints it as
// `slm: error: <message>` plus a hint to --help, and exits with 2.
class UsageError : public std::runtime_error {
 public:
  UsageError(const std::string& message, std::string help_command)
      : std::runtime_error(message), help_command_(std::move(help_command)) {}
  // The command whose --help the hint names ("slm run"), or "slm".
  const std::string& help_command() const { return help_command_; }

 private:
  std::string help_command_;
};

// Strict parsers: the whole text must be the number (no sign where the type has none, no
// spaces, no trailing junk), inside [min, max]. `what` names the option in the message.
// They throw UsageError with an empty help_command; the parser fills it in.
int64_t parse_int(std::string_view text, std::string_view what, int64_t min, int64_t max);
uint64_t parse_uint64(std::string_view text, std::string_view what);
double parse_float(std::string_view text, std::string_view what, double min, double max);
// Whitespace- or comma-separated non-negative token ids, at least one.
std::vector<int32_t> parse_token_list(std::string_view text, std::string_view what);

// One subcommand's options. Usage:
//   ArgParser p("slm run", "slm run [options]", "Generates text ...");
//   p.add_int({"-n", "--n-predict"}, "N", "tokens to generate", &n, 0, 1 << 20);
//   if (!p.parse(args)) return 0;  // --help was printed
class ArgParser {
 public:
  ArgParser(std::string command, std::string usage, std::string description);

  void add_flag(std::vector<std::string> names, std::string help, bool* out);
  void add_string(std::vector<std::string> names, std::string metavar, std::string help,
                  std::string* out, bool* seen = nullptr);
  void add_int(std::vector<std::string> names, std::string metavar, std::string help,
               int32_t* out, int32_t min, int32_t max);
  void add_uint64(std::vector<std::string> names, std::string metavar, std::string help,
                  uint64_t* out);
  void add_float(std::vector<std::string> names, std::string metavar, std::string help,
                 float* out, double min, double max);
  // Optional positional arguments, filled in order; extra ones are a usage error.
  void add_positional(std::string metavar, std::string help, std::string* out);

  // Parses args (without the program and command names). Returns false when --help/-h was
  // given (the help is then printed to stdout). Throws UsageError.
  bool parse(std::span<char* const> args);

  std::string help() const;
  const std::string& command() const { return command_; }
  // A UsageError for this command (for checks done after parse, e.g. conflicting options).
  UsageError error(const std::string& message) const { return UsageError(message, command_); }

 private:
  struct Option {
    std::vector<std::string> names;
    std::string metavar;  // empty for flags
    std::string help;
    // Called with the name as the user wrote it (for messages) and the value ("" for flags).
    std::function<void(std::string_view name, std::string_view value)> set;
  };
  struct Positional {
    std::string metavar;
    std::string help;
    std::string* out;
  };
  const Option* find(std::string_view name) const;

  std::string command_;
  std::string usage_;
  std::string description_;
  std::vector<Option> options_;
  std::vector<Positional> positionals_;
};

}  // namespace slm::cli
