// Building a Tokenizer from a Hugging Face tokenizer.json (+ tokenizer_config.json beside it).
#pragma once

#include <string>

#include "slm/tokenizer.h"

namespace slm {

// Supports `BPE` models (byte-level and SentencePiece-style with byte_fallback), normalizers
// NFC/NFKC/Replace/Prepend/Sequence, pre-tokenizers Split/ByteLevel/Digits/Sequence, added
// tokens (special -> control, others -> user-defined), the ByteLevel / Replace+ByteFallback+
// Fuse+Strip decoders, and a TemplateProcessing post-processor that starts with a special token
// (that token is BOS and adds_bos() is true, as Hugging Face's add_special_tokens does).
// tokenizer_config.json, when present, names bos/eos. Anything else is an UnsupportedError
// naming the component; malformed JSON is a FormatError naming the file.
Tokenizer load_hf_tokenizer(const std::string& path);

}  // namespace slm
