// WordPiece (BERT): each pre-tokenized word becomes the longest vocabulary token that starts
// it, then the longest continuation token at each following position; a word that cannot be
// covered this way is one unk token (Hugging Face `WordPiece`, llama.cpp's WPM).
#pragma once

#include <string_view>
#include <vector>

#include "slm/tokenizer.h"
#include "src/tokenizer/vocab.h"

namespace slm {

// Appends the ids of `word` (already normalized and free of whitespace) to `out`. Needs
// impl.vocab.unk (validated at load).
void wordpiece_segment(const Tokenizer::Impl& impl, std::string_view word,
                       std::vector<TokenId>& out);

// Rewrites a Hugging Face WordPiece vocabulary into llama.cpp's form: "x" -> "▁x" and
// "<prefix>x" -> "x" for normal tokens; special and added tokens stay as they are.
void wordpiece_to_phantom_form(Vocab& vocab, std::string_view continuing_prefix);

}  // namespace slm
