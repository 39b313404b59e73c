// `slm tokenize`: print the token ids of a text, a file, or (--lines) each JSON string of a file.
#include <fmt/format.h>
#include <simdjson.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "args.h"
#include "common.h"

namespace slm::cli {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open the file", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string ids_line(const std::vector<TokenId>& ids) {
  std::string line;
  for (const TokenId id : ids) {
    if (!line.empty()) line += ' ';
    line += fmt::to_string(id);
  }
  line += '\n';
  return line;
}

}  // namespace

int cmd_tokenize(std::span<char* const> args) {
  std::string model, tokenizer_path, file, lines, text;
  bool no_bos = false, special = false, has_file = false, has_lines = false;
  ArgParser p("slm tokenize",
              "slm tokenize (-m MODEL | --tokenizer FILE) [--no-bos] [--special] "
              "(TEXT | -f FILE | --lines FILE)",
              "Prints the token ids of a text on one line. With --lines, FILE holds one JSON "
              "string per line\nand each gives one line of ids.");
  p.add_string({"-m", "--model"}, "MODEL", "model file (.gguf) whose tokenizer to use", &model);
  p.add_string({"--tokenizer"}, "FILE", "tokenizer.json (or a folder with one) to use",
               &tokenizer_path);
  p.add_flag({"--no-bos"}, "do not add BOS even when the tokenizer asks for it", &no_bos);
  p.add_flag({"--special"}, "turn special tokens written in the text into their ids", &special);
  p.add_string({"-f", "--file"}, "FILE", "tokenize the contents of FILE", &file, &has_file);
  p.add_string({"--lines"}, "FILE", "tokenize each JSON string line of FILE", &lines, &has_lines);
  p.add_positional("TEXT", "text to tokenize", &text);
  if (!p.parse(args)) return 0;

  if (model.empty() == tokenizer_path.empty()) throw p.error("give exactly one of -m or --tokenizer");
  const int sources = (has_file ? 1 : 0) + (has_lines ? 1 : 0) + (text.empty() ? 0 : 1);
  if (sources != 1) throw p.error("give exactly one of TEXT, -f FILE or --lines FILE");

  const Tokenizer tokenizer =
      Tokenizer::from_file(model.empty() ? tokenizer_path : resolve_model_path(model));
  const bool bos = !no_bos && tokenizer.adds_bos();
  std::string out;
  if (has_lines) {
    simdjson::dom::parser parser;
    std::istringstream in(read_file(lines));
    size_t number = 0;
    for (std::string line; std::getline(in, line);) {
      ++number;
      std::string_view value;
      if (parser.parse(line).get_string().get(value) != simdjson::SUCCESS) {
        throw FormatError(fmt::format("{}:{}: not a JSON string", lines, number));
      }
      out += ids_line(tokenizer.encode(value, bos, special));
    }
  } else {
    out = ids_line(tokenizer.encode(has_file ? read_file(file) : text, bos, special));
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace slm::cli
