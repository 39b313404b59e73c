#include "src/tokenizer/hf_tokenizer.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <optional>

#include "slm/error.h"
#include "src/format/mapped_file.h"
#include "src/tokenizer/pre_tokenizer.h"
#include "src/tokenizer/token_index.h"
#include "src/tokenizer/tokenizer_impl.h"
#include "src/tokenizer/utf8.h"
#include "src/tokenizer/wordpiece.h"

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
    using Kind = NormalizerStep::Kind;
    const std::string_view type = type_of(o, "normalizer");
    if (type == "Sequence") {
      for (element e : o["normalizers"].get_array()) normalizer(e.get_object(), out);
    } else if (type == "NFC") {
      out.push_back(NormalizerStep::of(Kind::kNfc));
    } else if (type == "NFKC") {
      out.push_back(NormalizerStep::of(Kind::kNfkc));
    } else if (type == "NFD") {
      out.push_back(NormalizerStep::of(Kind::kNfd));
    } else if (type == "NFKD") {
      out.push_back(NormalizerStep::of(Kind::kNfkd));
    } else if (type == "Lowercase") {
      out.push_back(NormalizerStep::of(Kind::kLowercase));
    } else if (type == "StripAccents") {
      out.push_back(NormalizerStep::of(Kind::kStripAccents));
    } else if (type == "Strip") {
      out.push_back(NormalizerStep::of(
          Kind::kStrip, (flag(o, "strip_left", true) ? NormalizerStep::kLeft : 0u) |
                            (flag(o, "strip_right", true) ? NormalizerStep::kRight : 0u)));
    } else if (type == "BertNormalizer") {
      const bool lowercase = flag(o, "lowercase", true);
      // strip_accents null means "as lowercase".
      const bool strip_accents = flag(o, "strip_accents", lowercase);
      out.push_back(NormalizerStep::of(
          Kind::kBert, (flag(o, "clean_text", true) ? NormalizerStep::kCleanText : 0u) |
                           (flag(o, "handle_chinese_chars", true) ? NormalizerStep::kChineseChars : 0u) |
                           (strip_accents ? NormalizerStep::kStripAccentsFlag : 0u) |
                           (lowercase ? NormalizerStep::kLowercaseFlag : 0u)));
    } else if (type == "Prepend") {
      NormalizerStep step = NormalizerStep::of(Kind::kPrepend);
      step.text = o["prepend"].get_string().value();
      out.push_back(std::move(step));
    } else if (type == "Replace") {
      NormalizerStep step = NormalizerStep::of(Kind::kReplace);
      step.content = o["content"].get_string().value();
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

  std::shared_ptr<const Regex> regex(const char* text) const {
    return std::make_shared<const Regex>(text, false, path);
  }

  // Metaspace's prepend_scheme (older files: add_prefix_space true = always).
  PrependScheme prepend_scheme(const object& o) const {
    std::string_view scheme;
    if (o["prepend_scheme"].get_string().get(scheme) == simdjson::SUCCESS) {
      if (scheme == "always") return PrependScheme::kAlways;
      if (scheme == "first") return PrependScheme::kFirst;
      if (scheme == "never") return PrependScheme::kNever;
      unsupported(fmt::format("Metaspace prepend_scheme '{}'", scheme));
    }
    return flag(o, "add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
  }

  std::string metaspace_replacement(const object& o) const {
    std::string_view replacement;
    if (o["replacement"].get_string().get(replacement) != simdjson::SUCCESS) replacement = kSpmSpace;
    if (replacement.empty()) malformed("Metaspace replacement is empty");
    return std::string(replacement);
  }

  void pre_tokenizer(const object& o, std::vector<PreTokenizerStep>& out, bool& byte_level) const {
    const std::string_view type = type_of(o, "pre_tokenizer");
    if (type == "Sequence") {
      for (element e : o["pretokenizers"].get_array()) pre_tokenizer(e.get_object(), out, byte_level);
    } else if (type == "Split") {
      PreTokenizerStep step = PreTokenizerStep::split(pattern(o, "Split"), SplitBehavior::kIsolated,
                                                      flag(o, "invert", false));
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
      if (flag(o, "add_prefix_space", false)) {
        PreTokenizerStep step;
        step.prefix = " ";
        step.prepend = PrependScheme::kAlways;
        out.push_back(std::move(step));
      }
      if (flag(o, "use_regex", true)) out.push_back(PreTokenizerStep::split(gpt2_regex()));
      byte_level = true;
    } else if (type == "Metaspace") {
      // ' ' -> replacement, the prefix, then (split) each replacement starts a word.
      PreTokenizerStep step;
      step.replace_space = metaspace_replacement(o);
      step.prefix = step.replace_space;
      step.prepend = prepend_scheme(o);
      out.push_back(step);
      if (flag(o, "split", true)) {
        out.push_back(PreTokenizerStep::split(
            std::make_shared<const Regex>(step.replace_space, true, path),
            SplitBehavior::kMergedWithNext));
      }
    } else if (type == "Digits") {
      out.push_back(PreTokenizerStep::split(
          regex(flag(o, "individual_digits", false) ? "\\p{N}" : "\\p{N}+")));
    } else if (type == "Whitespace") {
      // The words are the matches of \w+|[^\w\s]+; everything else goes.
      out.push_back(PreTokenizerStep::split(regex("\\w+|[^\\w\\s]+"), SplitBehavior::kRemoved,
                                            /*invert=*/true));
    } else if (type == "WhitespaceSplit") {
      out.push_back(PreTokenizerStep::split(regex("\\s+"), SplitBehavior::kRemoved));
    } else if (type == "Punctuation") {
      SplitBehavior behavior = SplitBehavior::kIsolated;
      std::string_view name;
      if (o["behavior"].get_string().get(name) == simdjson::SUCCESS && name != "Isolated") {
        if (name == "Removed") {
          behavior = SplitBehavior::kRemoved;
        } else if (name == "MergedWithPrevious") {
          behavior = SplitBehavior::kMergedWithPrevious;
        } else if (name == "MergedWithNext") {
          behavior = SplitBehavior::kMergedWithNext;
        } else if (name == "Contiguous") {
          behavior = SplitBehavior::kContiguous;
        } else {
          unsupported(fmt::format("Punctuation behavior '{}'", name));
        }
      }
      // One character per match, as Hugging Face splits on a character predicate.
      out.push_back(PreTokenizerStep::split(regex(kBertPunctuation), behavior));
    } else if (type == "BertPreTokenizer") {
      for (PreTokenizerStep& step : bert_pre_tokenizer(path)) out.push_back(std::move(step));
    } else {
      unsupported(fmt::format("pre_tokenizer '{}'", type));
    }
  }

  // Decoders. Each token's text is fixed by the model (byte-level, U+2581 -> ' ', byte
  // fallback, WordPiece's phantom space), so what a decoder chain can change is whether one
  // leading space is dropped; anything else is refused rather than ignored.
  bool strips_space(const object& o) const {
    const std::string_view type = type_of(o, "decoder");
    if (type == "Sequence") {
      bool strip = false;
      for (element e : o["decoders"].get_array()) strip = strips_space(e.get_object()) || strip;
      return strip;
    }
    if (type == "Strip") {
      int64_t start = 0, stop = 0;
      if (o["start"].get_int64().get(start) != simdjson::SUCCESS) start = 0;
      if (o["stop"].get_int64().get(stop) != simdjson::SUCCESS) stop = 0;
      std::string_view content;
      if (o["content"].get_string().get(content) != simdjson::SUCCESS) content = " ";
      if (content != " " || start > 1 || stop != 0) {
        unsupported("Strip decoder other than one leading space");
      }
      return start == 1;
    }
    if (type == "Replace") {
      std::string_view from, to;
      if (o["pattern"]["String"].get_string().get(from) != simdjson::SUCCESS ||
          o["content"].get_string().get(to) != simdjson::SUCCESS || from != kSpmSpace || to != " ") {
        unsupported("Replace decoder other than U+2581 -> ' '");
      }
      return false;
    }
    if (type == "Metaspace") {
      if (metaspace_replacement(o) != kSpmSpace) unsupported("Metaspace decoder replacement other than U+2581");
      return prepend_scheme(o) != PrependScheme::kNever;
    }
    if (type == "WordPiece") return true;  // the first word's phantom space
    if (type == "ByteLevel" || type == "ByteFallback" || type == "Fuse") return false;
    unsupported(fmt::format("decoder '{}'", type));
  }
};

// The bytes of a JSON file with the SIMDJSON_PADDING readable bytes simdjson needs after them:
// the file mapped when its last page has that much room to spare (the kernel zero-fills it), so
// a 33 MB tokenizer.json is neither copied nor faulted in page by page; else read and padded.
struct JsonText {
  MappedFile mapped;
  simdjson::padded_string padded;
  const char* data = nullptr;
  size_t size = 0;

  static JsonText load(const std::string& path) {
    JsonText text;
    if (std::filesystem::is_regular_file(path)) {
      const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
      const size_t size = std::filesystem::file_size(path);
      if (size > 0 && page > 0 && (page - size % page) % page >= simdjson::SIMDJSON_PADDING) {
        text.mapped = MappedFile::open(path, /*use_mmap=*/true);
        text.data = reinterpret_cast<const char*>(text.mapped.data());
        text.size = text.mapped.size();
        return text;
      }
    }
    if (simdjson::padded_string::load(path).get(text.padded) != simdjson::SUCCESS) {
      throw IoError(fmt::format("{}: cannot read the file", path));
    }
    text.data = text.padded.data();
    text.size = text.padded.size();
    return text;
  }
};

// A token named in tokenizer_config.json: a string or {"content": ...}.
std::optional<std::string> config_token(simdjson::ondemand::document& config,
                                        std::string_view key) {
  simdjson::ondemand::value e;
  if (config.find_field_unordered(key).get(e) != simdjson::SUCCESS) return std::nullopt;
  std::string_view s;
  if (e.get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  simdjson::ondemand::object o;
  if (e.get_object().get(o) == simdjson::SUCCESS &&
      o.find_field_unordered("content").get_string().get(s) == simdjson::SUCCESS) {
    return std::string(s);
  }
  return std::nullopt;
}

}  // namespace

Tokenizer load_hf_tokenizer(const std::string& path) {
  Loader l{path};
  simdjson::dom::parser parser;
  const JsonText json = JsonText::load(path);
  try {
    const object root = parser.parse(json.data, json.size, false).get_object();
    const object model = root["model"].get_object();
    const std::string_view model_type = l.type_of(model, "model");
    if (model_type != "BPE" && model_type != "WordPiece") {
      l.unsupported(fmt::format("model '{}'", model_type));
    }
    const bool wordpiece = model_type == "WordPiece";
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (wordpiece) break;
      std::string_view affix;
      if (model[key].get_string().get(affix) == simdjson::SUCCESS && !affix.empty()) {
        l.unsupported(fmt::format("BPE {}", key));
      }
    }

    Vocab vocab;
    vocab.kind = wordpiece ? VocabKind::kWordPiece : VocabKind::kBpe;
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
    TextPipeline pipeline;
    pipeline.hf_added_tokens = true;
    for (element a : added) {
      const object token = a.get_object();
      const auto i = static_cast<size_t>(token["id"].get_int64().value());
      vocab.tokens[i] = token["content"].get_string().value();
      AddedToken options;
      options.id = static_cast<TokenId>(i);
      options.special = Loader::flag(token, "special", false);
      options.lstrip = Loader::flag(token, "lstrip", false);
      options.rstrip = Loader::flag(token, "rstrip", false);
      options.single_word = Loader::flag(token, "single_word", false);
      // Absent: Hugging Face normalizes added tokens that are not special.
      options.normalized = Loader::flag(token, "normalized", !options.special);
      vocab.types[i] = options.special ? TokenType::kControl : TokenType::kUserDefined;
      pipeline.added_tokens.push_back(options);
    }

    // Merges straight to ids: no string pair per merge (Gemma 3 has 515k of them). The texts
    // (left, right, left + right) are looked up in batches, see TokenIndex::find_batch.
    TokenIndex& index = vocab.token_index;
    index.build(vocab.tokens);
    constexpr size_t kBatch = 1024;
    std::vector<std::string_view> texts;  // per merge: left, right, merged
    std::string merged;                   // the merged texts of the batch
    std::vector<size_t> merged_at;
    std::vector<TokenId> ids;
    auto flush = [&] {
      for (size_t i = 0; i < merged_at.size(); ++i) {
        const size_t end = i + 1 < merged_at.size() ? merged_at[i + 1] : merged.size();
        texts[3 * i + 2] = std::string_view(merged).substr(merged_at[i], end - merged_at[i]);
      }
      ids.resize(texts.size());
      index.find_batch(texts, vocab.tokens, ids.data());
      for (size_t i = 0; i < ids.size(); i += 3) {
        const bool inert = ids[i] < 0 || ids[i + 1] < 0 || ids[i + 2] < 0;
        vocab.merge_ids.push_back(inert ? std::array<TokenId, 3>{-1, -1, -1}
                                        : std::array<TokenId, 3>{ids[i], ids[i + 1], ids[i + 2]});
      }
      texts.clear();
      merged.clear();
      merged_at.clear();
    };
    auto add_merge = [&](std::string_view left, std::string_view right) {
      merged_at.push_back(merged.size());
      merged += left;
      merged += right;
      texts.insert(texts.end(), {left, right, {}});
      if (merged_at.size() == kBatch) flush();
    };
    if (!wordpiece) {  // WordPiece has no merges
      const array merges = model["merges"].get_array();
      vocab.merge_ids.reserve(merges.size());
      for (element m : merges) {
        std::string_view s;
        if (m.get_string().get(s) == simdjson::SUCCESS) {
          // "left right": the split is at the first space after the first byte (a token of its
          // own may be a space).
          const size_t space = s.find(' ', 1);
          if (space == std::string_view::npos) l.malformed(fmt::format("merge '{}' has no space", s));
          add_merge(s.substr(0, space), s.substr(space + 1));
        } else {
          array pair = m.get_array();
          if (pair.size() != 2) l.malformed("a merge is not a pair");
          add_merge(pair.at(0).get_string().value(), pair.at(1).get_string().value());
        }
      }
    }
    flush();
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

    if (auto e = Loader::field(root, "normalizer")) l.normalizer(e->get_object(), pipeline.normalizer);
    if (auto e = Loader::field(root, "pre_tokenizer")) {
      l.pre_tokenizer(e->get_object(), pipeline.pre_tokenizer, vocab.byte_level);
    }
    if (auto e = Loader::field(root, "decoder")) vocab.strip_decoded_space = l.strips_space(e->get_object());
    if (wordpiece) {
      std::string_view prefix = "##";
      if (model["continuing_subword_prefix"].get_string().get(prefix) != simdjson::SUCCESS) prefix = "##";
      int64_t max_chars = 100;
      if (model["max_input_chars_per_word"].get_int64().get(max_chars) == simdjson::SUCCESS) {
        vocab.max_word_chars = static_cast<int32_t>(std::clamp<int64_t>(max_chars, 0, INT32_MAX));
      }
      if (vocab.unk < 0) l.malformed("a WordPiece model needs an unk_token that is in its vocab");
      wordpiece_to_phantom_form(vocab, prefix);
      vocab.token_index = TokenIndex{};  // indexed the old texts: the tokenizer rebuilds it
      // The tokens now carry the phantom space of llama.cpp's form; decode drops the first.
      vocab.add_space_prefix = true;
    }

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

    // tokenizer_config.json names BOS/EOS. Read on demand: these files may hold integers too
    // large for a JSON number (Llama 2's model_max_length), which a full parse rejects.
    const auto config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
    simdjson::padded_string config_json;
    if (std::filesystem::exists(config_path) &&
        simdjson::padded_string::load(config_path.string()).get(config_json) == simdjson::SUCCESS) {
      simdjson::ondemand::parser config_parser;
      simdjson::ondemand::document config;
      if (config_parser.iterate(config_json).get(config) == simdjson::SUCCESS) {
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
