// Cutting special tokens written in the text out of it before segmentation.
#pragma once

#include <string_view>
#include <vector>

#include "slm/tokenizer.h"

namespace slm {

// A piece of the input: either literal text or one special token found in it.
struct Fragment {
  TokenId token;          // -1 for text
  std::string_view text;  // the text (empty for a token)
};

// Splits `text` on the special tokens of `impl` (longest first, each searched in the text that
// the previous ones left): control and unknown tokens only when `parse_special`, user-defined
// tokens always, as llama.cpp's tokenizer_st_partition does.
std::vector<Fragment> split_special(const Tokenizer::Impl& impl, std::string_view text,
                                    bool parse_special);

}  // namespace slm
