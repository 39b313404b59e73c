#include "src/model/convert_tokenizer.h"

#include <fmt/format.h>
#include <simdjson.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

#include "slm/error.h"
#include "src/format/gguf.h"
#include "src/model/hf_chat.h"
#include "src/tokenizer/gguf_tokenizer.h"
#include "src/tokenizer/hf_tokenizer.h"
#include "src/tokenizer/tokenizer_impl.h"
#include "src/tokenizer/utf8.h"

namespace slm {
namespace {

namespace fs = std::filesystem;

// tokenizer.ggml.pre names tried for a byte-level BPE tokenizer, the common ones first. Each is
// a distinct pre-tokenizer of src/tokenizer/pre_tokenizer.cpp (aliases left out).
constexpr const char* kPreNames[] = {
    "llama-bpe", "qwen2",  "deepseek-v3", "gpt-2",      "default",      "starcoder",      "gpt-4o",
    "dbrx",      "tekken", "qwen35",      "kimi-k2",    "deepseek-llm", "deepseek-coder", "falcon",
    "bloom",     "viking", "seed-coder",  "bailingmoe", "chameleon",
};

// Texts on which the written tokenizer must give tokenizer.json's ids: contractions, cases,
// digit runs, whitespace runs, punctuation, code, non-Latin scripts, CJK and emoji.
constexpr const char* kCheckTexts[] = {
    "Hello world! It's a test; we'll see, don't we? I'M SURE THEY'VE GOT IT.",
    "  two leading spaces,\ttab\n\nblank line\r\nand trailing   ",
    "1 12 123 1234 12345 1234567 3.14159 -42 1,000,000 0x1F 2024-01-31",
    "caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 Stra\xc3\x9f"
    "e \xce\x91\xce\xb2\xce\xb3 "
    "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb8\xd1\x80",
    "\xe4\xb8\xad\xe6\x96\x87\xe6\xb5\x8b\xe8\xaf\x95\xef\xbc\x8c\xe6\x97\xa5\xe6\x9c\xac\xe8"
    "\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88 \xed\x95\x9c\xea\xb5"
    "\xad\xec\x96\xb4",
    "emoji \xf0\x9f\xa6\x99\xf0\x9f\x9a\x80 \xe2\x86\x92 \xe2\x88\x9e <b>{\"k\": [1, 2]}</b> "
    "$x^2$ @user #tag ...!!!?? ?---___===",
    "def f(x):\n    return x**2  # square\n\tif (a && b || c) { y += 1; }\n\n\n   ",
    "'s 't 're 've 'm 'll 'd 'S 'T aaaaaaaaaaaa    \n \n\n  x",
    // Thai and Devanagari (combining marks), indented digits and CJK.
    "\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1\xe0\xb8\xaa\xe0\xb8\x94\xe0\xb8\xb5 "
    "\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d\xe0\xa4\xa4\xe0\xa5\x87\n"
    "    0x5555ULL, 17,\n    \xe8\xaf\x84\xe8\xae\xba\n   Code. 4d1, 6 of",
};

// tokenizer_config.json's pad token (a string or {"content": ...}) and add_eos_token. On demand,
// since these files may hold numbers too large for a JSON number (Llama 2's model_max_length).
struct TokenizerConfig {
  std::optional<std::string> pad_token;
  bool add_eos = false;
};

TokenizerConfig read_tokenizer_config(const fs::path& path) {
  TokenizerConfig out;
  std::error_code ec;
  if (!fs::exists(path, ec)) return out;
  simdjson::padded_string text;
  if (simdjson::padded_string::load(path.string()).get(text) != simdjson::SUCCESS) {
    throw IoError(fmt::format("{}: cannot read", path.string()));
  }
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object root;
  if (parser.iterate(text).get(doc) || doc.get_object().get(root)) {
    throw FormatError(fmt::format("{}: not a JSON object", path.string()));
  }
  simdjson::ondemand::value pad;
  if (root.find_field_unordered("pad_token").get(pad) == simdjson::SUCCESS) {
    std::string_view s;
    simdjson::ondemand::object o;
    if (pad.get_string().get(s) == simdjson::SUCCESS) {
      out.pad_token = std::string(s);
    } else if (pad.get_object().get(o) == simdjson::SUCCESS &&
               o.find_field_unordered("content").get_string().get(s) == simdjson::SUCCESS) {
      out.pad_token = std::string(s);
    }
  }
  bool add_eos = false;
  if (root.find_field_unordered("add_eos_token").get_bool().get(add_eos) == simdjson::SUCCESS) {
    out.add_eos = add_eos;
  }
  return out;
}

// A scratch file removed when this goes out of scope.
class ScratchFile {
 public:
  ScratchFile() {
    std::string pattern = (fs::temp_directory_path() / "slm-tokenizer-XXXXXX").string();
    const int fd = mkstemp(pattern.data());
    if (fd < 0) throw IoError(fmt::format("{}: cannot create a scratch file", pattern));
    close(fd);
    path_ = pattern;
  }
  ~ScratchFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool same_ids(const Tokenizer& a, const Tokenizer& b) {
  for (const char* text : kCheckTexts) {
    if (a.encode(text, false, false) != b.encode(text, false, false)) return false;
  }
  return true;
}

// SentencePiece segments by token score (the highest-scoring pair first); Hugging Face BPE by
// merge rank. A token's score is minus the rank of the first merge that makes it, so both agree;
// tokens no merge makes score below every merge.
std::vector<float> scores_from_merges(const Vocab& v, int32_t n_vocab) {
  const float unmerged = -float(v.merge_ids.size()) - 1;
  std::vector<float> scores(static_cast<size_t>(n_vocab), unmerged);
  for (size_t rank = v.merge_ids.size(); rank-- > 0;) {
    const TokenId merged = v.merge_ids[rank][2];
    if (merged >= 0) scores[size_t(merged)] = -float(rank);
  }
  return scores;
}

// Whether the text pipeline puts U+2581 before the text (SentencePiece's dummy prefix).
bool adds_space_prefix(const TextPipeline& p) {
  for (const NormalizerStep& step : p.normalizer) {
    if (step.kind == NormalizerStep::Kind::kPrepend && step.text == kSpmSpace) return true;
  }
  for (const PreTokenizerStep& step : p.pre_tokenizer) {
    if (step.rewrites() && step.prepend != PrependScheme::kNever) return true;
  }
  return false;
}

}  // namespace

std::string write_gguf_tokenizer(const std::string& dir, int32_t n_vocab, GgufWriter& w) {
  const fs::path d(dir);
  const std::string chat_template = read_chat_template((d / "tokenizer_config.json").string());
  if (!chat_template.empty()) w.set_string("tokenizer.chat_template", chat_template);
  std::error_code ec;
  const fs::path json = d / "tokenizer.json";
  if (!fs::exists(json, ec)) return "no tokenizer written: the directory has no tokenizer.json";
  std::optional<Tokenizer> hf;
  try {
    hf = load_hf_tokenizer(json.string());
  } catch (const UnsupportedError& e) {
    return fmt::format("no tokenizer written: {}", e.what());
  }
  const Tokenizer::Impl& impl = hf->impl();
  const Vocab& v = impl.vocab;
  if (v.kind != VocabKind::kBpe) {
    return fmt::format("no tokenizer written: {} is not a BPE tokenizer", json.string());
  }
  if (v.size() > n_vocab) {
    return fmt::format("no tokenizer written: {} has {} tokens but the model only {} embeddings",
                       json.string(), v.size(), n_vocab);
  }
  const bool spm = !v.byte_level;
  if (spm && !v.byte_fallback) {
    return fmt::format(
        "no tokenizer written: {} is neither byte-level BPE (gpt2) nor SentencePiece-style BPE "
        "with byte_fallback (llama)",
        json.string());
  }

  // The keys go into `keys` first: written alone and loaded back, they must reproduce
  // tokenizer.json before they go into `w`.
  GgufWriter keys;
  keys.set_string("tokenizer.ggml.model", spm ? "llama" : "gpt2");
  std::vector<std::string> tokens(static_cast<size_t>(n_vocab));
  std::vector<int32_t> types(static_cast<size_t>(n_vocab), int32_t(TokenType::kUnused));
  for (int32_t i = 0; i < n_vocab; ++i) {
    const bool named = i < v.size() && !v.tokens[size_t(i)].empty();
    tokens[size_t(i)] = named ? v.tokens[size_t(i)] : fmt::format("[PAD{}]", i);
    if (i < v.size()) types[size_t(i)] = int32_t(v.types[size_t(i)]);
  }
  keys.set_string_array("tokenizer.ggml.tokens", tokens);
  keys.set_array("tokenizer.ggml.token_type", types);
  if (spm) {
    keys.set_array("tokenizer.ggml.scores", scores_from_merges(v, n_vocab));
    keys.set_bool("tokenizer.ggml.add_space_prefix", adds_space_prefix(impl.pipeline));
  } else {
    // Merges whose parts are not tokens never apply: they are left out.
    std::vector<std::string> merges;
    merges.reserve(v.merge_ids.size());
    for (const auto& [left, right, merged] : v.merge_ids) {
      if (merged >= 0) merges.push_back(v.tokens[size_t(left)] + " " + v.tokens[size_t(right)]);
    }
    keys.set_string_array("tokenizer.ggml.merges", merges);
  }
  const TokenizerConfig config = read_tokenizer_config(d / "tokenizer_config.json");
  TokenId pad = -1;
  if (config.pad_token) {
    for (int32_t i = 0; i < v.size() && pad < 0; ++i) {
      if (v.tokens[size_t(i)] == *config.pad_token) pad = i;
    }
  }
  const std::pair<const char*, TokenId> ids[] = {
      {"tokenizer.ggml.bos_token_id", v.bos},     {"tokenizer.ggml.eos_token_id", v.eos},
      {"tokenizer.ggml.unknown_token_id", v.unk}, {"tokenizer.ggml.padding_token_id", pad},
      {"tokenizer.ggml.eot_token_id", v.eot},
  };
  for (const auto& [key, id] : ids) {
    if (id >= 0) keys.set_u32(key, uint32_t(id));
  }
  keys.set_bool("tokenizer.ggml.add_bos_token", v.add_bos);
  keys.set_bool("tokenizer.ggml.add_eos_token", config.add_eos);

  const ScratchFile scratch;
  keys.write(scratch.path());
  const GgufFile written = GgufFile::open(scratch.path());
  std::string pre;
  if (spm) {
    if (!same_ids(load_tokenizer(written), *hf)) {
      return fmt::format(
          "no tokenizer written: as a SentencePiece (llama) vocabulary, {} gives other ids on the "
          "check texts",
          json.string());
    }
  } else {
    // Names whose ignore_merges agrees with tokenizer.json's first (e.g. qwen2 before llama-bpe
    // for Qwen, whose vocabulary has no multi-digit tokens to tell \p{N} from \p{N}{1,3}).
    for (const bool agrees : {true, false}) {
      for (const char* name : kPreNames) {
        if (!pre.empty()) break;
        if ((gguf_pre_tokenizer(name, json.string()).ignore_merges == v.ignore_merges) != agrees) {
          continue;
        }
        if (same_ids(load_tokenizer(written, name), *hf)) pre = name;
      }
    }
    if (pre.empty()) {
      return fmt::format(
          "no tokenizer written: no tokenizer.ggml.pre that slm knows splits text like {}'s "
          "pre_tokenizer (checked on its check texts)",
          json.string());
    }
  }
  for (const GgufKv& kv : written.metadata()) {
    w.set(kv.key, GgufMetaValue::from(kv.value));
  }
  if (!pre.empty()) w.set_string("tokenizer.ggml.pre", pre);
  return "";
}

}  // namespace slm
