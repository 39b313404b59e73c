// GGUF writer (version 3 by default, or 2; the encoding is the same little-endian layout).
// Collects metadata and tensors, then writes the file in one pass: header, metadata in the order
// it was set, tensor infos, padding, tensor data (each tensor aligned to general.alignment).
// Used by `slm convert`/`slm quantize` and by tests, which can also take the bytes in memory
// (to_bytes) and damage them on purpose; layout() says where each section starts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "kernels/dtype.h"
#include "src/format/gguf.h"

namespace slm {

// A metadata value ready to be written: its type and its encoding (without the type tag).
class GgufMetaValue {
 public:
  static GgufMetaValue u8(uint8_t v) { return scalar(GgufType::kUint8, &v, 1); }
  static GgufMetaValue i8(int8_t v) { return scalar(GgufType::kInt8, &v, 1); }
  static GgufMetaValue u16(uint16_t v) { return scalar(GgufType::kUint16, &v, 2); }
  static GgufMetaValue i16(int16_t v) { return scalar(GgufType::kInt16, &v, 2); }
  static GgufMetaValue u32(uint32_t v) { return scalar(GgufType::kUint32, &v, 4); }
  static GgufMetaValue i32(int32_t v) { return scalar(GgufType::kInt32, &v, 4); }
  static GgufMetaValue u64(uint64_t v) { return scalar(GgufType::kUint64, &v, 8); }
  static GgufMetaValue i64(int64_t v) { return scalar(GgufType::kInt64, &v, 8); }
  static GgufMetaValue f32(float v) { return scalar(GgufType::kFloat32, &v, 4); }
  static GgufMetaValue f64(double v) { return scalar(GgufType::kFloat64, &v, 8); }
  static GgufMetaValue boolean(bool v) {
    const uint8_t b = v ? 1 : 0;
    return scalar(GgufType::kBool, &b, 1);
  }
  static GgufMetaValue string(std::string_view v);

  // An array of numbers (uint8_t ... double; bool arrays via array_of).
  template <class T>
  static GgufMetaValue array(std::span<const T> values) {
    static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>);
    return raw_array(type_of<T>(), values.data(), values.size(), sizeof(T));
  }
  template <class T>
  static GgufMetaValue array(const std::vector<T>& values) {
    return array(std::span<const T>(values));
  }
  static GgufMetaValue string_array(std::span<const std::string> values);
  // Any array, including arrays of arrays (each item an array itself) and of bools: every item
  // must have type `elem_type` (InvalidArgumentError otherwise).
  static GgufMetaValue array_of(GgufType elem_type, const std::vector<GgufMetaValue>& items);
  // A copy of a value read from a file (e.g. to carry metadata from one file to another).
  static GgufMetaValue from(const GgufValue& value);

  GgufType type() const { return type_; }
  const std::vector<uint8_t>& encoded() const { return bytes_; }

 private:
  static GgufMetaValue scalar(GgufType type, const void* p, size_t n);
  static GgufMetaValue raw_array(GgufType elem, const void* p, size_t count, size_t elem_size);
  template <class T>
  static constexpr GgufType type_of() {
    if constexpr (std::is_same_v<T, uint8_t>)
      return GgufType::kUint8;
    else if constexpr (std::is_same_v<T, int8_t>)
      return GgufType::kInt8;
    else if constexpr (std::is_same_v<T, uint16_t>)
      return GgufType::kUint16;
    else if constexpr (std::is_same_v<T, int16_t>)
      return GgufType::kInt16;
    else if constexpr (std::is_same_v<T, uint32_t>)
      return GgufType::kUint32;
    else if constexpr (std::is_same_v<T, int32_t>)
      return GgufType::kInt32;
    else if constexpr (std::is_same_v<T, uint64_t>)
      return GgufType::kUint64;
    else if constexpr (std::is_same_v<T, int64_t>)
      return GgufType::kInt64;
    else if constexpr (std::is_same_v<T, float>)
      return GgufType::kFloat32;
    else if constexpr (std::is_same_v<T, double>)
      return GgufType::kFloat64;
    else
      static_assert(sizeof(T) == 0, "no GGUF type for this C++ type");
  }

  GgufType type_ = GgufType::kUint8;
  std::vector<uint8_t> bytes_;
};

// Where each part of the written file starts (byte offsets from the start of the file).
struct GgufLayout {
  std::vector<size_t> kv_offsets;           // each metadata entry (its key length)
  size_t tensor_infos_offset = 0;           // first tensor info (end of the metadata)
  std::vector<size_t> tensor_info_offsets;  // each tensor info (its name length)
  size_t data_offset = 0;                   // tensor data section
  std::vector<uint64_t> tensor_offsets;     // each tensor's data, from data_offset
  size_t file_size = 0;
};

class GgufWriter {
 public:
  // 2 or 3 (the default); InvalidArgumentError otherwise.
  void set_version(uint32_t version);
  // Sets general.alignment (a non-zero power of two; InvalidArgumentError otherwise).
  void set_alignment(uint32_t alignment);
  uint32_t alignment() const { return alignment_; }

  // Adds or replaces a key (a replaced key keeps its place). Setting general.alignment here is
  // the same as set_alignment (it must be a valid uint32).
  void set(std::string key, GgufMetaValue value);
  void set_u8(std::string key, uint8_t v) { set(std::move(key), GgufMetaValue::u8(v)); }
  void set_i8(std::string key, int8_t v) { set(std::move(key), GgufMetaValue::i8(v)); }
  void set_u16(std::string key, uint16_t v) { set(std::move(key), GgufMetaValue::u16(v)); }
  void set_i16(std::string key, int16_t v) { set(std::move(key), GgufMetaValue::i16(v)); }
  void set_u32(std::string key, uint32_t v) { set(std::move(key), GgufMetaValue::u32(v)); }
  void set_i32(std::string key, int32_t v) { set(std::move(key), GgufMetaValue::i32(v)); }
  void set_u64(std::string key, uint64_t v) { set(std::move(key), GgufMetaValue::u64(v)); }
  void set_i64(std::string key, int64_t v) { set(std::move(key), GgufMetaValue::i64(v)); }
  void set_f32(std::string key, float v) { set(std::move(key), GgufMetaValue::f32(v)); }
  void set_f64(std::string key, double v) { set(std::move(key), GgufMetaValue::f64(v)); }
  void set_bool(std::string key, bool v) { set(std::move(key), GgufMetaValue::boolean(v)); }
  void set_string(std::string key, std::string_view v) {
    set(std::move(key), GgufMetaValue::string(v));
  }
  void set_string_array(std::string key, std::span<const std::string> v) {
    set(std::move(key), GgufMetaValue::string_array(v));
  }
  template <class T>
  void set_array(std::string key, const std::vector<T>& v) {
    set(std::move(key), GgufMetaValue::array(v));
  }
  bool has_key(std::string_view key) const;

  // Adds a tensor with `dims` in ggml order (dims[0] contiguous) and its raw bytes, which must
  // be exactly the size the type and dims imply. InvalidArgumentError on a duplicate name,
  // 0 or more than 4 dims, a zero dim, or a row length not a multiple of the block size.
  // add_tensor copies the bytes; add_tensor_view keeps only a pointer (the bytes must outlive
  // the writer's last to_bytes/write), for converting large models without a second copy.
  void add_tensor(std::string name, std::vector<uint64_t> dims, DType type,
                  std::span<const uint8_t> data);
  void add_tensor_view(std::string name, std::vector<uint64_t> dims, DType type,
                       std::span<const uint8_t> data);
  // A tensor whose bytes are made only while the file is written: `fill` receives a buffer of
  // exactly the tensor's size, once per to_bytes/write. For files too large to hold in memory
  // (e.g. `slm synth` of a 1B-parameter model in f32): only one tensor exists at a time.
  using TensorFill = std::function<void(std::span<uint8_t> out)>;
  void add_tensor_generated(std::string name, std::vector<uint64_t> dims, DType type,
                            TensorFill fill);
  size_t n_tensors() const { return tensors_.size(); }

  GgufLayout layout() const;
  std::vector<uint8_t> to_bytes() const;
  // Writes PATH.tmp and renames it to PATH, so a failed write leaves no half file; IoError.
  void write(const std::string& path) const;

 private:
  struct Kv {
    std::string key;
    GgufMetaValue value;
  };
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;
    DType type;
    std::vector<uint8_t> owned;
    std::span<const uint8_t> data;  // empty for a generated tensor
    size_t n_bytes = 0;
    TensorFill fill;  // set for a generated tensor
  };
  using Sink = std::function<void(const void*, size_t)>;
  void emit(const Sink& sink) const;
  Tensor& add_tensor_info(std::string name, std::vector<uint64_t> dims, DType type, size_t n_bytes);

  uint32_t version_ = 3;
  uint32_t alignment_ = 32;
  std::vector<Kv> kvs_;
  std::vector<Tensor> tensors_;
};

}  // namespace slm
