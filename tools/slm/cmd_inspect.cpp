// `slm inspect`: what a model file holds (format, metadata, tensors) without building the model,
// so it works for any architecture, including ones slm cannot run.
#include <fmt/format.h>

#include <map>

#include "args.h"
#include "common.h"

namespace slm::cli {
namespace {

std::string human_bytes(uint64_t bytes) {
  constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", value, kUnits[unit]);
}

std::string dims_text(const std::vector<uint64_t>& dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", dims[i]);
  return out + "]";
}

// "f32 x16, q8_0 x32" in type-name order, plus the total bytes.
std::string type_summary(const FileInfo& info, uint64_t* total_bytes) {
  std::map<std::string, size_t> counts;
  *total_bytes = 0;
  for (const FileInfo::Tensor& t : info.tensors) {
    ++counts[t.type];
    *total_bytes += t.bytes;
  }
  std::string out;
  for (const auto& [type, n] : counts) out += fmt::format("{}{} x{}", out.empty() ? "" : ", ", type, n);
  return out;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;  // UTF-8 passes through; inspect_file escapes invalid bytes already
        }
    }
  }
  return out + "\"";
}

void print_text(const FileInfo& info, bool list_tensors) {
  fmt::print("file:     {}\n", info.path);
  fmt::print("format:   {}\n", info.format);
  fmt::print("size:     {} bytes ({})\n", info.file_bytes, human_bytes(info.file_bytes));
  fmt::print("metadata: {} keys\n", info.metadata.size());
  size_t key_width = 0, type_width = 0;
  for (const FileInfo::Entry& e : info.metadata) {
    key_width = std::max(key_width, e.key.size());
    type_width = std::max(type_width, e.type.size());
  }
  for (const FileInfo::Entry& e : info.metadata) {
    fmt::print("  {:<{}}  {:<{}}  {}\n", e.key, key_width, e.type, type_width, e.value);
  }
  uint64_t total = 0;
  const std::string summary = type_summary(info, &total);
  if (info.tensors.empty()) {
    fmt::print("tensors:  0\n");  // e.g. a vocabulary-only file
  } else {
    fmt::print("tensors:  {} ({}), {} bytes ({})\n", info.tensors.size(), summary, total,
               human_bytes(total));
  }
  if (!list_tensors) return;
  size_t name_width = 0;
  for (const FileInfo::Tensor& t : info.tensors) name_width = std::max(name_width, t.name.size());
  for (const FileInfo::Tensor& t : info.tensors) {
    fmt::print("  {:<{}}  {:<6}  {:<20}  {:>12} bytes  @ {}\n", t.name, name_width, t.type,
               dims_text(t.dims), t.bytes, t.offset);
  }
}

void print_json(const FileInfo& info, bool list_tensors) {
  uint64_t total = 0;
  type_summary(info, &total);
  std::string out = "{";
  out += fmt::format("\"path\":{},\"format\":{},\"file_bytes\":{},\"metadata\":[",
                     json_string(info.path), json_string(info.format), info.file_bytes);
  for (size_t i = 0; i < info.metadata.size(); ++i) {
    const FileInfo::Entry& e = info.metadata[i];
    out += fmt::format("{}{{\"key\":{},\"type\":{},\"value\":{}}}", i ? "," : "",
                       json_string(e.key), json_string(e.type), json_string(e.value));
  }
  out += fmt::format("],\"tensor_count\":{},\"tensor_bytes\":{}", info.tensors.size(), total);
  if (list_tensors) {
    out += ",\"tensors\":[";
    for (size_t i = 0; i < info.tensors.size(); ++i) {
      const FileInfo::Tensor& t = info.tensors[i];
      out += fmt::format("{}{{\"name\":{},\"type\":{},\"dims\":{},\"offset\":{},\"bytes\":{}}}",
                         i ? "," : "", json_string(t.name), json_string(t.type), dims_text(t.dims),
                         t.offset, t.bytes);
    }
    out += "]";
  }
  fmt::print("{}}}\n", out);
}

}  // namespace

int cmd_inspect(std::span<char* const> args) {
  std::string model_flag, model_positional;
  bool tensors = false, json = false;
  ArgParser p("slm inspect", "slm inspect [-m] MODEL [--tensors] [--json]",
              "Prints a model file's format, size, metadata (long arrays abbreviated) and a\n"
              "summary of its tensors. Works for any architecture: nothing is loaded.");
  p.add_positional("MODEL", "model file (.gguf) or Hugging Face model directory", &model_positional);
  p.add_string({"-m", "--model"}, "MODEL", "model file (same as the positional argument)",
               &model_flag);
  p.add_flag({"--tensors"}, "list every tensor: name, type, dims, bytes, file offset", &tensors);
  p.add_flag({"--json"}, "print one JSON object instead of text", &json);
  if (!p.parse(args)) return 0;

  if (!model_flag.empty() && !model_positional.empty()) {
    throw p.error("give the model once: either -m MODEL or MODEL");
  }
  const std::string model = model_flag.empty() ? model_positional : model_flag;
  if (model.empty()) throw p.error("missing MODEL");

  const FileInfo info = inspect_file(resolve_model_path(model));
  if (json) {
    print_json(info, tensors);
  } else {
    print_text(info, tensors);
  }
  return 0;
}

}  // namespace slm::cli
