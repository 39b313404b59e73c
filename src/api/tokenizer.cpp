// slm::Tokenizer: encode (special-token split, SentencePiece segmentation), decode and
// streaming decode over the tables in src/tokenizer/tokenizer_impl.h.
#include "slm/tokenizer.h"

#include <fmt/format.h>

#include <filesystem>

#include "slm/error.h"
#include "src/format/gguf.h"
#include "src/tokenizer/bpe.h"
#include "src/tokenizer/gguf_tokenizer.h"
#include "src/tokenizer/hf_tokenizer.h"
#include "src/tokenizer/special_split.h"
#include "src/tokenizer/spm.h"
#include "src/tokenizer/tokenizer_impl.h"
#include "src/tokenizer/utf8.h"
#include "src/tokenizer/wordpiece.h"

namespace slm {

namespace {

const std::string& piece_of(const Tokenizer::Impl& impl, TokenId id) {
  if (id < 0 || id >= impl.vocab.size()) {
    throw InvalidArgumentError(
        fmt::format("token id {} is outside the vocabulary of {} tokens", id, impl.vocab.size()));
  }
  return impl.pieces[static_cast<size_t>(id)];
}

// What `id` renders as: its piece, or for special tokens their text when `render_special`.
const std::string& text_of(const Tokenizer::Impl& impl, TokenId id, bool render_special) {
  const std::string& piece = piece_of(impl, id);
  if (piece.empty() && render_special) {
    const TokenType type = impl.vocab.types[static_cast<size_t>(id)];
    if (type == TokenType::kControl || type == TokenType::kUnknown) {
      return impl.vocab.tokens[static_cast<size_t>(id)];
    }
  }
  return piece;
}

// SentencePiece removes the dummy prefix it added when encoding: the first space of the text.
void append_piece(const std::string& piece, bool& strip_space, std::string& out) {
  if (piece.empty()) return;  // BOS/EOS and other control tokens render as nothing
  if (strip_space && piece.front() == ' ') {
    out.append(piece, 1);
  } else {
    out += piece;
  }
  strip_space = false;
}

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::from_file(const std::string& path) {
  const std::filesystem::path p(path);
  if (p.extension() == ".gguf") return load_tokenizer(GgufFile::open(path));
  if (std::filesystem::is_directory(p)) return load_hf_tokenizer((p / "tokenizer.json").string());
  return load_hf_tokenizer(path);
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_bos,
                                       bool parse_special) const {
  const Vocab& vocab = impl_->vocab;
  std::vector<TokenId> out;
  if (add_bos && vocab.bos >= 0) out.push_back(vocab.bos);
  // The space prefix goes before the first text fragment and before every fragment that
  // follows a special token (each is tokenized as if it started a text), as in llama.cpp.
  bool prev_special = true;
  std::string escaped;
  BpeCache cache;
  for (const Fragment& fragment : split_special(*impl_, text, parse_special)) {
    if (fragment.token >= 0) {
      out.push_back(fragment.token);
      prev_special = true;
      continue;
    }
    if (vocab.kind != VocabKind::kLlama) {
      // normalizer -> pre-tokenizer -> model per word, as Hugging Face tokenizers does.
      // Added tokens with `normalized` are matched in the normalized text (Hugging Face).
      const std::string normalized = normalize(impl_->pipeline.normalizer, fragment.text);
      for (const Fragment& piece : split_normalized(*impl_, normalized, parse_special)) {
        if (piece.token >= 0) {
          out.push_back(piece.token);
          continue;
        }
        // Metaspace's prepend_scheme "first" looks at whether the piece starts the input.
        const bool at_input_start =
            fragment.text.data() == text.data() && piece.text.data() == normalized.data();
        std::string word_text(piece.text);
        for (const auto& [begin, end] :
             pre_tokenize(impl_->pipeline.pre_tokenizer, word_text, at_input_start)) {
          const std::string_view word = std::string_view(word_text).substr(begin, end - begin);
          if (vocab.kind == VocabKind::kWordPiece) {
            wordpiece_segment(*impl_, word, out);
          } else {
            bpe_segment(*impl_, word, out, &cache);
          }
        }
      }
      continue;
    }
    escaped.clear();
    if (vocab.add_space_prefix && prev_special) escaped += kSpmSpace;
    append_spm_escaped(fragment.text, escaped);
    spm_segment(*impl_, escaped, out);
    prev_special = false;
  }
  return out;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool render_special) const {
  std::string out;
  bool strip_space = impl_->strip_decoded_space;
  for (const TokenId id : ids) append_piece(text_of(*impl_, id, render_special), strip_space, out);
  return out;
}

std::string Tokenizer::token_to_piece(TokenId id) const { return piece_of(*impl_, id); }

int32_t Tokenizer::vocab_size() const { return impl_->vocab.size(); }
TokenId Tokenizer::bos_id() const { return impl_->vocab.bos; }
TokenId Tokenizer::eos_id() const { return impl_->vocab.eos; }
TokenId Tokenizer::unk_id() const { return impl_->vocab.unk; }
bool Tokenizer::adds_bos() const { return impl_->vocab.add_bos && impl_->vocab.bos >= 0; }

bool Tokenizer::is_eog(TokenId id) const {
  return id >= 0 && (id == impl_->vocab.eos || id == impl_->vocab.eot);
}

std::string Tokenizer::StreamDecoder::push(TokenId id) {
  const Impl& impl = tokenizer_->impl();
  bool strip_space = first_ && impl.strip_decoded_space;
  const std::string& piece = piece_of(impl, id);
  if (!piece.empty()) {
    append_piece(piece, strip_space, pending_);
    first_ = false;
  }
  std::string out;
  drain_utf8(pending_, out, /*final=*/false);
  return out;
}

std::string Tokenizer::StreamDecoder::flush() {
  std::string out;
  drain_utf8(pending_, out, /*final=*/true);
  return out;
}

}  // namespace slm
