#include "tests/safetensors_test_util.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>
#include <fstream>

#include "src/format/safetensors.h"

namespace slm::test {

void write_raw_safetensors(const std::filesystem::path& path, const std::string& header,
                           const std::vector<uint8_t>& data) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header.size();
  uint8_t len[8];
  for (uint8_t& b : len) {
    b = uint8_t(n & 0xFF);
    n >>= 8;
  }
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(header.data(), std::streamsize(header.size()));
  out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
}

void write_safetensors(const std::filesystem::path& path, const std::vector<StTensor>& tensors,
                       const std::string& metadata_json, size_t misalign) {
  std::string header = "{";
  if (!metadata_json.empty()) header += "\"__metadata__\":" + metadata_json;
  std::vector<uint8_t> data;
  for (const StTensor& t : tensors) {
    const size_t begin = data.size();
    data.insert(data.end(), t.bytes.begin(), t.bytes.end());
    header += fmt::format("{}\"{}\":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                          header.size() > 1 ? "," : "", t.name, t.dtype, fmt::join(t.shape, ","),
                          begin, data.size());
  }
  header += "}";
  while ((8 + header.size()) % 8 != misalign % 8) header += ' ';
  write_raw_safetensors(path, header, data);
}

std::vector<StTensor> read_safetensors(const std::filesystem::path& path) {
  const SafetensorsFile file = SafetensorsFile::open(path.string());
  std::vector<StTensor> out;
  for (const SafetensorsTensor& t : file.tensors()) {
    out.push_back({t.name, std::string(safetensors_dtype_name(t.type)), t.shape,
                   std::vector<uint8_t>(t.data, t.data + t.n_bytes)});
  }
  return out;
}

std::vector<uint8_t> f32_bytes(const std::vector<float>& values) {
  std::vector<uint8_t> out(values.size() * 4);
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

}  // namespace slm::test
