#include "src/tokenizer/special_split.h"

#include "src/tokenizer/tokenizer_impl.h"

namespace slm {

std::vector<Fragment> split_special(const Tokenizer::Impl& impl, std::string_view text,
                                    bool parse_special) {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back(Fragment{-1, text});
  std::vector<Fragment> next;
  for (const TokenId id : impl.special_tokens) {
    const TokenType type = impl.vocab.types[id];
    if (!parse_special && type != TokenType::kUserDefined) continue;
    const std::string_view special = impl.vocab.tokens[id];
    next.clear();
    bool found = false;
    for (const Fragment& fragment : fragments) {
      if (fragment.token >= 0) {
        next.push_back(fragment);
        continue;
      }
      std::string_view rest = fragment.text;
      for (size_t at = rest.find(special); at != std::string_view::npos; at = rest.find(special)) {
        found = true;
        if (at > 0) next.push_back(Fragment{-1, rest.substr(0, at)});
        next.push_back(Fragment{id, {}});
        rest.remove_prefix(at + special.size());
      }
      if (!rest.empty()) next.push_back(Fragment{-1, rest});
    }
    if (found) fragments.swap(next);
  }
  return fragments;
}

}  // namespace slm
