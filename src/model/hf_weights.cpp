#include "src/model/hf_weights.h"

#include <fmt/format.h>

#include "slm/error.h"
#include "src/model/hf_names.h"

namespace slm {

DType hf_weight_type(const SafetensorsTensor& t, std::string_view file) {
  switch (t.type) {
    case SafetensorsDType::kF32:
      return DType::kF32;
    case SafetensorsDType::kF16:
      return DType::kF16;
    case SafetensorsDType::kBF16:
      return DType::kBF16;
    default:
      throw UnsupportedError(
          fmt::format("{}: tensor '{}' has dtype {}; slm reads F32, F16 and BF16 weights", file,
                      t.name, safetensors_dtype_name(t.type)));
  }
}

std::optional<SourceTensor> HfTensorSource::find(const std::string& gguf_name) const {
  if (gguf_name == "output.weight" && config_.tie_word_embeddings) return std::nullopt;
  const std::string name = hf_tensor_name(config_.model.architecture, gguf_name);
  const SafetensorsTensor* t = name.empty() ? nullptr : checkpoint_.find_tensor(name);
  if (!t) {
    if (gguf_name == "output.weight") throw FormatError(missing(gguf_name));  // untied
    return std::nullopt;
  }
  const std::string file = checkpoint_.file_of(name);
  return SourceTensor{t->name, file, hf_weight_type(*t, file), t->data,
                      std::vector<uint64_t>(t->shape.rbegin(), t->shape.rend()),
                      /*outermost_first=*/true};
}

std::string HfTensorSource::missing(const std::string& gguf_name) const {
  const std::string name = hf_tensor_name(config_.model.architecture, gguf_name);
  return fmt::format("{}: missing tensor '{}'", checkpoint_.dir(),
                     name.empty() ? gguf_name : name);
}

}  // namespace slm
