// The reference kernels against files made by llama.cpp:
// - quantize_row on the F32 master reproduces, byte for byte, every tensor that llama-quantize
//   (or a ggml-exact tool, for the stories260K Q8_0/Q4_0 files) stored in a type we can quantize;
// - dequantize_row on every tensor of the K-quant mixes lands close to the F32 master. The error
//   bound is a few times what the quantization itself costs; a layout bug gives NMSE ~ 1.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "kernels/ref/quant.h"
#include "src/format/gguf.h"
#include "tests/test_data.h"

namespace slm {
namespace {

const GgufTensor& master_of(const GgufFile& master, const GgufTensor& t) {
  const GgufTensor* m = master.find_tensor(t.name);
  EXPECT_NE(m, nullptr) << t.name << " missing from " << master.path();
  EXPECT_EQ(m->type, DType::kF32) << t.name;
  EXPECT_EQ(m->dims, t.dims) << t.name;
  return *m;
}

// Requantizes every tensor of `quant_file` whose type slm can quantize (other than F32) from the
// master's F32 data, row by row, and compares bytes. Returns the number of tensors compared.
int expect_requantized_bytes_equal(const std::string& master_file, const std::string& quant_file) {
  const GgufFile master = GgufFile::open(master_file);
  const GgufFile quant = GgufFile::open(quant_file);
  int compared = 0;
  for (const GgufTensor& t : quant.tensors()) {
    if (t.type == DType::kF32 || !ref::can_quantize(t.type)) continue;
    const GgufTensor& m = master_of(master, t);
    const size_t row = t.dims[0];
    const size_t rows = t.n_elements / row;
    const size_t rb = row_bytes(t.type, row);
    EXPECT_EQ(t.n_bytes, rb * rows) << t.name;
    if (t.n_bytes != rb * rows) continue;
    std::vector<uint8_t> mine(rb);
    size_t bad_rows = 0;
    size_t first_bad = 0;
    for (size_t r = 0; r < rows; ++r) {
      std::vector<float> src(row);
      std::memcpy(src.data(), m.data + r * row * sizeof(float), row * sizeof(float));
      ref::quantize_row(t.type, src.data(), mine.data(), row);
      if (std::memcmp(mine.data(), t.data + r * rb, rb) != 0) {
        if (bad_rows++ == 0) first_bad = r;
      }
    }
    EXPECT_EQ(bad_rows, 0u) << t.name << " (" << dtype_name(t.type) << ") in " << quant_file << ": "
                            << bad_rows << " of " << rows << " rows differ, first " << first_bad;
    ++compared;
  }
  return compared;
}

// NMSE bound of dequantized weights vs their F32 source, per type: generous multiples of what
// llama-quantize's mixes reach on random (Gaussian-like) weights.
double nmse_bound(DType t) {
  switch (t) {
    case DType::kQ2_K:
      return 0.2;
    case DType::kQ3_K:
      return 0.08;
    case DType::kQ4_K:
      return 0.02;
    case DType::kQ5_K:
      return 0.005;
    case DType::kQ6_K:
      return 0.0015;
    case DType::kQ4_0:
      return 0.03;
    case DType::kQ4_1:
      return 0.02;
    case DType::kQ5_0:
      return 0.008;
    case DType::kQ5_1:
      return 0.005;
    case DType::kQ8_0:
      return 1e-4;
    case DType::kF16:
      return 1e-6;
    case DType::kBF16:
      return 1e-4;
    default:
      return 0.0;
  }
}

// Dequantizes every non-F32 tensor and checks its NMSE against the master. Returns the types seen.
std::vector<DType> expect_dequantized_close(const std::string& master_file,
                                            const std::string& quant_file) {
  const GgufFile master = GgufFile::open(master_file);
  const GgufFile quant = GgufFile::open(quant_file);
  std::vector<DType> seen;
  for (const GgufTensor& t : quant.tensors()) {
    if (t.type == DType::kF32) continue;
    EXPECT_TRUE(ref::supports(t.type)) << t.name << " " << dtype_name(t.type);
    if (!ref::supports(t.type)) continue;
    const GgufTensor& m = master_of(master, t);
    std::vector<float> deq(t.n_elements);
    const size_t row = t.dims[0];
    const size_t rb = row_bytes(t.type, row);
    for (size_t r = 0; r < t.n_elements / row; ++r) {
      ref::dequantize_row(t.type, t.data + r * rb, deq.data() + r * row, row);
    }
    std::vector<float> want(t.n_elements);
    std::memcpy(want.data(), m.data, t.n_elements * sizeof(float));
    const double e = test::nmse(deq.data(), want.data(), t.n_elements);
    EXPECT_LT(e, nmse_bound(t.type))
        << t.name << " (" << dtype_name(t.type) << ") in " << quant_file;
    seen.push_back(t.type);
  }
  return seen;
}

bool contains(const std::vector<DType>& v, DType t) {
  for (DType x : v) {
    if (x == t) return true;
  }
  return false;
}

TEST(QuantRefGguf, LlamaGqaQ8_0BytesMatchLlamaQuantize) {
  const auto dir = test::data_path("zoo/gguf");
  SLM_REQUIRE_DATA(dir / "llama-gqa-Q8_0.gguf");
  EXPECT_GT(expect_requantized_bytes_equal(dir / "llama-gqa-F32.gguf", dir / "llama-gqa-Q8_0.gguf"),
            0);
}

TEST(QuantRefGguf, LlamaGqaQ4_0BytesMatchLlamaQuantize) {
  const auto dir = test::data_path("zoo/gguf");
  SLM_REQUIRE_DATA(dir / "llama-gqa-Q4_0.gguf");
  EXPECT_GT(expect_requantized_bytes_equal(dir / "llama-gqa-F32.gguf", dir / "llama-gqa-Q4_0.gguf"),
            0);
}

TEST(QuantRefGguf, LlamaGqaF16AndBF16BytesMatchLlamaQuantize) {
  const auto dir = test::data_path("zoo/gguf");
  SLM_REQUIRE_DATA(dir / "llama-gqa-F16.gguf");
  SLM_REQUIRE_DATA(dir / "llama-gqa-BF16.gguf");
  EXPECT_GT(expect_requantized_bytes_equal(dir / "llama-gqa-F32.gguf", dir / "llama-gqa-F16.gguf"),
            0);
  EXPECT_GT(expect_requantized_bytes_equal(dir / "llama-gqa-F32.gguf", dir / "llama-gqa-BF16.gguf"),
            0);
}

TEST(QuantRefGguf, Stories260KBytesMatch) {
  const auto dir = test::data_path("models/stories260K");
  SLM_REQUIRE_DATA(dir / "stories260K.gguf");
  const std::string master = dir / "stories260K.gguf";
  EXPECT_GT(expect_requantized_bytes_equal(master, dir / "stories260K-Q8_0.gguf"), 0);
  EXPECT_GT(expect_requantized_bytes_equal(master, dir / "stories260K-Q4_0.gguf"), 0);
  EXPECT_GT(expect_requantized_bytes_equal(master, dir / "stories260K-F16.gguf"), 0);
  // llama-quantize's Q4_K_M fallback for 64/172-wide rows: Q5_0, Q8_0 and F16 tensors.
  EXPECT_GT(expect_requantized_bytes_equal(master, dir / "stories260K-Q4_K_M-fallback.gguf"), 0);
}

TEST(QuantRefGguf, KQuantMixesBytesMatchLlamaQuantize) {
  const auto dir = test::data_path("zoo/gguf");
  SLM_REQUIRE_DATA(dir / "llama-gqa-Q4_K_M.gguf");
  for (const char* name : {"Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"}) {
    const std::string file = dir / ("llama-gqa-" + std::string(name) + ".gguf");
    EXPECT_GT(expect_requantized_bytes_equal(dir / "llama-gqa-F32.gguf", file), 0) << file;
  }
}

TEST(QuantRefGguf, KQuantMixesDequantizeCloseToMaster) {
  const auto dir = test::data_path("zoo/gguf");
  SLM_REQUIRE_DATA(dir / "llama-gqa-Q4_K_M.gguf");
  std::vector<DType> seen;
  for (const char* name : {"Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "Q4_0"}) {
    const std::vector<DType> s = expect_dequantized_close(
        dir / "llama-gqa-F32.gguf", dir / ("llama-gqa-" + std::string(name) + ".gguf"));
    seen.insert(seen.end(), s.begin(), s.end());
  }
  for (DType t : {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    EXPECT_TRUE(contains(seen, t)) << "no " << dtype_name(t) << " tensor was checked";
  }
}

}  // namespace
}  // namespace slm
