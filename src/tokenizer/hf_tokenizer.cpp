#include "src/tokenizer/hf_tokenizer.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <filesystem>
#include <optional>

#include "slm/error.h"
#include "src/tokenizer/pre_tokenizer.h"
#include "src/tokenizer/tokenizer_impl.h"
#include "src/tokenizer/utf8.h"

namespace slm {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

struct Loader {
  std::string path;

  [[noreturn]] void unsupported(std::string_view what) const {
    throw UnsupportedError(fmt::format("{}: {} is not supported", path, what));
  }
  [[noreturn]] void malformed(std::string_view what) const {
    throw FormatError(fmt::format("{}: {}", path, what));
  }

  static std::optional<element> field(const object& o, std::string_view key) {
    element e;
    if (o.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
    return e;
  }
  static bool flag(const object& o, std::string_view key, bool fallback) {
    bool b = fallback;
    if (auto e = field(o, key); e && e->get_bool().get(b) != simdjson::SUCCESS) b = fallback;
    return b;
  }
  std::string_view type_of(const object& o, std::string_view what) const {
    std::string_view type;
    if (o["type"].get_string().get(type) != simdjson::SUCCESS) {
      malformed(fmt::format("{} has no \"type\"", what));
    }
    return type;
  }

  // {"String": s} -> literal, {"Regex": r} -> regex.
  std::shared_ptr<const Regex> pattern(const object& o, std::string_view what) const {
    object p = o["pattern"].get_object();
    std::string_view text;
    if (p["String"].get_string().get(text) == simdjson::SUCCESS) {
      return std::make_shared<const Regex>(text, true, path);
    }
    if (p["Regex"].get_string().get(text) == simdjson::SUCCESS) {
      return std::make_shared<const Regex>(text, false, path);
    }
    malformed(fmt::format("{} pattern is neither String nor Regex", what));
  }

  void normalizer(const object& o, std::vector<NormalizerStep>& out) const {
    const std::string_view type = type_of(o, "normalizer");
    if (type == "Sequence") {
      for (element e : o["normalizers"].get_array()) normalizer(e.get_object(), out);
    } else if (type == "NFC") {
      out.push_back({NormalizerStep::Kind::kNfc, {}, {}, nullptr});
    } else if (type == "NFKC") {
      out.push_back({NormalizerStep::Kind::kNfkc, {}, {}, nullptr});
    } else if (type == "Prepend") {
      out.push_back({NormalizerStep::Kind::kPrepend, std::string(o["prepend"].get_string().value()),
                     {}, nullptr});
    } else if (type == "Replace") {
      NormalizerStep step{NormalizerStep::Kind::kReplace, {}, std::string(o["content"].get_string().value()),
                          nullptr};
      std::string_view literal;
      if (o["pattern"]["String"].get_string().get(literal) == simdjson::SUCCESS) {
        step.text = literal;
      } else {
        step.regex = pattern(o, "Replace normalizer");
      }
      out.push_back(std::move(step));
    } else {
      unsupported(fmt::format("normalizer '{}'", type));
    }
  }

  void pre_tokenizer(const object& o, std::vector<PreTokenizerStep>& out, bool& byte_level) const {
    const std::string_view type = type_of(o, "pre_tokenizer");
    if (type == "Sequence") {
      for (element e : o["pretokenizers"].get_array()) pre_tokenizer(e.get_object(), out, byte_level);
    } else if (type == "Split") {
      PreTokenizerStep step{pattern(o, "Split"), SplitBehavior::kIsolated, flag(o, "invert", false)};
      const std::string_view behavior = o["behavior"].get_string().value();
      if (behavior == "Isolated") {
        step.behavior = SplitBehavior::kIsolated;
      } else if (behavior == "Removed") {
        step.behavior = SplitBehavior::kRemoved;
      } else if (behavior == "MergedWithPrevious") {
        step.behavior = SplitBehavior::kMergedWithPrevious;
      } else if (behavior == "MergedWithNext") {
        step.behavior = SplitBehavior::kMergedWithNext;
      } else if (behavior == "Contiguous") {
        step.behavior = SplitBehavior::kContiguous;
      } else {
        unsupported(fmt::format("Split behavior '{}'", behavior));
      }
      out.push_back(std::move(step));
    } else if (type == "ByteLevel") {
      if (flag(o, "add_prefix_space", false)) unsupported("ByteLevel pre-tokenizer add_prefix_space");
      if (flag(o, "use_regex", true)) {
        out.push_back({gpt2_regex(), SplitBehavior::kIsolated, false});
      }
      byte_level = true;
    } else if (type == "Digits") {
      const char* regex = flag(o, "individual_digits", false) ? "\\p{N}" : "\\p{N}+";
      out.push_back({std::make_shared<const Regex>(regex, false, path), SplitBehavior::kIsolated,
                     false});
    } else {
      unsupported(fmt::format("pre_tokenizer '{}'", type));
    }
  }

  // Decoders: only whether one leading space is stripped matters beyond the model's kind.
  bool strips_space(const object& o) const {
    const std::string_view type = type_of(o, "decoder");
    if (type == "Sequence") {
      bool strip = false;
      for (element e : o["decoders"].get_array()) strip = strips_space(e.get_object()) || strip;
      return strip;
    }
    if (type == "Strip") {
      int64_t start = 0;
      if (o["start"].get_int64().get(start) != simdjson::SUCCESS) start = 0;
      std::string_view content;
      if (o["content"].get_string().get(content) != simdjson::SUCCESS) content = " ";
      if (content != " " || start > 1) unsupported("Strip decoder other than one leading space");
      return start == 1;
    }
    if (type == "ByteLevel" || type == "Replace" || type == "ByteFallback" || type == "Fuse") {
      return false;
    }
    unsupported(fmt::format("decoder '{}'", type));
  }
};

// A token named in tokenizer_config.json: a string or {"content": ...}.
std::optional<std::string> config_token(const object& config, std::string_view key) {
  element e;
  if (config.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
  std::string_view s;
  if (e.get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  if (e.is_object() && e["content"].get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  return std::nullopt;
}

}  // namespace

Tokenizer load_hf_tokenizer(const std::string& path) {
  Loader l{path};
  simdjson::dom::parser parser;
  simdjson::padded_string json;
  if (simdjson::padded_string::load(path).get(json) != simdjson::SUCCESS) {
    throw IoError(fmt::format("{}: cannot read the file", path));
  }
  try {
    const object root = parser.parse(json).get_object();
    const object model = root["model"].get_object();
    const std::string_view model_type = l.type_of(model, "model");
    if (model_type != "BPE") l.unsupported(fmt::format("model '{}'", model_type));
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      std::string_view affix;
      if (model[key].get_string().get(affix) == simdjson::SUCCESS && !affix.empty()) {
        l.unsupported(fmt::format("BPE {}", key));
      }
    }

    Vocab vocab;
    vocab.kind = VocabKind::kBpe;
    vocab.add_space_prefix = false;
    const object tokens = model["vocab"].get_object();
    const array added = root["added_tokens"].get_array();
    int64_t max_id = -1;
    for (auto [text, id] : tokens) max_id = std::max(max_id, id.get_int64().value());
    for (element a : added) max_id = std::max(max_id, a["id"].get_int64().value());
    const auto n = static_cast<size_t>(max_id + 1);
    vocab.tokens.assign(n, std::string());
    vocab.types.assign(n, TokenType::kUnused);  // ids the file never names
    vocab.scores.assign(n, 0.0f);
    for (auto [text, id] : tokens) {
      const auto i = static_cast<size_t>(id.get_int64().value());
      vocab.tokens[i] = text;
      vocab.types[i] = parse_byte_token(text) >= 0 ? TokenType::kByte : TokenType::kNormal;
    }
    for (element a : added) {
      const object token = a.get_object();
      if (Loader::flag(token, "lstrip", false) || Loader::flag(token, "rstrip", false) ||
          Loader::flag(token, "single_word", false)) {
        l.unsupported(fmt::format("added token '{}' with lstrip/rstrip/single_word",
                                  token["content"].get_string().value()));
      }
      const auto i = static_cast<size_t>(token["id"].get_int64().value());
      vocab.tokens[i] = token["content"].get_string().value();
      vocab.types[i] = Loader::flag(token, "special", false) ? TokenType::kControl
                                                             : TokenType::kUserDefined;
    }

    for (element m : model["merges"].get_array()) {
      std::string_view s;
      if (m.get_string().get(s) == simdjson::SUCCESS) {
        const size_t space = s.find(' ', 1);
        if (space == std::string_view::npos) l.malformed(fmt::format("merge '{}' has no space", s));
        vocab.merges.emplace_back(std::string(s.substr(0, space)), std::string(s.substr(space + 1)));
      } else {
        array pair = m.get_array();
        if (pair.size() != 2) l.malformed("a merge is not a pair");
        vocab.merges.emplace_back(std::string(pair.at(0).get_string().value()),
                                  std::string(pair.at(1).get_string().value()));
      }
    }
    vocab.byte_fallback = Loader::flag(model, "byte_fallback", false);
    vocab.fuse_unk = Loader::flag(model, "fuse_unk", false);
    vocab.ignore_merges = Loader::flag(model, "ignore_merges", false);
    std::string_view unk;
    if (model["unk_token"].get_string().get(unk) == simdjson::SUCCESS) {
      const auto it = tokens.at_key(unk);
      int64_t id = -1;
      if (it.get_int64().get(id) == simdjson::SUCCESS) {
        vocab.unk = static_cast<TokenId>(id);
        if (vocab.types[static_cast<size_t>(id)] == TokenType::kNormal) {
          vocab.types[static_cast<size_t>(id)] = TokenType::kUnknown;
        }
      }
    }

    TextPipeline pipeline;
    if (auto e = Loader::field(root, "normalizer")) l.normalizer(e->get_object(), pipeline.normalizer);
    if (auto e = Loader::field(root, "pre_tokenizer")) {
      l.pre_tokenizer(e->get_object(), pipeline.pre_tokenizer, vocab.byte_level);
    }
    if (auto e = Loader::field(root, "decoder")) vocab.strip_decoded_space = l.strips_space(e->get_object());

    // BOS: the special token a TemplateProcessing post-processor puts first.
    vocab.add_bos = false;
    if (auto e = Loader::field(root, "post_processor")) {
      const object post = e->get_object();
      if (l.type_of(post, "post_processor") == "TemplateProcessing") {
        element first = post["single"].get_array().at(0);
        std::string_view name;
        if (first["SpecialToken"]["id"].get_string().get(name) == simdjson::SUCCESS) {
          const int64_t id = post["special_tokens"][name]["ids"].get_array().at(0).get_int64().value();
          vocab.bos = static_cast<TokenId>(id);
          vocab.add_bos = true;
        }
      }
    }

    // tokenizer_config.json names BOS/EOS.
    const auto config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
    simdjson::dom::parser config_parser;
    simdjson::padded_string config_json;
    if (std::filesystem::exists(config_path) &&
        simdjson::padded_string::load(config_path.string()).get(config_json) == simdjson::SUCCESS) {
      object config;
      if (config_parser.parse(config_json).get_object().get(config) == simdjson::SUCCESS) {
        auto id_of = [&](std::string_view key) -> TokenId {
          const auto text = config_token(config, key);
          if (!text) return -1;
          for (size_t i = 0; i < n; ++i) {
            if (vocab.tokens[i] == *text) return static_cast<TokenId>(i);
          }
          return -1;
        };
        if (const TokenId bos = id_of("bos_token"); bos >= 0) vocab.bos = bos;
        if (const TokenId eos = id_of("eos_token"); eos >= 0) vocab.eos = eos;
      }
    }
    // End of turn, by the names chat templates use (as llama.cpp guesses it).
    for (const char* name : {"<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>"}) {
      for (size_t i = 0; i < n && vocab.eot < 0; ++i) {
        if (vocab.tokens[i] == name && static_cast<TokenId>(i) != vocab.eos) vocab.eot = static_cast<TokenId>(i);
      }
    }
    return make_tokenizer(std::move(vocab), path, std::move(pipeline));
  } catch (const simdjson::simdjson_error& e) {
    throw FormatError(fmt::format("{}: not a tokenizer.json this loader understands: {}", path,
                                  e.what()));
  }
}

}  // namespace slm
