// SentencePiece BPE segmentation (llama.cpp's "SPM" tokenizer).
#pragma once

#include <string_view>
#include <vector>

#include "slm/tokenizer.h"

namespace slm {

// Appends the ids of `escaped` (text whose spaces are already U+2581) to `out`:
// split into UTF-8 characters, then repeatedly merge the adjacent pair whose concatenation is
// a vocabulary token with the highest score (ties: the leftmost pair); each final symbol is its
// token, or else one byte-fallback token per byte.
void spm_segment(const Tokenizer::Impl& impl, std::string_view escaped, std::vector<TokenId>& out);

}  // namespace slm
