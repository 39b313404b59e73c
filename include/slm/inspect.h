// A model file's contents as text, without building the model: works for any architecture.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slm {

struct FileInfo {
  struct Entry {
    std::string key;
    std::string type;   // e.g. "u32", "string", "array[string]"
    std::string value;  // printable; long arrays are abbreviated as "[a, b, c, ... (N items)]"
  };
  struct Tensor {
    std::string name;
    std::string type;  // ggml type name, e.g. "q8_0"
    std::vector<uint64_t> dims;  // contiguous dimension first, as in GGUF
    uint64_t offset = 0;         // absolute offset in the file
    uint64_t bytes = 0;
  };
  std::string path;
  std::string format;  // "gguf v3", "safetensors (Hugging Face directory)"
  uint64_t file_bytes = 0;
  std::vector<Entry> metadata;
  std::vector<Tensor> tensors;
};

// `path` is a GGUF file or a Hugging Face model directory (metadata: config.json's keys, the
// safetensors "__metadata__", generation_config.json's eos/bos ids as "generation_config.*"
// and tokenizer_config.json's chat template as "tokenizer.chat_template"; tensors of every
// shard). Throws slm::Error for unreadable or
// malformed files.
FileInfo inspect_file(const std::string& path);

}  // namespace slm
