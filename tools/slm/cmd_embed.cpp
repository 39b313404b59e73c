// `slm embed`: the embedding of each input text (one line of numbers per text), or with
// --cosine the cosine similarity of each text to the first.
#include <fmt/format.h>

#include <fstream>
#include <iostream>

#include "args.h"
#include "common.h"

namespace slm::cli {

int cmd_embed(std::span<char* const> args) {
  std::string model_path, pooling = "model", file;
  std::string text;
  bool has_text = false, no_normalize = false, cosine = false;
  int32_t threads = 0;
  LoadFlags load;
  ArgParser p("slm embed", "slm embed [-m MODEL] [TEXT | -f FILE] [options]",
              "Prints the embedding (the final hidden state, pooled) of TEXT, or of each line of\n"
              "FILE (- for stdin): one line of numbers per text. --cosine prints instead the\n"
              "cosine similarity of each text to the first.");
  p.add_string({"-m", "--model"}, "MODEL",
               "model file (.gguf) or Hugging Face directory; default: the bundled model",
               &model_path);
  p.add_string({"-f", "--file"}, "FILE", "texts, one per line (- for stdin)", &file);
  p.add_string({"--pooling"}, "P", "model (default: the file's pooling_type, else mean), mean, last",
               &pooling);
  p.add_flag({"--no-normalize"}, "do not scale embeddings to unit length", &no_normalize);
  p.add_flag({"--cosine"}, "print each text's cosine similarity to the first text", &cosine);
  p.add_int({"-t", "--threads"}, "N", "threads, 0 = all cores (default 0)", &threads, 0, 4096);
  load.add_to(p);
  p.add_positional("TEXT", "the text to embed", &text);
  if (!p.parse(args)) return 0;
  has_text = !text.empty();
  if (has_text == !file.empty()) throw p.error("give either TEXT or -f FILE");
  EmbedOptions options{.normalize = !no_normalize, .threads = threads};
  if (pooling == "mean") options.pooling = Pooling::kMean;
  else if (pooling == "last") options.pooling = Pooling::kLast;
  else if (pooling != "model") throw p.error(fmt::format("unknown pooling '{}' (model, mean, last)", pooling));

  std::vector<std::string> texts;
  if (has_text) {
    texts.push_back(text);
  } else {
    std::ifstream in;
    if (file != "-") {
      in.open(file);
      if (!in) throw IoError(fmt::format("{}: cannot open", file));
    }
    std::istream& src = file == "-" ? std::cin : in;
    for (std::string line; std::getline(src, line);) {
      if (!line.empty()) texts.push_back(line);
    }
    if (texts.empty()) throw InvalidArgumentError(fmt::format("{}: no text to embed", file));
  }
  const Model model = Model::load(resolve_model_path(model_path), load.options(p));
  std::vector<float> first;
  for (const std::string& t : texts) {
    const std::vector<float> e = embed(model, std::string_view(t), options);
    if (!cosine) {
      std::string line;
      for (const float v : e) line += fmt::format("{}{:.6g}", line.empty() ? "" : " ", v);
      fmt::print("{}\n", line);
      continue;
    }
    if (first.empty()) first = e;
    double dot = 0, a = 0, b = 0;
    for (size_t i = 0; i < e.size(); ++i) {
      dot += double(first[i]) * e[i];
      a += double(first[i]) * first[i];
      b += double(e[i]) * e[i];
    }
    fmt::print("{:.6f}\t{}\n", a > 0 && b > 0 ? dot / std::sqrt(a * b) : 0.0, t);
  }
  return 0;
}

}  // namespace slm::cli
