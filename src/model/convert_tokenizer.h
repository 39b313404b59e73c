// The GGUF tokenizer keys (tokenizer.ggml.*, tokenizer.chat_template) for a Hugging Face
// directory's tokenizer.json + tokenizer_config.json, as llama.cpp's converter names them.
#pragma once

#include <cstdint>
#include <string>

#include "src/format/gguf_writer.h"

namespace slm {

// Adds the keys for DIR/tokenizer.json to `w`: tokenizer.ggml.model "llama" (SentencePiece-style
// BPE with byte fallback: tokens, token_type, scores, add_space_prefix) or "gpt2" (byte-level
// BPE: tokens, token_type, merges, and the tokenizer.ggml.pre whose pre-tokenizer gives the same
// ids as tokenizer.json's on a set of check texts), the bos/eos/unk/padding/eot ids,
// add_bos_token / add_eos_token, and tokenizer_config.json's chat template. The vocabulary is
// padded to `n_vocab` tokens with unused "[PADi]" tokens, as llama.cpp's converter does.
// Returns "" when the keys were written, otherwise why not (no tokenizer.json, a tokenizer GGUF
// cannot express, more tokens than n_vocab, no pre-tokenizer name that reproduces it): then
// nothing but the chat template is written. Malformed files throw FormatError / IoError.
std::string write_gguf_tokenizer(const std::string& dir, int32_t n_vocab, GgufWriter& w);

}  // namespace slm
