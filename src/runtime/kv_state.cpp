#include "src/runtime/kv_state.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "slm/error.h"

namespace slm {
namespace {

constexpr char kMagic[8] = {'S', 'L', 'M', 'K', 'V', 'S', 'T', '2'};
constexpr char kMagicV1[8] = {'S', 'L', 'M', 'K', 'V', 'S', 'T', '1'};

template <typename T>
void put(std::ofstream& out, T v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof(v));
}

class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw IoError(fmt::format("{}: cannot open", path));
  }
  void bytes(void* dst, size_t n) {
    if (!in_.read(static_cast<char*>(dst), std::streamsize(n))) {
      throw FormatError(fmt::format("{}: truncated session state file", path_));
    }
  }
  template <typename T>
  T get() {
    T v;
    bytes(&v, sizeof(v));
    return v;
  }
  bool at_end() { return in_.peek() == std::ifstream::traits_type::eof(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ifstream in_;
};

// The file's codes (stable: never renumber).
uint32_t element_code(KvElement e) {
  switch (e) {
    case KvElement::kF16: return 1;
    case KvElement::kQ8_0: return 2;
    case KvElement::kF32: break;
  }
  return 0;
}

std::string code_name(uint32_t code) {
  for (const KvElement e : {KvElement::kF32, KvElement::kF16, KvElement::kQ8_0}) {
    if (element_code(e) == code) return kv_element_name(e);
  }
  return fmt::format("unknown (code {})", code);
}

}  // namespace

void save_kv_state(const std::string& path, const KvStateShape& shape, const KvCache& cache,
                   const std::vector<int32_t>& tokens) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw IoError(fmt::format("{}: cannot create", path));
  out.write(kMagic, sizeof(kMagic));
  put(out, shape.fingerprint);
  put(out, element_code(cache.element()));
  put(out, uint32_t(shape.n_layer));
  put(out, uint64_t(shape.row_bytes));
  put(out, uint32_t(tokens.size()));
  out.write(reinterpret_cast<const char*>(tokens.data()),
            std::streamsize(tokens.size() * sizeof(int32_t)));
  std::vector<uint32_t> first(size_t(shape.n_layer));
  for (int32_t layer = 0; layer < shape.n_layer; ++layer) {
    first[size_t(layer)] =
        uint32_t(std::min<size_t>(size_t(cache.first_cached(layer)), tokens.size()));
    put(out, first[size_t(layer)]);
  }
  for (size_t pos = 0; pos < tokens.size(); ++pos) {
    for (int32_t layer = 0; layer < shape.n_layer; ++layer) {
      if (pos < first[size_t(layer)]) continue;
      out.write(reinterpret_cast<const char*>(cache.k_rows(layer, 0).row(pos)),
                std::streamsize(shape.row_bytes));
      out.write(reinterpret_cast<const char*>(cache.v_rows(layer, 0).row(pos)),
                std::streamsize(shape.row_bytes));
    }
  }
  if (!out.flush()) throw IoError(fmt::format("{}: write failed", path));
}

std::vector<int32_t> load_kv_state(const std::string& path, const KvStateShape& shape,
                                   KvCache& cache) {
  Reader r(path);
  char magic[sizeof(kMagic)];
  r.bytes(magic, sizeof(magic));
  const bool v1 = std::memcmp(magic, kMagicV1, sizeof(kMagic)) == 0;
  if (!v1 && std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) {
    throw FormatError(fmt::format("{}: not an slm session state file", path));
  }
  const auto fingerprint = r.get<uint64_t>();
  const auto element = r.get<uint32_t>();
  const auto n_layer = r.get<uint32_t>();
  const auto row_bytes = r.get<uint64_t>();
  if (fingerprint != shape.fingerprint || n_layer != uint32_t(shape.n_layer)) {
    throw FormatError(fmt::format("{}: the state was saved from another model", path));
  }
  if (element != element_code(cache.element())) {
    throw FormatError(fmt::format("{}: the state holds a {} KV cache, the session uses {}", path,
                                  code_name(element), kv_element_name(cache.element())));
  }
  if (row_bytes != shape.row_bytes) {
    throw FormatError(fmt::format("{}: the state was saved from another model", path));
  }
  const auto n = r.get<uint32_t>();
  if (n > uint32_t(cache.capacity())) {
    throw InvalidArgumentError(fmt::format("{}: {} tokens do not fit in the context of {}", path,
                                           n, cache.capacity()));
  }
  std::vector<int32_t> tokens(n);
  r.bytes(tokens.data(), n * sizeof(int32_t));
  std::vector<uint32_t> first(size_t(shape.n_layer), 0);
  for (int32_t layer = 0; layer < shape.n_layer && !v1; ++layer) {
    first[size_t(layer)] = r.get<uint32_t>();
    // The next query, at position n, reads (n − window, n) of a sliding-window layer, all of
    // a full one.
    const int32_t window = shape.windows.empty() ? 0 : shape.windows[size_t(layer)];
    const int64_t needed = window > 0 ? std::max<int64_t>(0, int64_t(n) + 1 - window) : 0;
    if (first[size_t(layer)] > n || int64_t(first[size_t(layer)]) > needed) {
      throw FormatError(fmt::format(
          "{}: layer {} holds positions from {} of {}, but the next token needs them from {}", path,
          layer, first[size_t(layer)], n, needed));
    }
  }
  for (int32_t pos = 0; pos < int32_t(n); ++pos) {
    cache.prepare(pos, 1);
    for (int32_t layer = 0; layer < shape.n_layer; ++layer) {
      if (uint32_t(pos) < first[size_t(layer)]) continue;
      r.bytes(cache.k_row(layer, pos), row_bytes);
      r.bytes(cache.v_row(layer, pos), row_bytes);
    }
  }
  if (!r.at_end()) throw FormatError(fmt::format("{}: trailing bytes after the state", path));
  return tokens;
}

}  // namespace slm
