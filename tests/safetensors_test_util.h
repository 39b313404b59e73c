// Writing small safetensors files and Hugging Face directories for tests: valid ones from
// tensor lists, and raw ones (any header text, any data) for the malformed cases.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace slm::test {

struct StTensor {
  std::string name;
  std::string dtype;  // "F32", "BF16", ... (written as given)
  std::vector<uint64_t> shape;
  std::vector<uint8_t> bytes;
};

// u64 little-endian header length, the header text, then `data`.
void write_raw_safetensors(const std::filesystem::path& path, const std::string& header,
                           const std::vector<uint8_t>& data);

// A valid file: tensors laid out one after another in the order given. The header is padded
// with spaces so the data starts `misalign` bytes past a multiple of 8 (0: aligned, as the
// safetensors library writes it).
void write_safetensors(const std::filesystem::path& path, const std::vector<StTensor>& tensors,
                       const std::string& metadata_json = R"({"format":"pt"})",
                       size_t misalign = 0);

// The tensors of a safetensors file, in header order (read back through SafetensorsFile).
std::vector<StTensor> read_safetensors(const std::filesystem::path& path);

// `n` float32 values as bytes.
std::vector<uint8_t> f32_bytes(const std::vector<float>& values);

}  // namespace slm::test
