#include "args.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>

namespace slm::cli {
namespace {

UsageError bad_value(std::string_view what, std::string_view text, std::string_view expected) {
  return UsageError(fmt::format("invalid value '{}' for {}: expected {}", text, what, expected),
                    "");
}

bool is_separator(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ','; }

}  // namespace

int64_t parse_int(std::string_view text, std::string_view what, int64_t min, int64_t max) {
  const std::string expected = fmt::format("an integer in [{}, {}]", min, max);
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ptr != end || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    throw bad_value(what, text, expected);
  }
  if (ec == std::errc::result_out_of_range || value < min || value > max) {
    throw bad_value(what, text, expected);
  }
  return value;
}

uint64_t parse_uint64(std::string_view text, std::string_view what) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ptr != end || ec != std::errc()) {
    throw bad_value(what, text, "an integer in [0, 18446744073709551615]");
  }
  return value;
}

double parse_float(std::string_view text, std::string_view what, double min, double max) {
  const std::string expected = fmt::format("a number in [{}, {}]", min, max);
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  // from_chars also accepts "inf" and "nan": neither is a meaningful setting.
  if (text.empty() || ptr != end || ec != std::errc() || !std::isfinite(value) || value < min ||
      value > max) {
    throw bad_value(what, text, expected);
  }
  return value;
}

std::vector<int32_t> parse_token_list(std::string_view text, std::string_view what) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    if (is_separator(text[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && !is_separator(text[j])) ++j;
    const std::string_view item = text.substr(i, j - i);
    const auto id = parse_int(item, what, 0, std::numeric_limits<int32_t>::max());
    ids.push_back(static_cast<int32_t>(id));
    i = j;
  }
  if (ids.empty()) throw UsageError(fmt::format("{} needs at least one token id", what), "");
  return ids;
}

ArgParser::ArgParser(std::string command, std::string usage, std::string description)
    : command_(std::move(command)), usage_(std::move(usage)), description_(std::move(description)) {}

void ArgParser::add_flag(std::vector<std::string> names, std::string help, bool* out) {
  options_.push_back({std::move(names), "", std::move(help), [out](std::string_view, std::string_view) { *out = true; }});
}

void ArgParser::add_string(std::vector<std::string> names, std::string metavar, std::string help,
                           std::string* out, bool* seen) {
  options_.push_back({std::move(names), std::move(metavar), std::move(help),
                      [out, seen](std::string_view, std::string_view v) {
                        *out = std::string(v);
                        if (seen) *seen = true;
                      }});
}

void ArgParser::add_int(std::vector<std::string> names, std::string metavar, std::string help,
                        int32_t* out, int32_t min, int32_t max) {
  options_.push_back({std::move(names), std::move(metavar), std::move(help),
                      [out, min, max](std::string_view what, std::string_view v) {
                        *out = static_cast<int32_t>(parse_int(v, what, min, max));
                      }});
}

void ArgParser::add_uint64(std::vector<std::string> names, std::string metavar, std::string help,
                           uint64_t* out) {
  options_.push_back({std::move(names), std::move(metavar), std::move(help),
                      [out](std::string_view what, std::string_view v) {
                        *out = parse_uint64(v, what);
                      }});
}

void ArgParser::add_float(std::vector<std::string> names, std::string metavar, std::string help,
                          float* out, double min, double max) {
  options_.push_back({std::move(names), std::move(metavar), std::move(help),
                      [out, min, max](std::string_view what, std::string_view v) {
                        *out = static_cast<float>(parse_float(v, what, min, max));
                      }});
}

void ArgParser::add_positional(std::string metavar, std::string help, std::string* out) {
  positionals_.push_back({std::move(metavar), std::move(help), out});
}

const ArgParser::Option* ArgParser::find(std::string_view name) const {
  for (const Option& option : options_) {
    for (const std::string& n : option.names) {
      if (n == name) return &option;
    }
  }
  return nullptr;
}

bool ArgParser::parse(std::span<char* const> args) {
  size_t next_positional = 0;
  bool only_positionals = false;  // after "--"
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    try {
      if (!only_positionals && arg == "--") {
        only_positionals = true;
        continue;
      }
      // A lone "-" is a positional (conventionally stdin); "-5" is not a number we accept here.
      if (!only_positionals && arg.size() > 1 && arg[0] == '-') {
        if (arg == "-h" || arg == "--help") {
          fmt::print("{}", help());
          return false;
        }
        std::string_view name = arg;
        std::string_view inline_value;
        bool has_inline = false;
        if (arg.starts_with("--")) {
          if (const size_t eq = arg.find('='); eq != std::string_view::npos) {
            name = arg.substr(0, eq);
            inline_value = arg.substr(eq + 1);
            has_inline = true;
          }
        }
        const Option* option = find(name);
        if (!option) throw UsageError(fmt::format("unknown option '{}'", name), "");
        if (option->metavar.empty()) {
          if (has_inline) throw UsageError(fmt::format("option '{}' takes no value", name), "");
          option->set(name, "");
        } else if (has_inline) {
          option->set(name, inline_value);
        } else {
          if (i + 1 >= args.size()) {
            throw UsageError(fmt::format("option '{}' needs a value ({})", name, option->metavar),
                             "");
          }
          option->set(name, args[++i]);
        }
        continue;
      }
      if (next_positional >= positionals_.size()) {
        throw UsageError(fmt::format("unexpected argument '{}'", arg), "");
      }
      *positionals_[next_positional++].out = std::string(arg);
    } catch (const UsageError& e) {
      // Every usage error names the command so the hint can point at its --help.
      throw UsageError(e.what(), command_);
    }
  }
  return true;
}

std::string ArgParser::help() const {
  std::string out = fmt::format("usage: {}\n\n{}\n", usage_, description_);
  if (!positionals_.empty()) {
    out += "\narguments:\n";
    for (const Positional& p : positionals_) out += fmt::format("  {:<26} {}\n", p.metavar, p.help);
  }
  out += "\noptions:\n";
  for (const Option& option : options_) {
    std::string names;
    for (const std::string& n : option.names) names += (names.empty() ? "" : ", ") + n;
    if (!option.metavar.empty()) names += " " + option.metavar;
    if (names.size() > 26) {
      out += fmt::format("  {}\n  {:<26} {}\n", names, "", option.help);
    } else {
      out += fmt::format("  {:<26} {}\n", names, option.help);
    }
  }
  out += fmt::format("  {:<26} {}\n", "-h, --help", "show this help and exit");
  return out;
}

}  // namespace slm::cli
