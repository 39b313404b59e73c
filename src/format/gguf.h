// GGUF reader (versions 2 and 3): metadata, tensor infos and zero-copy views of tensor data.
// Every count, size, offset and string length is checked against the file before use; a bad
// file gives FormatError naming the file and what is wrong, never a crash.
// Layout: magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, kv pairs, tensor infos, padding to
// general.alignment (default 32), tensor data. Strings are u64 length + bytes (no NUL).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/dtype.h"
#include "src/format/mapped_file.h"

namespace slm {

enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
std::string_view gguf_type_name(GgufType type);

// One metadata value. Scalars are decoded; strings point into the mapping; arrays keep their
// elements decoded into `items` (nested arrays are items of type kArray).
struct GgufValue {
  GgufType type = GgufType::kUint8;
  uint64_t u = 0;  // kUint8..kUint64, kBool (0/1)
  int64_t i = 0;   // kInt8..kInt64
  double f = 0;    // kFloat32, kFloat64
  std::string_view str;  // kString
  GgufType elem_type = GgufType::kUint8;  // kArray
  std::vector<GgufValue> items;           // kArray

  bool is_integer() const;
  bool is_float() const { return type == GgufType::kFloat32 || type == GgufType::kFloat64; }
};

struct GgufKv {
  std::string key;
  GgufValue value;
};

struct GgufTensor {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is the contiguous (row) dimension
  DType type = DType::kF32;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapping; n_bytes long, inside the file
};

class GgufFile {
 public:
  // Throws IoError (cannot open) or FormatError (malformed), naming `path`.
  static GgufFile open(const std::string& path, bool use_mmap = true);

  const std::string& path() const { return file_.path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section
  size_t file_size() const { return file_.size(); }
  bool is_mapped() const { return file_.is_mapped(); }
  // MappedFile::edit_in_place over the whole file (tensor data included).
  void edit_in_place(const std::function<void(std::span<uint8_t>)>& edit) {
    file_.edit_in_place(edit);
  }

  const std::vector<GgufKv>& metadata() const { return kvs_; }
  const GgufValue* find(std::string_view key) const;

  // Typed getters: nullopt when the key is absent; FormatError naming the key when it is
  // present with a type that does not fit (e.g. a string where a number is expected, or a
  // negative/too large integer for an unsigned value).
  std::optional<uint64_t> get_uint(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;  // floats and integers
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string_view> get_string(std::string_view key) const;
  // The element arrays; nullopt when absent, FormatError on a wrong element type.
  std::optional<std::vector<std::string_view>> get_string_array(std::string_view key) const;
  std::optional<std::vector<float>> get_float_array(std::string_view key) const;
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;

  // Like the getters, but a missing key is a FormatError naming the key and the file.
  uint64_t require_uint(std::string_view key) const;
  std::string_view require_string(std::string_view key) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(std::string_view name) const;

 private:
  MappedFile file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::vector<GgufTensor> tensors_;
};

}  // namespace slm
