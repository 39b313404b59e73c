// safetensors reader: one file, or a sharded checkpoint through model.safetensors.index.json.
// Layout: u64 little-endian header length N, N bytes of JSON
//   {"__metadata__": {str: str}, "NAME": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}}
// then the data section; [b, e) is relative to its start. Every length, offset, shape and dtype
// is checked against the file before use; a bad file gives FormatError naming the file and the
// tensor, never a crash. Tensor data stays in the mapping (zero copy).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/format/mapped_file.h"

namespace slm {

// The element types slm reads. F32/F16/BF16 are computed with; I8/U8 are passed through (e.g.
// for inspect). Any other safetensors dtype is an UnsupportedError naming tensor and dtype.
enum class SafetensorsDType { kF32, kF16, kBF16, kI8, kU8 };
std::string_view safetensors_dtype_name(SafetensorsDType type);  // "F32", ...
size_t safetensors_dtype_size(SafetensorsDType type);            // bytes per element

struct SafetensorsTensor {
  std::string name;
  SafetensorsDType type = SafetensorsDType::kF32;
  std::vector<uint64_t> shape;  // row-major, outermost first (PyTorch order)
  uint64_t offset = 0;          // absolute offset in its file
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapping; n_bytes long, inside the file
};

class SafetensorsFile {
 public:
  // A header larger than this is refused before it is parsed (real headers are < 1 MB).
  static constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

  // Throws IoError (cannot open) or FormatError / UnsupportedError naming `path`.
  static SafetensorsFile open(const std::string& path, bool use_mmap = true);

  const std::string& path() const { return file_.path(); }
  size_t file_size() const { return file_.size(); }
  uint64_t data_offset() const { return data_offset_; }  // 8 + header length
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // In header order.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find_tensor(std::string_view name) const;

 private:
  MappedFile file_;
  uint64_t data_offset_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;  // name → position in tensors_
};

// All tensors of a model directory: model.safetensors.index.json ("weight_map": name → shard
// file) when present, else model.safetensors. Each shard is mapped once.
class SafetensorsCheckpoint {
 public:
  // `dir` is the model directory. Throws FormatError naming the file at fault (a missing
  // shard, a tensor listed in the index but absent from its shard, a tensor in two shards).
  static SafetensorsCheckpoint open(const std::string& dir, bool use_mmap = true);

  const std::string& dir() const { return dir_; }
  const std::vector<SafetensorsFile>& files() const { return files_; }
  const SafetensorsTensor* find_tensor(std::string_view name) const;
  // The file holding `name` (for messages); empty when it is absent.
  std::string file_of(std::string_view name) const;

 private:
  std::string dir_;
  std::vector<SafetensorsFile> files_;
  // name → (file index, tensor index)
  std::map<std::string, std::pair<size_t, size_t>, std::less<>> index_;
};

}  // namespace slm
