#include "src/format/gguf.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <bit>
#include <cstring>
#include <limits>
#include <unordered_set>
#include <utility>

#include "slm/error.h"

namespace slm {

// GGUF stores numbers in the writer's byte order; slm reads only little-endian files and runs
// only on little-endian hosts, so values are copied straight out of the file.
static_assert(std::endian::native == std::endian::little,
              "slm's GGUF reader assumes a little-endian host");

namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;
// Deep enough for any real file, shallow enough that the recursion cannot exhaust the stack.
constexpr int kMaxArrayDepth = 64;
// The fewest bytes an entry can take: they bound counts by the bytes left, so that a huge count
// in a small file fails before anything is allocated for it.
// Each decoded array element costs a GgufValue (~100 bytes), so a file of small elements would
// decode to ~100x its size. Real files hold about a million (vocab, scores, merges); this cap
// keeps a hostile file from exhausting memory.
constexpr uint64_t kMaxArrayItems = uint64_t{1} << 24;
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;  // key length, value type, a u8 value
constexpr uint64_t kMinTensorInfoBytes =
    8 + 4 + 8 + 4 + 8;  // name length, n_dims, 1 dim, type, offset

// Encoded size of a scalar of `type`, 0 for strings and arrays.
uint64_t scalar_size(GgufType type) {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool:
      return 1;
    case GgufType::kUint16:
    case GgufType::kInt16:
      return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32:
      return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64:
      return 8;
    case GgufType::kString:
    case GgufType::kArray:
      return 0;
  }
  return 0;
}

bool known_type(uint32_t id) { return id <= static_cast<uint32_t>(GgufType::kFloat64); }

// Bounds-checked little-endian cursor over the file. `context_` names what is being read
// (a key or a tensor) so that errors say where the file went wrong.
class Reader {
 public:
  Reader(const std::string& path, const uint8_t* data, size_t size)
      : path_(path), data_(data), size_(size) {}

  size_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  void set_context(std::string context) { context_ = std::move(context); }

  template <class... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) const {
    std::string msg = path_ + ": ";
    if (!context_.empty()) msg += context_ + ": ";
    msg += fmt::format(format, std::forward<Args>(args)...);
    throw FormatError(msg);
  }

  void need(uint64_t n, std::string_view what) const {
    if (n > remaining()) {
      fail("file truncated: {} needs {} bytes at offset {}, but the file ends at {}", what, n, pos_,
           size_);
    }
  }

  template <class T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string_view read_string(std::string_view what) {
    const uint64_t len = read<uint64_t>(what);
    if (len > remaining()) {
      fail("{} has length {}, past the end of the file ({} bytes left at offset {})", what, len,
           remaining(), pos_);
    }
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }

  GgufValue read_value(GgufType type, int depth);

 private:
  const std::string& path_;
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  uint64_t total_items_ = 0;
  std::string context_;
};

GgufValue Reader::read_value(GgufType type, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::kUint8:
      v.u = read<uint8_t>("uint8 value");
      break;
    case GgufType::kInt8:
      v.i = read<int8_t>("int8 value");
      break;
    case GgufType::kUint16:
      v.u = read<uint16_t>("uint16 value");
      break;
    case GgufType::kInt16:
      v.i = read<int16_t>("int16 value");
      break;
    case GgufType::kUint32:
      v.u = read<uint32_t>("uint32 value");
      break;
    case GgufType::kInt32:
      v.i = read<int32_t>("int32 value");
      break;
    case GgufType::kUint64:
      v.u = read<uint64_t>("uint64 value");
      break;
    case GgufType::kInt64:
      v.i = read<int64_t>("int64 value");
      break;
    case GgufType::kFloat32:
      v.f = read<float>("float32 value");
      break;
    case GgufType::kFloat64:
      v.f = read<double>("float64 value");
      break;
    case GgufType::kBool: {
      const uint8_t b = read<uint8_t>("bool value");
      if (b > 1) fail("bool value is {} at offset {}, not 0 or 1", b, pos_ - 1);
      v.u = b;
      break;
    }
    case GgufType::kString:
      v.str = read_string("string value");
      break;
    case GgufType::kArray: {
      if (depth >= kMaxArrayDepth) fail("arrays nested deeper than {} levels", kMaxArrayDepth);
      const uint32_t elem = read<uint32_t>("array element type");
      if (!known_type(elem)) fail("array has unknown element type {}", elem);
      v.elem_type = static_cast<GgufType>(elem);
      const uint64_t count = read<uint64_t>("array length");
      // Strings take at least their 8-byte length, arrays their type and length.
      uint64_t min_bytes = scalar_size(v.elem_type);
      if (v.elem_type == GgufType::kString) min_bytes = 8;
      if (v.elem_type == GgufType::kArray) min_bytes = 12;
      if (count > remaining() / min_bytes) {
        fail("array of {} {} elements cannot fit in the {} bytes left at offset {}", count,
             gguf_type_name(v.elem_type), remaining(), pos_);
      }
      total_items_ += count;
      if (total_items_ > kMaxArrayItems) {
        fail("metadata arrays hold more than {} elements in all", kMaxArrayItems);
      }
      v.items.reserve(static_cast<size_t>(count));
      for (uint64_t k = 0; k < count; ++k) v.items.push_back(read_value(v.elem_type, depth + 1));
      break;
    }
  }
  return v;
}

// Checked a * b; false on overflow.
bool mul_u64(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

}  // namespace

std::string_view gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::kUint8:
      return "uint8";
    case GgufType::kInt8:
      return "int8";
    case GgufType::kUint16:
      return "uint16";
    case GgufType::kInt16:
      return "int16";
    case GgufType::kUint32:
      return "uint32";
    case GgufType::kInt32:
      return "int32";
    case GgufType::kFloat32:
      return "float32";
    case GgufType::kBool:
      return "bool";
    case GgufType::kString:
      return "string";
    case GgufType::kArray:
      return "array";
    case GgufType::kUint64:
      return "uint64";
    case GgufType::kInt64:
      return "int64";
    case GgufType::kFloat64:
      return "float64";
  }
  return "unknown";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kUint16:
    case GgufType::kInt16:
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kUint64:
    case GgufType::kInt64:
      return true;
    default:
      return false;
  }
}

GgufFile GgufFile::open(const std::string& path, bool use_mmap) {
  GgufFile g;
  g.file_ = MappedFile::open(path, use_mmap);
  Reader r(path, g.file_.data(), g.file_.size());

  // Header.
  if (g.file_.size() < 4 || std::memcmp(g.file_.data(), kMagic, 4) != 0) {
    if (g.file_.size() < 4) r.fail("not a GGUF file: only {} bytes long", g.file_.size());
    const uint8_t* m = g.file_.data();
    r.fail("not a GGUF file: magic is {:02x} {:02x} {:02x} {:02x}, expected 'GGUF'", m[0], m[1],
           m[2], m[3]);
  }
  r.read<uint32_t>("magic");
  const uint32_t version = r.read<uint32_t>("version");
  if (version != 2 && version != 3) {
    const uint32_t swapped = __builtin_bswap32(version);
    if (swapped >= 1 && swapped <= 3) {
      throw UnsupportedError(fmt::format(
          "{}: big-endian GGUF is not supported (version field reads 0x{:08x})", path, version));
    }
    if (version == 1) {
      throw UnsupportedError(path +
                             ": GGUF version 1 is not supported (slm reads versions 2 and 3; "
                             "re-convert the model with a current tool)");
    }
    throw UnsupportedError(
        fmt::format("{}: unknown GGUF version {} (slm reads versions 2 and 3)", path, version));
  }
  g.version_ = version;
  const uint64_t n_tensors = r.read<uint64_t>("tensor count");
  const uint64_t n_kv = r.read<uint64_t>("metadata count");
  if (n_kv > r.remaining() / kMinKvBytes) {
    r.fail("metadata count {} cannot fit in the {} bytes after the header", n_kv, r.remaining());
  }
  if (n_tensors > r.remaining() / kMinTensorInfoBytes) {
    r.fail("tensor count {} cannot fit in the {} bytes after the header", n_tensors, r.remaining());
  }

  // Metadata.
  g.kvs_.reserve(static_cast<size_t>(n_kv));
  std::unordered_set<std::string_view> keys;
  for (uint64_t k = 0; k < n_kv; ++k) {
    r.set_context(fmt::format("metadata entry {}", k));
    const std::string_view key = r.read_string("key");
    r.set_context(fmt::format("key '{}'", key));
    if (!keys.insert(key).second) r.fail("duplicate key");
    const uint32_t type = r.read<uint32_t>("value type");
    if (!known_type(type)) r.fail("unknown value type {}", type);
    g.kvs_.push_back(GgufKv{std::string(key), r.read_value(static_cast<GgufType>(type), 0)});
  }
  r.set_context("");

  if (const GgufValue* a = g.find("general.alignment")) {
    if (a->type != GgufType::kUint32) {
      r.fail("general.alignment has type {}, expected uint32", gguf_type_name(a->type));
    }
    if (a->u == 0 || !std::has_single_bit(a->u)) {
      r.fail("general.alignment is {}, expected a non-zero power of two", a->u);
    }
    g.alignment_ = a->u;
  } else {
    g.alignment_ = kDefaultAlignment;
  }

  // Tensor infos.
  if (n_tensors > r.remaining() / kMinTensorInfoBytes) {
    r.fail("tensor count {} cannot fit in the {} bytes after the metadata", n_tensors,
           r.remaining());
  }
  g.tensors_.reserve(static_cast<size_t>(n_tensors));
  std::unordered_set<std::string_view> names;
  for (uint64_t t = 0; t < n_tensors; ++t) {
    r.set_context(fmt::format("tensor info {}", t));
    const std::string_view name = r.read_string("tensor name");
    r.set_context(fmt::format("tensor '{}'", name));
    if (!names.insert(name).second) r.fail("duplicate tensor name");
    GgufTensor info;
    info.name = std::string(name);
    const uint32_t n_dims = r.read<uint32_t>("n_dims");
    if (n_dims == 0 || n_dims > kMaxDims)
      r.fail("n_dims is {}, expected 1 to {}", n_dims, kMaxDims);
    info.dims.resize(n_dims);
    info.n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      info.dims[d] = r.read<uint64_t>("dimension");
      if (info.dims[d] == 0) r.fail("dimension {} is 0", d);
      if (!mul_u64(info.n_elements, info.dims[d], &info.n_elements)) {
        r.fail("element count overflows 64 bits (dimensions {})", fmt::join(info.dims, " x "));
      }
    }
    const uint32_t type_id = r.read<uint32_t>("type");
    const std::optional<DTypeTraits> tr = dtype_traits(type_id);
    if (!tr) {
      throw UnsupportedError(
          fmt::format("{}: tensor '{}': unknown ggml type id {}", path, name, type_id));
    }
    info.type = tr->type;
    if (info.dims[0] % tr->block_elems != 0) {
      r.fail("row length {} is not a multiple of the {} block size {}", info.dims[0], tr->name,
             tr->block_elems);
    }
    if (!mul_u64(info.n_elements / tr->block_elems, tr->block_bytes, &info.n_bytes)) {
      r.fail("byte size overflows 64 bits");
    }
    info.offset = r.read<uint64_t>("data offset");
    if (info.offset % g.alignment_ != 0) {
      r.fail("data offset {} is not a multiple of the alignment {}", info.offset, g.alignment_);
    }
    g.tensors_.push_back(std::move(info));
  }
  r.set_context("");

  // Data section: starts at the first aligned offset after the tensor infos. A file without
  // tensors may end before it (vocab-only files do).
  const uint64_t end_of_infos = r.pos();
  g.data_offset_ = (end_of_infos + g.alignment_ - 1) / g.alignment_ * g.alignment_;
  const uint64_t size = g.file_.size();
  if (n_tensors > 0 && g.data_offset_ > size) {
    r.fail("file truncated: tensor data section starts at {}, past the end of the file (size {})",
           g.data_offset_, size);
  }
  for (GgufTensor& t : g.tensors_) {
    const uint64_t room = size > g.data_offset_ ? size - g.data_offset_ : 0;
    if (t.offset > room || t.n_bytes > room - t.offset) {
      // Printed relative to the data section when the absolute offset would overflow.
      uint64_t begin = 0, end = 0;
      if (!__builtin_add_overflow(g.data_offset_, t.offset, &begin) &&
          !__builtin_add_overflow(begin, t.n_bytes, &end)) {
        r.fail("tensor '{}': data [{}, {}) lies outside the file (size {})", t.name, begin, end,
               size);
      }
      r.fail(
          "tensor '{}': data at offset {} (+{} bytes) from the data section at {} lies outside "
          "the file (size {})",
          t.name, t.offset, t.n_bytes, g.data_offset_, size);
    }
    t.data = g.file_.data() + g.data_offset_ + t.offset;
  }
  return g;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const GgufKv& kv : kvs_) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}

namespace {

[[noreturn]] void wrong_type(const std::string& path, std::string_view key, const GgufValue& v,
                             std::string_view expected) {
  std::string got(gguf_type_name(v.type));
  if (v.type == GgufType::kArray) got = fmt::format("array of {}", gguf_type_name(v.elem_type));
  throw FormatError(fmt::format("{}: key '{}' has type {}, expected {}", path, key, got, expected));
}

// An integer value as uint64; FormatError when negative.
uint64_t as_uint(const std::string& path, std::string_view key, const GgufValue& v) {
  switch (v.type) {
    case GgufType::kUint8:
    case GgufType::kUint16:
    case GgufType::kUint32:
    case GgufType::kUint64:
      return v.u;
    case GgufType::kInt8:
    case GgufType::kInt16:
    case GgufType::kInt32:
    case GgufType::kInt64:
      if (v.i < 0) {
        throw FormatError(
            fmt::format("{}: key '{}' is {}, expected a non-negative integer", path, key, v.i));
      }
      return static_cast<uint64_t>(v.i);
    default:
      wrong_type(path, key, v, "an unsigned integer");
  }
}

int64_t as_int(const std::string& path, std::string_view key, const GgufValue& v) {
  if (!v.is_integer()) wrong_type(path, key, v, "an integer");
  if (v.type == GgufType::kUint8 || v.type == GgufType::kUint16 || v.type == GgufType::kUint32 ||
      v.type == GgufType::kUint64) {
    if (v.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw FormatError(
          fmt::format("{}: key '{}' is {}, too large for a signed 64-bit integer", path, key, v.u));
    }
    return static_cast<int64_t>(v.u);
  }
  return v.i;
}

double as_float(const std::string& path, std::string_view key, const GgufValue& v) {
  if (v.is_float()) return v.f;
  if (!v.is_integer()) wrong_type(path, key, v, "a number");
  if (v.type == GgufType::kInt8 || v.type == GgufType::kInt16 || v.type == GgufType::kInt32 ||
      v.type == GgufType::kInt64) {
    return static_cast<double>(v.i);
  }
  return static_cast<double>(v.u);
}

}  // namespace

std::optional<uint64_t> GgufFile::get_uint(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return as_uint(path(), key, *v);
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return as_int(path(), key, *v);
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return as_float(path(), key, *v);
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::kBool) wrong_type(path(), key, *v, "bool");
  return v->u != 0;
}

std::optional<std::string_view> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::kString) wrong_type(path(), key, *v, "string");
  return v->str;
}

std::optional<std::vector<std::string_view>> GgufFile::get_string_array(
    std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::kArray || v->elem_type != GgufType::kString) {
    wrong_type(path(), key, *v, "array of string");
  }
  std::vector<std::string_view> out;
  out.reserve(v->items.size());
  for (const GgufValue& item : v->items) out.push_back(item.str);
  return out;
}

std::optional<std::vector<float>> GgufFile::get_float_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::kArray) wrong_type(path(), key, *v, "array of numbers");
  std::vector<float> out;
  out.reserve(v->items.size());
  for (const GgufValue& item : v->items) {
    if (!item.is_float() && !item.is_integer()) wrong_type(path(), key, *v, "array of numbers");
    out.push_back(static_cast<float>(as_float(path(), key, item)));
  }
  return out;
}

std::optional<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::kArray) wrong_type(path(), key, *v, "array of integers");
  std::vector<int64_t> out;
  out.reserve(v->items.size());
  for (const GgufValue& item : v->items) {
    if (!item.is_integer()) wrong_type(path(), key, *v, "array of integers");
    out.push_back(as_int(path(), key, item));
  }
  return out;
}

uint64_t GgufFile::require_uint(std::string_view key) const {
  const std::optional<uint64_t> v = get_uint(key);
  if (!v) throw FormatError(fmt::format("{}: required key '{}' is missing", path(), key));
  return *v;
}

std::string_view GgufFile::require_string(std::string_view key) const {
  const std::optional<std::string_view> v = get_string(key);
  if (!v) throw FormatError(fmt::format("{}: required key '{}' is missing", path(), key));
  return *v;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  for (const GgufTensor& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace slm
