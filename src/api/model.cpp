#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>

#include "kernels/dispatch.h"
#include "slm/error.h"
#include "src/api/model_impl.h"
#include "src/model/hf_chat.h"
#include "src/model/hf_config.h"
#include "src/model/hf_weights.h"
#include "src/model/quantize.h"
#include "src/tokenizer/gguf_tokenizer.h"

namespace slm {
namespace {

namespace fs = std::filesystem;

// Counts parameters, bytes and tensors per type name.
class TensorTally {
 public:
  void add(std::string_view type, uint64_t n_elements, uint64_t n_bytes) {
    parameters_ += n_elements;
    bytes_ += n_bytes;
    ++types_[std::string(type)];
  }
  // One tensor of `from` converted to `to` (load-time quantization).
  void convert(std::string_view from, uint64_t from_bytes, std::string_view to, uint64_t to_bytes) {
    bytes_ = bytes_ - from_bytes + to_bytes;
    if (--types_[std::string(from)] == 0) types_.erase(std::string(from));
    ++types_[std::string(to)];
  }
  uint64_t bytes() const { return bytes_; }
  void fill(ModelInfo& info) const {
    info.parameter_count = parameters_;
    info.weight_bytes = bytes_;
    for (const auto& [name, count] : types_) {
      info.weight_types +=
          fmt::format("{}{} x{}", info.weight_types.empty() ? "" : ", ", name, count);
    }
  }

 private:
  uint64_t parameters_ = 0, bytes_ = 0;
  std::map<std::string, int> types_;
};

// "BF16" -> "bf16": the same names as GGUF's types in ModelInfo::weight_types.
std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

ModelInfo describe(const ModelConfig& c, const TensorTally& tally) {
  ModelInfo info;
  info.architecture = c.architecture;
  info.name = c.name;
  info.vocab_size = c.n_vocab;
  info.context_length = c.n_ctx_train;
  info.embedding_length = c.n_embd;
  info.block_count = c.n_layer;
  info.head_count = c.n_head;
  info.head_count_kv = c.n_head_kv;
  info.head_dim = c.head_dim;
  info.feed_forward_length = c.n_ff;
  tally.fill(info);
  return info;
}

TensorTally load_gguf(const std::string& path, const LoadOptions& options, Model::Impl& m) {
  const GgufFile& file = m.gguf.emplace(GgufFile::open(path, options.use_mmap));
  m.config = read_config(file);
  m.weights = load_weights(GgufTensorSource(file), m.config);
  // llama.cpp's numbering: 1 mean, 3 last (0 none and 2 cls leave embed()'s mean).
  if (file.get_uint(m.config.architecture + ".pooling_type").value_or(0) == 3) {
    m.pooling = Pooling::kLast;
  }
  // A file without tokenizer keys (e.g. `slm convert` of a directory without tokenizer.json)
  // still loads, like such a directory: token ids work, text says there is no tokenizer.
  if (!m.tokenizer && file.find("tokenizer.ggml.model")) m.tokenizer = load_tokenizer(file);
  m.chat_template = std::string(file.get_string("tokenizer.chat_template").value_or(""));
  TensorTally tally;
  for (const GgufTensor& t : file.tensors()) tally.add(dtype_name(t.type), t.n_elements, t.n_bytes);
  return tally;
}

// A Hugging Face directory: config.json, model.safetensors (or an index and shards), and
// tokenizer.json when it has one.
TensorTally load_hf_dir(const std::string& dir, const LoadOptions& options, Model::Impl& m) {
  const HfConfig hf = read_hf_config((fs::path(dir) / "config.json").string());
  const SafetensorsCheckpoint& checkpoint =
      m.safetensors.emplace(SafetensorsCheckpoint::open(dir, options.use_mmap));
  m.config = hf.model;
  m.weights = load_weights(HfTensorSource(checkpoint, hf), m.config);
  m.eos_ids = hf.eos_ids;
  // generation_config.json says how transformers' generate() stops: its eos ids join config.json's.
  const fs::path d(dir);
  const HfGenerationConfig generation = read_generation_config((d / "generation_config.json").string());
  for (const TokenId id : generation.eos_ids) {
    if (std::find(m.eos_ids.begin(), m.eos_ids.end(), id) == m.eos_ids.end()) m.eos_ids.push_back(id);
  }
  m.bos_id = generation.bos_id >= 0 ? generation.bos_id
                                    : read_generation_config((d / "config.json").string()).bos_id;
  m.chat_template = read_chat_template((d / "tokenizer_config.json").string());
  std::error_code ec;
  if (!m.tokenizer && fs::exists(fs::path(dir) / "tokenizer.json", ec)) {
    m.tokenizer = Tokenizer::from_file(dir);
  }
  TensorTally tally;
  for (const SafetensorsFile& file : checkpoint.files()) {
    for (const SafetensorsTensor& t : file.tensors()) {
      tally.add(lowercase(safetensors_dtype_name(t.type)), t.n_elements, t.n_bytes);
    }
  }
  return tally;
}

// LoadOptions::quantize as a target; null when empty.
const quant::Target* load_quantize_target(const LoadOptions& options) {
  if (options.quantize.empty()) return nullptr;
  const quant::Target* target = quant::find_target(options.quantize);
  if (target == nullptr ||
      !(target->name == "q8_0" || target->name == "q4_0" || target->name == "q4_k")) {
    throw InvalidArgumentError(
        fmt::format("quantize type '{}' is not one slm converts to at load (q8_0, q4_0, q4_k)",
                    options.quantize));
  }
  return target;
}

// LoadOptions::quantize: the matrices converted once, the tally following them.
void quantize_at_load(const LoadOptions& options, const quant::Target* target, Model::Impl& m,
                      TensorTally& tally) {
  uint64_t before = 0, after = 0;
  quant::quantize_weights(m.weights, *target,
                          [&](const Matrix& old, DType to, uint64_t old_bytes, uint64_t new_bytes,
                              size_t done, size_t total) {
                            before += old_bytes;
                            after += new_bytes;
                            if (to != old.type) {
                              tally.convert(dtype_name(old.type), old_bytes, dtype_name(to),
                                            new_bytes);
                            }
                            if (options.on_quantize)
                              options.on_quantize(done, total, before, after);
                          });
}

// FNV-1a over the model's shape and its first embedding bytes as stored (before any repacking):
// enough to tell models apart when a saved state is loaded (not a cryptographic check).
uint64_t fingerprint(const Model::Impl& m) {
  uint64_t h = 1469598103934665603ull;
  const auto mix = [&](const void* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const uint8_t*>(p)[i]) * 1099511628211ull;
  };
  const ModelConfig& c = m.config;
  mix(c.architecture.data(), c.architecture.size());
  for (const int32_t v : {c.n_vocab, c.n_embd, c.n_layer, c.n_head, c.n_head_kv, c.head_dim, c.n_ff}) {
    mix(&v, sizeof(v));
  }
  mix(m.weights.token_embd.data, std::min<size_t>(4096, row_bytes(m.weights.token_embd.type,
                                                                   size_t(c.n_embd))));
  return h;
}

// The matrices the active kernel set reads faster repacked, rewritten in place where the memory
// is this process's own (repack_for_tiles). Returns the bytes rewritten.
uint64_t repack_at_load(Model::Impl& m) {
  const KernelSet& k = active_kernels();
  uint64_t bytes = 0;
  const auto repack = [&](std::span<uint8_t> owned) {
    bytes = repack_for_tiles(m.weights, k, owned);
  };
  if (m.gguf) m.gguf->edit_in_place(repack);
  else repack({});
  return bytes;
}

bool is_directory(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

}  // namespace

Model Model::load(const std::string& path, const LoadOptions& options) {
  return load_impl(path, options, std::nullopt);
}

Model Model::load(const std::string& path, const LoadOptions& options, Tokenizer tokenizer) {
  return load_impl(path, options, std::move(tokenizer));
}

Model Model::load_impl(const std::string& path, const LoadOptions& options,
                       std::optional<Tokenizer> own_tokenizer) {
  active_kernels();  // a bad SLM_ISA is reported now, before any work
  const quant::Target* quantize = load_quantize_target(options);
  auto m = std::make_shared<Impl>();
  m->path = path;
  m->tokenizer = std::move(own_tokenizer);
  TensorTally tally;
  if (is_directory(path)) {
    std::error_code ec;
    if (!fs::exists(fs::path(path) / "config.json", ec)) {
      throw IoError(fmt::format("{}: a directory without config.json is not a model", path));
    }
    tally = load_hf_dir(path, options, *m);
  } else {
    tally = load_gguf(path, options, *m);
  }
  const uint64_t bytes_before = tally.bytes();
  if (quantize) quantize_at_load(options, quantize, *m, tally);
  m->info = describe(m->config, tally);
  if (quantize) m->info.weight_bytes_before_quantize = bytes_before;
  m->fingerprint = fingerprint(*m);
  m->info.weight_bytes_repacked = repack_at_load(*m);
  if (m->tokenizer && m->tokenizer->vocab_size() > m->config.n_vocab) {
    throw FormatError(
        fmt::format("{}: the tokenizer has {} tokens but the model only {} embeddings", path,
                    m->tokenizer->vocab_size(), m->config.n_vocab));
  }
  return Model(std::move(m));
}

const ModelInfo& Model::info() const { return impl_->info; }

bool Model::has_tokenizer() const { return impl_->tokenizer.has_value(); }

const Tokenizer& Model::tokenizer() const {
  if (!impl_->tokenizer) {
    throw InvalidArgumentError(
        fmt::format("{}: the model has no tokenizer ({}): give token ids (--tokens) or a tokenizer "
                    "(--tokenizer)",
                    impl_->path, impl_->gguf ? "no tokenizer.ggml keys" : "no tokenizer.json"));
  }
  return *impl_->tokenizer;
}

bool Model::is_eog(TokenId id) const {
  if (impl_->tokenizer && impl_->tokenizer->is_eog(id)) return true;
  return std::find(impl_->eos_ids.begin(), impl_->eos_ids.end(), id) != impl_->eos_ids.end();
}

TokenId Model::bos_id() const {
  if (impl_->tokenizer && impl_->tokenizer->bos_id() >= 0) return impl_->tokenizer->bos_id();
  return impl_->bos_id;
}

const std::string& Model::chat_template() const { return impl_->chat_template; }

}  // namespace slm
