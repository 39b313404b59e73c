// inspect_file: a GGUF file's or a Hugging Face directory's metadata and tensor table as
// printable text. It reads only headers (GgufFile / SafetensorsFile validate them) and
// config.json as JSON, so it works for any architecture.
#include "slm/inspect.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "kernels/dtype.h"
#include "slm/error.h"
#include "src/format/gguf.h"
#include "src/format/safetensors.h"
#include "src/model/hf_chat.h"

namespace slm {
namespace {

constexpr size_t kMaxArrayItems = 8;     // arrays longer than this are abbreviated
constexpr size_t kMaxStringBytes = 256;  // e.g. chat templates: show the start only

std::string type_name(GgufType type) {
  switch (type) {
    case GgufType::kUint8: return "u8";
    case GgufType::kInt8: return "i8";
    case GgufType::kUint16: return "u16";
    case GgufType::kInt16: return "i16";
    case GgufType::kUint32: return "u32";
    case GgufType::kInt32: return "i32";
    case GgufType::kFloat32: return "f32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kUint64: return "u64";
    case GgufType::kInt64: return "i64";
    case GgufType::kFloat64: return "f64";
  }
  return fmt::format("type{}", static_cast<uint32_t>(type));
}

std::string value_type_name(const GgufValue& v) {
  if (v.type != GgufType::kArray) return type_name(v.type);
  // Nested arrays name their inner element type from the first item (GGUF arrays are uniform).
  if (v.elem_type == GgufType::kArray && !v.items.empty()) {
    return fmt::format("array[{}]", value_type_name(v.items.front()));
  }
  return fmt::format("array[{}]", type_name(v.elem_type));
}

// Length of the valid UTF-8 sequence at s[i], or 0 when the bytes there are not one.
size_t utf8_length(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t n = 0;
  uint32_t cp = 0;
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) {
    n = 2;
    cp = b & 0x1F;
  } else if ((b & 0xF0) == 0xE0) {
    n = 3;
    cp = b & 0x0F;
  } else if ((b & 0xF8) == 0xF0) {
    n = 4;
    cp = b & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (c & 0x3F);
  }
  // Reject overlong forms, surrogates and values past U+10FFFF.
  constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
  return n;
}

// Printable on one line: control characters and invalid UTF-8 become escapes; long strings are
// cut (at a character boundary) with a note of the full length.
std::string printable(std::string_view s) {
  std::string out;
  size_t i = 0;
  for (; i < s.size() && i < kMaxStringBytes;) {
    const char c = s[i];
    const size_t n = utf8_length(s, i);
    if (n == 0) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
      i += 1;
    } else if (n > 1) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\\': out += "\\\\"; break;
        default:
          if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
          } else {
            out += c;
          }
      }
      i += 1;
    }
  }
  if (i < s.size()) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

std::string value_text(const GgufValue& v, bool quote_strings) {
  switch (v.type) {
    case GgufType::kUint8:
    case GgufType::kUint16:
    case GgufType::kUint32:
    case GgufType::kUint64: return fmt::format("{}", v.u);
    case GgufType::kInt8:
    case GgufType::kInt16:
    case GgufType::kInt32:
    case GgufType::kInt64: return fmt::format("{}", v.i);
    // Shortest text that reads back to the same value at the stored precision.
    case GgufType::kFloat32: return fmt::format("{}", static_cast<float>(v.f));
    case GgufType::kFloat64: return fmt::format("{}", v.f);
    case GgufType::kBool: return v.u ? "true" : "false";
    case GgufType::kString:
      return quote_strings ? fmt::format("\"{}\"", printable(v.str)) : printable(v.str);
    case GgufType::kArray: {
      std::string out = "[";
      const size_t shown = std::min(v.items.size(), kMaxArrayItems);
      for (size_t k = 0; k < shown; ++k) {
        if (k) out += ", ";
        out += value_text(v.items[k], /*quote_strings=*/true);
      }
      if (shown < v.items.size()) out += fmt::format(", ... ({} items)", v.items.size());
      return out + "]";
    }
  }
  return "?";
}

std::string_view json_type_name(simdjson::dom::element_type type) {
  using T = simdjson::dom::element_type;
  switch (type) {
    case T::ARRAY: return "array";
    case T::OBJECT: return "object";
    case T::INT64:
    case T::UINT64: return "int";
    case T::DOUBLE: return "float";
    case T::STRING: return "string";
    case T::BOOL: return "bool";
    case T::NULL_VALUE: return "null";
  }
  return "?";
}

// config.json's top-level keys (values as compact JSON), each shard's __metadata__ as
// "safetensors.KEY", and every tensor with its dims contiguous-first as for GGUF.
FileInfo inspect_hf_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  FileInfo info;
  info.path = dir;
  info.format = "safetensors (Hugging Face directory)";
  const std::string config_path = (fs::path(dir) / "config.json").string();
  simdjson::padded_string text;
  if (simdjson::padded_string::load(config_path).get(text) != simdjson::SUCCESS) {
    throw IoError(fmt::format("{}: cannot read", config_path));
  }
  simdjson::dom::parser parser;
  simdjson::dom::object config;
  if (const auto err = parser.parse(text).get_object().get(config); err != simdjson::SUCCESS) {
    throw FormatError(
        fmt::format("{}: not a JSON object: {}", config_path, simdjson::error_message(err)));
  }
  for (const auto field : config) {
    std::string_view s;
    const std::string value = field.value.get_string().get(s) == simdjson::SUCCESS
                                  ? printable(s)
                                  : printable(simdjson::minify(field.value));
    info.metadata.push_back(
        {std::string(field.key), std::string(json_type_name(field.value.type())), value});
  }
  // What decides how generation stops and how chats are written, under GGUF-like names.
  const HfGenerationConfig generation =
      read_generation_config((fs::path(dir) / "generation_config.json").string());
  if (!generation.eos_ids.empty()) {
    std::string ids;
    for (const int32_t id : generation.eos_ids) ids += fmt::format("{}{}", ids.empty() ? "" : ", ", id);
    info.metadata.push_back({"generation_config.eos_token_id", "array[int]", "[" + ids + "]"});
  }
  if (generation.bos_id >= 0) {
    info.metadata.push_back(
        {"generation_config.bos_token_id", "int", fmt::format("{}", generation.bos_id)});
  }
  const std::string chat_template =
      read_chat_template((fs::path(dir) / "tokenizer_config.json").string());
  if (!chat_template.empty()) {
    info.metadata.push_back({"tokenizer.chat_template", "string", printable(chat_template)});
  }
  const SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint::open(dir);
  for (const SafetensorsFile& file : checkpoint.files()) {
    info.file_bytes += file.file_size();
    for (const auto& [key, value] : file.metadata()) {
      info.metadata.push_back({"safetensors." + key, "string", printable(value)});
    }
    for (const SafetensorsTensor& t : file.tensors()) {
      std::string type(safetensors_dtype_name(t.type));
      std::transform(type.begin(), type.end(), type.begin(),
                     [](unsigned char c) { return char(std::tolower(c)); });
      info.tensors.push_back({t.name, type, std::vector<uint64_t>(t.shape.rbegin(), t.shape.rend()),
                              t.offset, t.n_bytes});
    }
  }
  return info;
}

}  // namespace

FileInfo inspect_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return inspect_hf_dir(path);
  const GgufFile file = GgufFile::open(path);
  FileInfo info;
  info.path = path;
  info.format = fmt::format("gguf v{}", file.version());
  info.file_bytes = file.file_size();
  info.metadata.reserve(file.metadata().size());
  for (const GgufKv& kv : file.metadata()) {
    info.metadata.push_back({kv.key, value_type_name(kv.value), value_text(kv.value, false)});
  }
  info.tensors.reserve(file.tensors().size());
  for (const GgufTensor& t : file.tensors()) {
    info.tensors.push_back({t.name, std::string(dtype_name(t.type)), t.dims,
                            file.data_offset() + t.offset, t.n_bytes});
  }
  return info;
}

}  // namespace slm
