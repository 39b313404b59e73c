#include "src/tokenizer/gguf_tokenizer.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdint>
#include <string>

#include "slm/error.h"
#include "src/tokenizer/tokenizer_impl.h"

namespace slm {

namespace {

constexpr std::string_view kModelKey = "tokenizer.ggml.model";
constexpr std::string_view kTokensKey = "tokenizer.ggml.tokens";
constexpr std::string_view kScoresKey = "tokenizer.ggml.scores";
constexpr std::string_view kTypesKey = "tokenizer.ggml.token_type";
constexpr std::string_view kMergesKey = "tokenizer.ggml.merges";
constexpr std::string_view kPreKey = "tokenizer.ggml.pre";

// A special token id: `fallback` when the key is absent; -1 when the file says "none" (-1 or
// the all-ones u32/u64 that converters write); FormatError when out of range, unless `lenient`.
TokenId read_id(const GgufFile& file, std::string_view key, TokenId fallback, int32_t n,
                bool lenient = false) {
  const GgufValue* value = file.find(key);
  if (value == nullptr) return fallback < n ? fallback : -1;
  if (!value->is_integer()) {
    throw FormatError(fmt::format("{}: metadata key '{}' has type {}, expected an integer",
                                  file.path(), key, gguf_type_name(value->type)));
  }
  const bool is_signed = value->type == GgufType::kInt8 || value->type == GgufType::kInt16 ||
                         value->type == GgufType::kInt32 || value->type == GgufType::kInt64;
  if (is_signed ? value->i == -1 : (value->u == UINT32_MAX || value->u == UINT64_MAX)) {
    return -1;
  }
  const bool in_range =
      is_signed ? (value->i >= 0 && value->i < n) : value->u < static_cast<uint64_t>(n);
  if (!in_range) {
    // Some converters write a padding id one past the vocabulary; llama.cpp ignores it.
    if (lenient) return -1;
    throw FormatError(fmt::format(
        "{}: metadata key '{}' = {} is outside the vocabulary of {} "
        "tokens",
        file.path(), key, is_signed ? fmt::to_string(value->i) : fmt::to_string(value->u), n));
  }
  return static_cast<TokenId>(is_signed ? value->i : static_cast<int64_t>(value->u));
}

// tokenizer.ggml.pre (or `pre` in its place); absent means "default", as in llama.cpp (old
// conversions).
std::string pre_name(const GgufFile& file, std::optional<std::string_view> pre) {
  if (pre) return std::string(*pre);
  return std::string(file.get_string(kPreKey).value_or("default"));
}

bool read_flag(const GgufFile& file, std::string_view key, bool fallback) {
  return file.get_bool(key).value_or(fallback);
}

std::string model_name(const GgufFile& file) {
  const auto model = file.get_string(kModelKey);
  if (!model) {
    throw FormatError(
        fmt::format("{}: metadata key '{}' is missing (no tokenizer)", file.path(), kModelKey));
  }
  if (*model != "llama" && *model != "gpt2" && *model != "bert") {
    throw UnsupportedError(fmt::format("{}: {} tokenizers are not supported yet ({} = '{}')",
                                       file.path(), *model, kModelKey, *model));
  }
  return std::string(*model);
}

// "a b" -> ("a", "b"); the split is at the first space after the first byte, since a token
// of its own may be a space.
std::pair<std::string, std::string> split_merge(const GgufFile& file, std::string_view merge,
                                                size_t index) {
  const size_t space = merge.find(' ', 1);
  if (space == std::string_view::npos) {
    throw FormatError(fmt::format("{}: '{}'[{}] = '{}' is not two tokens separated by a space",
                                  file.path(), kMergesKey, index, merge));
  }
  return {std::string(merge.substr(0, space)), std::string(merge.substr(space + 1))};
}

// llama.cpp sets strip attributes from the model's name (general.name, case-insensitive): in a
// Phi-3 model every control, user-defined and unknown token, and "</s>", also takes the
// whitespace after it ("<|end|>\n" is one token), except "<unk>", "<s>" and "<|endoftext|>".
void add_phi3_rstrip(const GgufFile& file, Vocab& vocab) {
  std::string name(file.get_string("general.name").value_or(""));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name.find("phi-3") == std::string::npos && name.find("phi3") == std::string::npos) return;
  for (TokenId id = 0; id < vocab.size(); ++id) {
    const std::string& text = vocab.tokens[static_cast<size_t>(id)];
    const TokenType type = vocab.types[static_cast<size_t>(id)];
    const bool special = type == TokenType::kControl || type == TokenType::kUserDefined ||
                         type == TokenType::kUnknown || text == "</s>";
    if (special && text != "<unk>" && text != "<s>" && text != "<|endoftext|>") {
      vocab.rstrip_tokens.push_back(id);
    }
  }
}

}  // namespace

Vocab load_vocab(const GgufFile& file, std::optional<std::string_view> pre) {
  const std::string model = model_name(file);
  const bool bpe = model == "gpt2";
  const bool wpm = model == "bert";

  Vocab vocab;
  vocab.kind = bpe ? VocabKind::kBpe : wpm ? VocabKind::kWordPiece : VocabKind::kLlama;
  const auto tokens = file.get_string_array(kTokensKey);
  if (!tokens) {
    throw FormatError(fmt::format("{}: metadata key '{}' is missing", file.path(), kTokensKey));
  }
  vocab.tokens.assign(tokens->begin(), tokens->end());
  const auto n = static_cast<int32_t>(vocab.tokens.size());

  // SentencePiece segmentation is driven by the scores: without them there is no tokenizer.
  // BPE is driven by the merges and has no use for scores.
  auto scores = file.get_float_array(kScoresKey);
  if (!scores && (bpe || wpm)) scores = std::vector<float>(vocab.tokens.size(), 0.0f);
  if (!scores) {
    throw FormatError(fmt::format("{}: metadata key '{}' is missing", file.path(), kScoresKey));
  }
  if (scores->size() != vocab.tokens.size()) {
    throw FormatError(fmt::format("{}: '{}' has {} entries but '{}' has {}", file.path(),
                                  kScoresKey, scores->size(), kTokensKey, n));
  }
  vocab.scores = std::move(*scores);

  // Token types are optional in llama.cpp (all normal when absent).
  const auto types = file.get_int_array(kTypesKey);
  if (types) {
    if (types->size() != vocab.tokens.size()) {
      throw FormatError(fmt::format("{}: '{}' has {} entries but '{}' has {}", file.path(),
                                    kTypesKey, types->size(), kTokensKey, n));
    }
    vocab.types.reserve(types->size());
    for (size_t i = 0; i < types->size(); ++i) {
      const int64_t t = (*types)[i];
      if (t < 0 || t > static_cast<int64_t>(TokenType::kByte)) {
        throw FormatError(fmt::format("{}: '{}'[{}] = {} is not a ggml token type", file.path(),
                                      kTypesKey, i, t));
      }
      vocab.types.push_back(static_cast<TokenType>(t));
    }
  } else {
    vocab.types.assign(vocab.tokens.size(), TokenType::kNormal);
  }

  if (bpe) {
    const auto merges = file.get_string_array(kMergesKey);
    if (!merges) {
      throw FormatError(fmt::format("{}: metadata key '{}' is missing", file.path(), kMergesKey));
    }
    vocab.merges.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) {
      vocab.merges.push_back(split_merge(file, (*merges)[i], i));
    }
    vocab.byte_level = true;
  }

  // llama.cpp's defaults: SentencePiece <unk> 0, <s> 1, </s> 2, BOS added; BPE: none of these;
  // BERT: [CLS] 101 as BOS, [UNK] 100, [PAD] 0 ([SEP] 102 ends a sequence; encode never adds it).
  vocab.bos = read_id(file, "tokenizer.ggml.bos_token_id", bpe ? -1 : wpm ? 101 : 1, n);
  vocab.eos = read_id(file, "tokenizer.ggml.eos_token_id", bpe || wpm ? -1 : 2, n);
  vocab.unk = read_id(file, "tokenizer.ggml.unknown_token_id", bpe ? -1 : wpm ? 100 : 0, n);
  vocab.pad = read_id(file, "tokenizer.ggml.padding_token_id", wpm ? 0 : -1, n, /*lenient=*/true);
  vocab.eot = read_id(file, "tokenizer.ggml.eot_token_id", -1, n);
  bool add_bos_default = !bpe;
  if (bpe) {
    const GgufPreTokenizer named = gguf_pre_tokenizer(pre_name(file, pre), file.path());
    add_bos_default = named.add_bos;
    vocab.ignore_merges = named.ignore_merges;
  }
  vocab.add_bos = read_flag(file, "tokenizer.ggml.add_bos_token", add_bos_default);
  vocab.add_eos = read_flag(file, "tokenizer.ggml.add_eos_token", false);
  // WordPiece: the flag only says that decode drops the first word's phantom space.
  vocab.add_space_prefix = wpm || read_flag(file, "tokenizer.ggml.add_space_prefix", !bpe);
  if (wpm && vocab.unk < 0) {
    throw FormatError(fmt::format("{}: a bert tokenizer needs an unknown token", file.path()));
  }
  if (bpe && vocab.add_space_prefix) {
    throw UnsupportedError(fmt::format(
        "{}: tokenizer.ggml.add_space_prefix with a gpt2 tokenizer is not supported", file.path()));
  }

  add_phi3_rstrip(file, vocab);
  validate_vocab(vocab, file.path());
  return vocab;
}

Tokenizer load_tokenizer(const GgufFile& file, std::optional<std::string_view> pre) {
  Vocab vocab = load_vocab(file, pre);
  TextPipeline pipeline;
  if (vocab.kind == VocabKind::kBpe) {
    pipeline.pre_tokenizer = gguf_pre_tokenizer(pre_name(file, pre), file.path()).steps;
  } else if (vocab.kind == VocabKind::kWordPiece) {
    // llama.cpp's WPM preprocessing is Hugging Face's BERT pipeline for uncased models:
    // clean text, isolate CJK, NFD, lowercase, split on whitespace and punctuation. It keeps
    // accents where Hugging Face strips them; Hugging Face (what the test vectors come from)
    // is followed here.
    pipeline.normalizer.push_back(NormalizerStep::of(
        NormalizerStep::Kind::kBert, NormalizerStep::kCleanText | NormalizerStep::kChineseChars |
                                         NormalizerStep::kStripAccentsFlag |
                                         NormalizerStep::kLowercaseFlag));
    pipeline.pre_tokenizer = bert_pre_tokenizer(file.path());
  }
  return make_tokenizer(std::move(vocab), file.path(), std::move(pipeline));
}

}  // namespace slm
