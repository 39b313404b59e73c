#include <fmt/format.h>

#include <map>

#include "kernels/dispatch.h"
#include "slm/error.h"
#include "src/api/model_impl.h"
#include "src/tokenizer/gguf_tokenizer.h"

namespace slm {
namespace {

ModelInfo describe(const GgufFile& file, const ModelConfig& c) {
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
  std::map<std::string_view, int> types;
  for (const GgufTensor& t : file.tensors()) {
    info.parameter_count += t.n_elements;
    info.weight_bytes += t.n_bytes;
    ++types[dtype_name(t.type)];
  }
  for (const auto& [name, count] : types) {
    info.weight_types += fmt::format("{}{} x{}", info.weight_types.empty() ? "" : ", ", name, count);
  }
  return info;
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
  GgufFile file = GgufFile::open(path, options.use_mmap);
  ModelConfig config = read_config(file);
  Weights weights = load_weights(file, config);
  Tokenizer tokenizer = own_tokenizer ? std::move(*own_tokenizer) : load_tokenizer(file);
  if (tokenizer.vocab_size() > config.n_vocab) {
    throw FormatError(fmt::format("{}: the tokenizer has {} tokens but the model only {} embeddings",
                                  path, tokenizer.vocab_size(), config.n_vocab));
  }
  ModelInfo info = describe(file, config);
  return Model(std::make_shared<const Impl>(Impl{std::move(file), std::move(config),
                                                 std::move(weights), std::move(tokenizer),
                                                 std::move(info)}));
}

const ModelInfo& Model::info() const { return impl_->info; }
const Tokenizer& Model::tokenizer() const { return impl_->tokenizer; }

}  // namespace slm
