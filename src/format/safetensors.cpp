#include "src/format/safetensors.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <optional>

#include "slm/error.h"

namespace slm {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

[[noreturn]] void malformed(const std::string& path, std::string_view what) {
  throw FormatError(fmt::format("{}: {}", path, what));
}

struct DTypeEntry {
  std::string_view name;
  SafetensorsDType type;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {"F32", SafetensorsDType::kF32, 4},   {"F16", SafetensorsDType::kF16, 2},
    {"BF16", SafetensorsDType::kBF16, 2}, {"I8", SafetensorsDType::kI8, 1},
    {"U8", SafetensorsDType::kU8, 1},
};

// a * b, or nullopt when it does not fit in 64 bits.
std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return std::nullopt;
  return a * b;
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// One header entry → a tensor whose bytes lie in the data section [data_begin, file end).
SafetensorsTensor parse_tensor(const std::string& path, std::string_view name, element value,
                               const uint8_t* base, uint64_t data_begin, uint64_t file_size) {
  const auto bad = [&](std::string_view what) {
    malformed(path, fmt::format("tensor '{}': {}", name, what));
  };
  object o;
  if (value.get_object().get(o) != simdjson::SUCCESS) bad("header entry is not an object");
  SafetensorsTensor t;
  t.name = std::string(name);

  std::string_view dtype;
  if (o["dtype"].get_string().get(dtype) != simdjson::SUCCESS) bad("no \"dtype\" string");
  const auto* entry = std::find_if(std::begin(kDTypes), std::end(kDTypes),
                                   [&](const DTypeEntry& e) { return e.name == dtype; });
  if (entry == std::end(kDTypes)) {
    throw UnsupportedError(fmt::format(
        "{}: tensor '{}' has dtype {}, which slm does not read (F32, F16, BF16, I8, U8)", path,
        name, dtype));
  }
  t.type = entry->type;

  array shape;
  if (o["shape"].get_array().get(shape) != simdjson::SUCCESS) bad("no \"shape\" array");
  t.n_elements = 1;
  for (element dim : shape) {
    uint64_t d = 0;
    if (dim.get_uint64().get(d) != simdjson::SUCCESS) bad("shape holds a non-integer or negative");
    t.shape.push_back(d);
    const std::optional<uint64_t> n = checked_mul(t.n_elements, d);
    if (!n) bad("shape overflows");
    t.n_elements = *n;
  }
  const std::optional<uint64_t> bytes = checked_mul(t.n_elements, entry->size);
  if (!bytes) bad("shape overflows");

  array offsets;
  uint64_t begin = 0, end = 0;
  if (o["data_offsets"].get_array().get(offsets) != simdjson::SUCCESS || offsets.size() != 2 ||
      offsets.at(0).get_uint64().get(begin) != simdjson::SUCCESS ||
      offsets.at(1).get_uint64().get(end) != simdjson::SUCCESS) {
    bad("\"data_offsets\" is not a pair of non-negative integers");
  }
  if (begin > end) bad(fmt::format("data_offsets [{}, {}] begin after end", begin, end));
  if (end > file_size - data_begin) {
    bad(fmt::format("data_offsets [{}, {}] run past the end of the file (data section {} bytes)",
                    begin, end, file_size - data_begin));
  }
  if (end - begin != *bytes) {
    bad(fmt::format("data_offsets [{}, {}] hold {} bytes, but shape and dtype {} need {}", begin,
                    end, end - begin, dtype, *bytes));
  }
  t.n_bytes = *bytes;
  t.offset = data_begin + begin;
  t.data = base + t.offset;
  return t;
}

// Tensors sorted by offset must not share bytes (empty tensors share nothing).
void check_no_overlap(const std::string& path, const std::vector<SafetensorsTensor>& tensors) {
  std::vector<const SafetensorsTensor*> sorted;
  for (const SafetensorsTensor& t : tensors) {
    if (t.n_bytes > 0) sorted.push_back(&t);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    const SafetensorsTensor& prev = *sorted[i - 1];
    if (sorted[i]->offset < prev.offset + prev.n_bytes) {
      malformed(path, fmt::format("tensors '{}' and '{}' overlap", prev.name, sorted[i]->name));
    }
  }
}

}  // namespace

std::string_view safetensors_dtype_name(SafetensorsDType type) {
  for (const DTypeEntry& e : kDTypes) {
    if (e.type == type) return e.name;
  }
  return "?";
}

size_t safetensors_dtype_size(SafetensorsDType type) {
  for (const DTypeEntry& e : kDTypes) {
    if (e.type == type) return e.size;
  }
  return 0;
}

SafetensorsFile SafetensorsFile::open(const std::string& path, bool use_mmap) {
  SafetensorsFile f;
  f.file_ = MappedFile::open(path, use_mmap);
  const uint64_t size = f.file_.size();
  if (size < 8) malformed(path, fmt::format("{} bytes is too short for a safetensors file", size));
  const uint64_t header_len = read_u64_le(f.file_.data());
  if (header_len > size - 8) {
    malformed(path, fmt::format("header length {} runs past the end of the file ({} bytes)",
                                header_len, size));
  }
  if (header_len > kMaxHeaderBytes) {
    malformed(path, fmt::format("header length {} exceeds the limit of {} bytes", header_len,
                                kMaxHeaderBytes));
  }
  f.data_offset_ = 8 + header_len;

  const simdjson::padded_string header(reinterpret_cast<const char*>(f.file_.data() + 8),
                                       size_t(header_len));
  simdjson::dom::parser parser;
  element root;
  if (const auto err = parser.parse(header).get(root); err != simdjson::SUCCESS) {
    malformed(path, fmt::format("the JSON header is invalid: {}", simdjson::error_message(err)));
  }
  object entries;
  if (root.get_object().get(entries) != simdjson::SUCCESS) {
    malformed(path, "the JSON header is not an object");
  }
  for (const auto field : entries) {
    if (field.key == "__metadata__") {
      object meta;
      if (field.value.get_object().get(meta) != simdjson::SUCCESS) {
        malformed(path, "\"__metadata__\" is not an object");
      }
      for (const auto kv : meta) {
        std::string_view text;
        if (kv.value.get_string().get(text) != simdjson::SUCCESS) {
          malformed(path, fmt::format("\"__metadata__\" value of '{}' is not a string", kv.key));
        }
        f.metadata_[std::string(kv.key)] = std::string(text);
      }
      continue;
    }
    if (!f.index_.emplace(std::string(field.key), f.tensors_.size()).second) {
      malformed(path, fmt::format("tensor '{}' appears twice in the header", field.key));
    }
    f.tensors_.push_back(
        parse_tensor(path, field.key, field.value, f.file_.data(), f.data_offset_, size));
  }
  check_no_overlap(path, f.tensors_);
  return f;
}

const SafetensorsTensor* SafetensorsFile::find_tensor(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::string& dir, bool use_mmap) {
  namespace fs = std::filesystem;
  SafetensorsCheckpoint c;
  c.dir_ = dir;
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  std::vector<std::string> shard_names;                    // in first-use order, each once
  std::map<std::string, std::string, std::less<>> listed;  // tensor → shard, from the index
  std::error_code ec;
  if (fs::exists(index_path, ec)) {
    const std::string ip = index_path.string();
    simdjson::padded_string text;
    if (simdjson::padded_string::load(ip).get(text) != simdjson::SUCCESS) {
      throw IoError(fmt::format("{}: cannot read", ip));
    }
    simdjson::dom::parser parser;
    element root;
    if (const auto err = parser.parse(text).get(root); err != simdjson::SUCCESS) {
      malformed(ip, fmt::format("invalid JSON: {}", simdjson::error_message(err)));
    }
    object weight_map;
    if (root["weight_map"].get_object().get(weight_map) != simdjson::SUCCESS) {
      malformed(ip, "no \"weight_map\" object");
    }
    for (const auto kv : weight_map) {
      std::string_view shard;
      if (kv.value.get_string().get(shard) != simdjson::SUCCESS) {
        malformed(ip, fmt::format("weight_map entry '{}' is not a file name", kv.key));
      }
      // Shards live beside the index: no paths out of the directory.
      if (shard.empty() || shard.find('/') != std::string_view::npos || shard == "..") {
        malformed(ip, fmt::format("weight_map entry '{}' names '{}', not a file beside the index",
                                  kv.key, shard));
      }
      if (std::find(shard_names.begin(), shard_names.end(), shard) == shard_names.end()) {
        shard_names.emplace_back(shard);
      }
      listed.emplace(std::string(kv.key), std::string(shard));
    }
  } else {
    shard_names.push_back("model.safetensors");
  }

  for (const std::string& name : shard_names) {
    const fs::path shard_path = fs::path(dir) / name;
    if (!fs::exists(shard_path, ec)) {
      throw FormatError(
          fmt::format("{}: missing safetensors file '{}'{}", dir, name,
                      listed.empty() ? "" : " (named in model.safetensors.index.json)"));
    }
    c.files_.push_back(SafetensorsFile::open(shard_path.string(), use_mmap));
    const size_t fi = c.files_.size() - 1;
    const std::vector<SafetensorsTensor>& tensors = c.files_[fi].tensors();
    for (size_t ti = 0; ti < tensors.size(); ++ti) {
      const auto [it, inserted] = c.index_.emplace(tensors[ti].name, std::pair{fi, ti});
      if (!inserted) {
        malformed(shard_path.string(), fmt::format("tensor '{}' is also in {}", tensors[ti].name,
                                                   c.files_[it->second.first].path()));
      }
    }
  }
  for (const auto& [tensor, shard] : listed) {
    const auto it = c.index_.find(tensor);
    if (it == c.index_.end() || fs::path(c.files_[it->second.first].path()).filename() != shard) {
      malformed(
          (fs::path(dir) / shard).string(),
          fmt::format("tensor '{}' listed in model.safetensors.index.json is not in it", tensor));
    }
  }
  return c;
}

const SafetensorsTensor* SafetensorsCheckpoint::find_tensor(std::string_view name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) return nullptr;
  return &files_[it->second.first].tensors()[it->second.second];
}

std::string SafetensorsCheckpoint::file_of(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? std::string() : files_[it->second.first].path();
}

}  // namespace slm
