// Chat metadata of a Hugging Face directory: generation_config.json's bos/eos ids and
// tokenizer_config.json's chat template.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slm {

struct HfGenerationConfig {
  std::vector<int32_t> eos_ids;  // eos_token_id: a number or a list (e.g. Llama 3's three)
  int32_t bos_id = -1;           // bos_token_id; -1 when absent
};

// generation_config.json; an empty result when the file does not exist. Throws IoError (cannot
// read) or FormatError naming the file and key (invalid JSON, ids that are not ids).
HfGenerationConfig read_generation_config(const std::string& path);

// tokenizer_config.json's `chat_template`: a string, or a list of {"name", "template"} of which
// the one named "default" is taken (the first when none is). Empty when the file or the key does
// not exist. Throws IoError / FormatError naming the file.
std::string read_chat_template(const std::string& path);

}  // namespace slm
