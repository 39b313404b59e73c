// `slm quantize`: a GGUF file in, the same model with its matrices converted out. Metadata is
// copied in order (general.file_type replaced or appended); each tensor is converted only while
// the output is written, so one tensor at a time is in memory besides the mapped input.
#include <fmt/format.h>

#include "slm/error.h"
#include "slm/quantize.h"
#include "src/format/gguf.h"
#include "src/format/gguf_writer.h"
#include "src/model/quantize.h"

namespace slm {

std::vector<std::string> quantize_types() {
  std::vector<std::string> out;
  for (const quant::Target& t : quant::targets()) out.emplace_back(t.name);
  return out;
}

QuantizeResult quantize_model_file(const std::string& in, const std::string& out,
                                   const QuantizeOptions& options) {
  const quant::Target* target = quant::find_target(options.type);
  if (target == nullptr) {
    std::string names;
    for (const std::string& t : quantize_types()) names += (names.empty() ? "" : ", ") + t;
    throw InvalidArgumentError(
        fmt::format("unknown quantization type '{}' (types: {})", options.type, names));
  }
  const GgufFile file = GgufFile::open(in);
  const std::string arch(file.get_string("general.architecture").value_or(""));
  quant::ModelShape shape;
  shape.n_layer = int32_t(file.get_uint(arch + ".block_count").value_or(0));
  shape.tied = file.find_tensor("output.weight") == nullptr;

  GgufWriter writer;
  writer.set_version(file.version());
  // general.alignment, when present, travels with the rest (the writer obeys it).
  for (const GgufKv& kv : file.metadata()) writer.set(kv.key, GgufMetaValue::from(kv.value));
  writer.set_u32("general.file_type", target->ftype);

  QuantizeResult result;
  result.bytes_in = file.file_size();
  bool any_quantized = false;
  const size_t count = file.tensors().size();
  for (size_t i = 0; i < count; ++i) {
    const GgufTensor& t = file.tensors()[i];
    const std::span<const uint8_t> bytes(t.data, size_t(t.n_bytes));
    DType type = t.type;
    if (quant::is_weight_matrix(t.name, t.dims.size())) {
      type = quant::matrix_type(*target, t.name, t.dims[0], t.type, shape);
      if (type != t.type && !quant::is_float_type(t.type)) {
        throw UnsupportedError(fmt::format(
            "{}: tensor '{}' is already {}; slm quantize converts F32/F16/BF16 weights only "
            "(requantizing adds a second rounding error): start from the F32/F16/BF16 file",
            in, t.name, dtype_name(t.type)));
      }
      if (t.dims[0] % traits(target->base).block_elems == 0) {
        ++result.converted;
      } else {
        result.fallbacks.push_back(fmt::format("{}: {} (rows of {}, not whole {} blocks)", t.name,
                                               dtype_name(type), t.dims[0],
                                               dtype_name(target->base)));
      }
    } else {
      ++result.unchanged;
    }
    any_quantized = any_quantized || traits(type).block_elems > 1;
    const DType from = t.type;
    const uint64_t cols = t.dims[0];
    const std::string name = t.name;
    writer.add_tensor_generated(
        t.name, t.dims, type,
        [&options, i, count, name, from, bytes, cols, type](std::span<uint8_t> dst) {
          if (options.on_tensor) options.on_tensor(i, count, name);
          quant::convert(from, bytes, cols, type, dst);
        });
  }
  // llama.cpp writes the block-format version with every quantized file.
  if (any_quantized) writer.set_u32("general.quantization_version", 2);
  result.bytes_out = writer.layout().file_size;
  writer.write(out);
  return result;
}

}  // namespace slm
