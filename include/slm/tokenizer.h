// Text <-> token ids. A Tokenizer is immutable and safe to share between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace slm {

using TokenId = int32_t;

class Tokenizer {
 public:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl);

  // The tokenizer of a file: a GGUF model (".gguf"), a Hugging Face tokenizer.json (with its
  // tokenizer_config.json when present beside it), or a folder holding a tokenizer.json.
  // Throws IoError, FormatError or UnsupportedError naming the file.
  static Tokenizer from_file(const std::string& path);

  // Ids for `text`. add_bos prepends BOS when the vocabulary has one. parse_special turns
  // special/control tokens written in the text (e.g. "</s>") into their ids; otherwise they
  // are ordinary text.
  std::vector<TokenId> encode(std::string_view text, bool add_bos = true,
                              bool parse_special = false) const;
  // Text of a sequence of ids. Special tokens such as BOS/EOS render as nothing, or as their
  // text with render_special (what Hugging Face's decode(ids) gives).
  std::string decode(std::span<const TokenId> ids, bool render_special = false) const;
  // The bytes one token stands for when it follows other tokens (may be a partial UTF-8 char).
  std::string token_to_piece(TokenId id) const;

  int32_t vocab_size() const;
  TokenId bos_id() const;  // -1 when the vocabulary has none
  TokenId eos_id() const;
  TokenId unk_id() const;
  bool adds_bos() const;  // whether the model's metadata asks for BOS on a prompt
  bool is_eog(TokenId id) const;  // end of generation (EOS, EOT, ...)

  // Decodes a token stream piece by piece and only ever returns complete UTF-8 sequences.
  class StreamDecoder {
   public:
    explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}
    // Text that became complete with `id` (possibly empty).
    std::string push(TokenId id);
    // Whatever is still pending (invalid UTF-8 comes out as U+FFFD).
    std::string flush();

   private:
    const Tokenizer* tokenizer_;
    std::string pending_;
    bool first_ = true;
  };

  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace slm
