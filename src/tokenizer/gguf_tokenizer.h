// Building a Tokenizer from the tokenizer.ggml.* metadata of a GGUF file.
#pragma once

#include <optional>
#include <string_view>

#include "slm/tokenizer.h"
#include "src/format/gguf.h"
#include "src/tokenizer/vocab.h"

namespace slm {

// Reads tokenizer.ggml.model ("llama": SentencePiece BPE; "gpt2": byte-level BPE with
// .merges and the pre-tokenizer named by .pre; any other model is an UnsupportedError naming it), .tokens, .scores, .token_type, the special ids
// (.bos/.eos/.unknown/.padding/.eot_token_id) and the flags .add_bos_token, .add_eos_token,
// .add_space_prefix. Missing required keys and inconsistent arrays are FormatErrors naming the
// key and the file.
// `pre`, when given, stands in for tokenizer.ggml.pre (slm convert tries the names it knows on
// one written vocabulary).
Vocab load_vocab(const GgufFile& file, std::optional<std::string_view> pre = std::nullopt);
Tokenizer load_tokenizer(const GgufFile& file, std::optional<std::string_view> pre = std::nullopt);

}  // namespace slm
