#include "src/format/gguf_writer.h"

#include <fmt/format.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unordered_set>

#include "slm/error.h"

namespace slm {
namespace {

constexpr char kAlignmentKey[] = "general.alignment";

// resize + memcpy rather than insert(): GCC 12 at -O3 warns falsely (stringop-overflow) about
// range insertion of small fixed-size values.
void append(std::vector<uint8_t>& out, const void* p, size_t n) {
  if (n == 0) return;
  const size_t old = out.size();
  out.resize(old + n);
  std::memcpy(out.data() + old, p, n);
}

template <class T>
void append_pod(std::vector<uint8_t>& out, T v) {
  append(out, &v, sizeof(T));
}

void append_string(std::vector<uint8_t>& out, std::string_view s) {
  append_pod<uint64_t>(out, s.size());
  append(out, s.data(), s.size());
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

GgufMetaValue GgufMetaValue::scalar(GgufType type, const void* p, size_t n) {
  GgufMetaValue v;
  v.type_ = type;
  append(v.bytes_, p, n);
  return v;
}

GgufMetaValue GgufMetaValue::string(std::string_view s) {
  GgufMetaValue v;
  v.type_ = GgufType::kString;
  append_string(v.bytes_, s);
  return v;
}

GgufMetaValue GgufMetaValue::raw_array(GgufType elem, const void* p, size_t count,
                                       size_t elem_size) {
  GgufMetaValue v;
  v.type_ = GgufType::kArray;
  append_pod<uint32_t>(v.bytes_, static_cast<uint32_t>(elem));
  append_pod<uint64_t>(v.bytes_, count);
  append(v.bytes_, p, count * elem_size);
  return v;
}

GgufMetaValue GgufMetaValue::string_array(std::span<const std::string> values) {
  GgufMetaValue v;
  v.type_ = GgufType::kArray;
  append_pod<uint32_t>(v.bytes_, static_cast<uint32_t>(GgufType::kString));
  append_pod<uint64_t>(v.bytes_, values.size());
  for (const std::string& s : values) append_string(v.bytes_, s);
  return v;
}

GgufMetaValue GgufMetaValue::array_of(GgufType elem_type, const std::vector<GgufMetaValue>& items) {
  GgufMetaValue v;
  v.type_ = GgufType::kArray;
  append_pod<uint32_t>(v.bytes_, static_cast<uint32_t>(elem_type));
  append_pod<uint64_t>(v.bytes_, items.size());
  for (size_t k = 0; k < items.size(); ++k) {
    if (items[k].type_ != elem_type) {
      throw InvalidArgumentError(fmt::format("GGUF array of {}: item {} has type {}",
                                             gguf_type_name(elem_type), k,
                                             gguf_type_name(items[k].type_)));
    }
    append(v.bytes_, items[k].bytes_.data(), items[k].bytes_.size());
  }
  return v;
}

GgufMetaValue GgufMetaValue::from(const GgufValue& value) {
  switch (value.type) {
    case GgufType::kUint8:
      return u8(static_cast<uint8_t>(value.u));
    case GgufType::kInt8:
      return i8(static_cast<int8_t>(value.i));
    case GgufType::kUint16:
      return u16(static_cast<uint16_t>(value.u));
    case GgufType::kInt16:
      return i16(static_cast<int16_t>(value.i));
    case GgufType::kUint32:
      return u32(static_cast<uint32_t>(value.u));
    case GgufType::kInt32:
      return i32(static_cast<int32_t>(value.i));
    case GgufType::kUint64:
      return u64(value.u);
    case GgufType::kInt64:
      return i64(value.i);
    case GgufType::kFloat32:
      return f32(static_cast<float>(value.f));
    case GgufType::kFloat64:
      return f64(value.f);
    case GgufType::kBool:
      return boolean(value.u != 0);
    case GgufType::kString:
      return string(value.str);
    case GgufType::kArray: {
      std::vector<GgufMetaValue> items;
      items.reserve(value.items.size());
      for (const GgufValue& item : value.items) items.push_back(from(item));
      return array_of(value.elem_type, items);
    }
  }
  throw InvalidArgumentError("GGUF value of unknown type");
}

void GgufWriter::set_version(uint32_t version) {
  if (version != 2 && version != 3) {
    throw InvalidArgumentError(fmt::format("GGUF writer: version {} (expected 2 or 3)", version));
  }
  version_ = version;
}

void GgufWriter::set_alignment(uint32_t alignment) { set_u32(kAlignmentKey, alignment); }

void GgufWriter::set(std::string key, GgufMetaValue value) {
  if (key == kAlignmentKey) {
    if (value.type() != GgufType::kUint32) {
      throw InvalidArgumentError(fmt::format("GGUF writer: {} must be a uint32, not {}",
                                             kAlignmentKey, gguf_type_name(value.type())));
    }
    uint32_t a = 0;
    std::memcpy(&a, value.encoded().data(), 4);
    if (a == 0 || !std::has_single_bit(a)) {
      throw InvalidArgumentError(
          fmt::format("GGUF writer: alignment {} is not a non-zero power of two", a));
    }
    alignment_ = a;
  }
  for (Kv& kv : kvs_) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  kvs_.push_back(Kv{std::move(key), std::move(value)});
}

bool GgufWriter::has_key(std::string_view key) const {
  for (const Kv& kv : kvs_) {
    if (kv.key == key) return true;
  }
  return false;
}

GgufWriter::Tensor& GgufWriter::add_tensor_info(std::string name, std::vector<uint64_t> dims,
                                                DType type, size_t n_bytes) {
  const auto bad = [&](const std::string& what) {
    return InvalidArgumentError(fmt::format("GGUF writer: tensor '{}': {}", name, what));
  };
  for (const Tensor& t : tensors_) {
    if (t.name == name) throw bad("duplicate tensor name");
  }
  if (dims.empty() || dims.size() > 4)
    throw bad(fmt::format("{} dims (expected 1 to 4)", dims.size()));
  uint64_t n = 1;
  for (uint64_t d : dims) {
    if (d == 0) throw bad("a dimension is 0");
    if (__builtin_mul_overflow(n, d, &n)) throw bad("element count overflows 64 bits");
  }
  const DTypeTraits& tr = traits(type);
  if (dims[0] % tr.block_elems != 0) {
    throw bad(fmt::format("row length {} is not a multiple of the {} block size {}", dims[0],
                          tr.name, tr.block_elems));
  }
  uint64_t expected = 0;
  if (__builtin_mul_overflow(n / tr.block_elems, uint64_t{tr.block_bytes}, &expected)) {
    throw bad("byte size overflows 64 bits");
  }
  if (expected != n_bytes) {
    throw bad(
        fmt::format("{} bytes of data, expected {} for {} {}", n_bytes, expected, n, tr.name));
  }
  tensors_.push_back(Tensor{std::move(name), std::move(dims), type, {}, {}, n_bytes, {}});
  return tensors_.back();
}

void GgufWriter::add_tensor(std::string name, std::vector<uint64_t> dims, DType type,
                            std::span<const uint8_t> data) {
  Tensor& t = add_tensor_info(std::move(name), std::move(dims), type, data.size());
  t.owned.assign(data.begin(), data.end());
  t.data = t.owned;  // the heap buffer stays put when tensors_ grows
}

void GgufWriter::add_tensor_view(std::string name, std::vector<uint64_t> dims, DType type,
                                 std::span<const uint8_t> data) {
  add_tensor_info(std::move(name), std::move(dims), type, data.size()).data = data;
}

void GgufWriter::add_tensor_generated(std::string name, std::vector<uint64_t> dims, DType type,
                                      TensorFill fill) {
  if (!fill) throw InvalidArgumentError(fmt::format("GGUF writer: tensor '{}': no fill", name));
  uint64_t n = 1;
  for (uint64_t d : dims) {
    if (d != 0 && __builtin_mul_overflow(n, d, &n)) n = 0;  // add_tensor_info reports it
  }
  const DTypeTraits& tr = traits(type);
  const uint64_t n_bytes = n / tr.block_elems * tr.block_bytes;
  add_tensor_info(std::move(name), std::move(dims), type, static_cast<size_t>(n_bytes)).fill =
      std::move(fill);
}

GgufLayout GgufWriter::layout() const {
  GgufLayout l;
  size_t pos = 4 + 4 + 8 + 8;  // magic, version, n_tensors, n_kv
  for (const Kv& kv : kvs_) {
    l.kv_offsets.push_back(pos);
    pos += 8 + kv.key.size() + 4 + kv.value.encoded().size();
  }
  l.tensor_infos_offset = pos;
  for (const Tensor& t : tensors_) {
    l.tensor_info_offsets.push_back(pos);
    pos += 8 + t.name.size() + 4 + 8 * t.dims.size() + 4 + 8;
  }
  l.data_offset = align_up(pos, alignment_);
  uint64_t off = 0;
  for (const Tensor& t : tensors_) {
    l.tensor_offsets.push_back(off);
    off = align_up(off + t.n_bytes, alignment_);
  }
  l.file_size = tensors_.empty() ? pos : l.data_offset + off;
  return l;
}

void GgufWriter::emit(const Sink& sink) const {
  const GgufLayout l = layout();
  std::vector<uint8_t> head;
  head.reserve(l.data_offset);
  append(head, "GGUF", 4);
  append_pod<uint32_t>(head, version_);
  append_pod<uint64_t>(head, tensors_.size());
  append_pod<uint64_t>(head, kvs_.size());
  for (const Kv& kv : kvs_) {
    append_string(head, kv.key);
    append_pod<uint32_t>(head, static_cast<uint32_t>(kv.value.type()));
    append(head, kv.value.encoded().data(), kv.value.encoded().size());
  }
  for (size_t k = 0; k < tensors_.size(); ++k) {
    const Tensor& t = tensors_[k];
    append_string(head, t.name);
    append_pod<uint32_t>(head, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) append_pod<uint64_t>(head, d);
    append_pod<uint32_t>(head, static_cast<uint32_t>(t.type));
    append_pod<uint64_t>(head, l.tensor_offsets[k]);
  }
  // A file without tensors ends after the metadata, like ggml's vocab-only files.
  if (!tensors_.empty()) head.resize(l.data_offset, 0);
  sink(head.data(), head.size());

  static const std::vector<uint8_t> zeros(4096, 0);
  std::vector<uint8_t> generated;  // one generated tensor at a time
  uint64_t off = 0;
  for (size_t k = 0; k < tensors_.size(); ++k) {
    uint64_t pad = l.tensor_offsets[k] - off;
    while (pad > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(pad, zeros.size()));
      sink(zeros.data(), n);
      pad -= n;
    }
    const Tensor& t = tensors_[k];
    if (t.fill) {
      generated.resize(t.n_bytes);
      t.fill(generated);
      sink(generated.data(), generated.size());
    } else {
      sink(t.data.data(), t.data.size());
    }
    off = l.tensor_offsets[k] + t.n_bytes;
  }
  uint64_t pad = l.file_size - (tensors_.empty() ? l.file_size : l.data_offset + off);
  while (pad > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(pad, zeros.size()));
    sink(zeros.data(), n);
    pad -= n;
  }
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  std::vector<uint8_t> out;
  out.reserve(layout().file_size);
  emit([&](const void* p, size_t n) { append(out, p, n); });
  return out;
}

void GgufWriter::write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw IoError(fmt::format("{}: cannot create: {}", tmp, std::strerror(errno)));
  try {
    emit([&](const void* p, size_t n) {
      if (n > 0 && std::fwrite(p, 1, n, f) != n) {
        throw IoError(fmt::format("{}: cannot write: {}", tmp, std::strerror(errno)));
      }
    });
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw IoError(fmt::format("{}: cannot write: {}", tmp, std::strerror(err)));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw IoError(fmt::format("{}: cannot rename to {}: {}", tmp, path, ec.message()));
  }
}

}  // namespace slm
