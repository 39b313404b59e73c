// The safetensors reader: real files from ../shared, files written here, and every kind of
// malformed file (SafetensorsMalformed.*, run under ASan/UBSan in CI): a clear error naming the
// file and tensor, never a crash.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "slm/error.h"
#include "src/format/safetensors.h"
#include "tests/safetensors_test_util.h"
#include "tests/test_data.h"

namespace slm {
namespace {

namespace fs = std::filesystem;
using test::StTensor;

using test::expect_error;

// A file with `header` and 64 bytes of data, opened; the error must name the file and `needle`.
template <class E = FormatError>
void expect_header_error(const std::string& header, const std::string& needle) {
  const fs::path path = test::temp_dir() / "bad.safetensors";
  test::write_raw_safetensors(path, header, std::vector<uint8_t>(64));
  expect_error<E>([&] { SafetensorsFile::open(path.string()); }, {"bad.safetensors", needle});
}

std::string one_tensor(const std::string& dtype, const std::string& shape,
                       const std::string& offsets) {
  return R"({"w":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offsets +
         "}}";
}

TEST(Safetensors, ReadsTensorsAndMetadata) {
  const fs::path path = test::temp_dir() / "small.safetensors";
  test::write_safetensors(path,
                          {{"a", "F32", {2, 3}, test::f32_bytes({1, 2, 3, 4, 5, 6})},
                           {"b", "BF16", {2}, {0x80, 0x3F, 0x00, 0x40}},
                           {"c", "U8", {0}, {}}},
                          R"({"format":"pt","note":"x"})");
  const SafetensorsFile file = SafetensorsFile::open(path.string());
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.metadata().at("note"), "x");
  ASSERT_EQ(file.tensors().size(), 3u);
  const SafetensorsTensor* a = file.find_tensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->type, SafetensorsDType::kF32);
  EXPECT_EQ(a->shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(a->n_elements, 6u);
  EXPECT_EQ(a->n_bytes, 24u);
  EXPECT_EQ(a->offset, file.data_offset());
  EXPECT_EQ(reinterpret_cast<const float*>(a->data)[5], 6.0f);
  const SafetensorsTensor* b = file.find_tensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type, SafetensorsDType::kBF16);
  EXPECT_EQ(b->offset, file.data_offset() + 24);
  EXPECT_EQ(file.find_tensor("c")->n_bytes, 0u);
  EXPECT_EQ(file.find_tensor("missing"), nullptr);
}

TEST(Safetensors, ReadsZooLlama) {
  const fs::path path = test::data_path("zoo/hf/llama/model.safetensors");
  SLM_REQUIRE_DATA(path);
  const SafetensorsFile file = SafetensorsFile::open(path.string());
  EXPECT_EQ(file.tensors().size(), 21u);  // 2 layers × 9 + embed, norm, lm_head
  const SafetensorsTensor* q = file.find_tensor("model.layers.1.self_attn.q_proj.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->shape, (std::vector<uint64_t>{64, 64}));
  EXPECT_EQ(file.metadata().at("format"), "pt");
}

TEST(Safetensors, ShardedCheckpoint) {
  const fs::path dir = test::temp_dir();
  test::write_safetensors(dir / "part-1.safetensors", {{"x", "F32", {1}, test::f32_bytes({1})}});
  test::write_safetensors(dir / "part-2.safetensors", {{"y", "F32", {1}, test::f32_bytes({2})}});
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"metadata":{"total_size":8},"weight_map":{"x":"part-1.safetensors","y":"part-2.safetensors"}})";
  const SafetensorsCheckpoint c = SafetensorsCheckpoint::open(dir.string());
  EXPECT_EQ(c.files().size(), 2u);
  ASSERT_NE(c.find_tensor("y"), nullptr);
  EXPECT_EQ(reinterpret_cast<const float*>(c.find_tensor("y")->data)[0], 2.0f);
  EXPECT_NE(c.file_of("x").find("part-1.safetensors"), std::string::npos);
  EXPECT_EQ(c.find_tensor("z"), nullptr);
}

TEST(SafetensorsMalformed, ShorterThanTheLength) {
  const fs::path path = test::temp_dir() / "bad.safetensors";
  std::ofstream(path, std::ios::binary) << "abc";
  expect_error<FormatError>([&] { SafetensorsFile::open(path.string()); }, {"too short"});
}

TEST(SafetensorsMalformed, HeaderLengthPastEndOfFile) {
  const fs::path path = test::temp_dir() / "bad.safetensors";
  test::write_raw_safetensors(path, "{}", {});
  // Rewrite the length as 1000: the file holds 10 bytes.
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  const char len[8] = {char(0xE8), 3, 0, 0, 0, 0, 0, 0};
  f.write(len, 8);
  f.close();
  expect_error<FormatError>([&] { SafetensorsFile::open(path.string()); },
                            {"bad.safetensors", "header length 1000"});
}

TEST(SafetensorsMalformed, HugeHeaderLength) {
  const fs::path path = test::temp_dir() / "bad.safetensors";
  std::ofstream(path, std::ios::binary) << std::string(8, char(0xFF)) << "{}";
  expect_error<FormatError>([&] { SafetensorsFile::open(path.string()); }, {"header length"});
}

TEST(SafetensorsMalformed, InvalidJson) {
  expect_header_error(R"({"w":{"dtype":"F32",)", "JSON header is invalid");
  expect_header_error("[1, 2]", "not an object");
  expect_header_error(R"({"w": 3})", "'w'");
  expect_header_error(R"({"__metadata__": {"a": 1}})", "__metadata__");
  expect_header_error(R"({"__metadata__": []})", "__metadata__");
}

TEST(SafetensorsMalformed, BadEntries) {
  expect_header_error(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "dtype");
  expect_header_error(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", "shape");
  expect_header_error(one_tensor("F32", "[-1]", "[0,4]"), "shape");
  expect_header_error(one_tensor("F32", "[1.5]", "[0,4]"), "shape");
  expect_header_error(one_tensor("F32", "[1]", "[0]"), "data_offsets");
  expect_header_error(one_tensor("F32", "[1]", "[0,-4]"), "data_offsets");
  expect_header_error(one_tensor("F32", "[1]", "\"0,4\""), "data_offsets");
  expect_header_error(
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
      "twice");
}

TEST(SafetensorsMalformed, UnsupportedDtype) {
  expect_header_error<UnsupportedError>(one_tensor("F64", "[1]", "[0,8]"), "F64");
  expect_header_error<UnsupportedError>(one_tensor("F8_E4M3", "[1]", "[0,1]"), "'w'");
}

TEST(SafetensorsMalformed, OffsetsOutOfFile) {
  expect_header_error(one_tensor("F32", "[32]", "[0,128]"), "past the end");
  expect_header_error(one_tensor("F32", "[1]", "[18446744073709551612,18446744073709551615]"),
                      "'w'");
}

TEST(SafetensorsMalformed, BeginAfterEnd) {
  expect_header_error(one_tensor("F32", "[0]", "[8,4]"), "begin after end");
}

TEST(SafetensorsMalformed, ShapeDtypeSizeMismatch) {
  expect_header_error(one_tensor("F32", "[3]", "[0,8]"), "need 12");
  expect_header_error(one_tensor("BF16", "[2,2]", "[0,16]"), "need 8");
  // A shape whose byte count overflows 64 bits.
  expect_header_error(one_tensor("F32", "[4294967296,4294967296]", "[0,16]"), "overflows");
}

TEST(SafetensorsMalformed, OverlappingTensors) {
  expect_header_error(
      R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
      "overlap");
}

TEST(SafetensorsMalformed, MissingShard) {
  const fs::path dir = test::temp_dir();
  test::write_safetensors(dir / "part-1.safetensors", {{"x", "F32", {1}, test::f32_bytes({1})}});
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"weight_map":{"x":"part-1.safetensors","y":"part-2.safetensors"}})";
  expect_error<FormatError>([&] { SafetensorsCheckpoint::open(dir.string()); },
                            {"part-2.safetensors", "missing"});
}

TEST(SafetensorsMalformed, MissingSingleFile) {
  expect_error<FormatError>([&] { SafetensorsCheckpoint::open(test::temp_dir().string()); },
                            {"model.safetensors"});
}

TEST(SafetensorsMalformed, IndexDisagreesWithShards) {
  const fs::path dir = test::temp_dir();
  test::write_safetensors(dir / "a.safetensors", {{"x", "F32", {1}, test::f32_bytes({1})}});
  test::write_safetensors(dir / "b.safetensors", {{"x", "F32", {1}, test::f32_bytes({1})}});
  const auto index = [&](const std::string& text) {
    std::ofstream(dir / "model.safetensors.index.json") << text;
  };
  index(R"({"weight_map":{"x":"a.safetensors","y":"a.safetensors"}})");
  expect_error<FormatError>([&] { SafetensorsCheckpoint::open(dir.string()); }, {"'y'"});
  index(R"({"weight_map":{"x":"a.safetensors","z":"b.safetensors"}})");
  expect_error<FormatError>([&] { SafetensorsCheckpoint::open(dir.string()); }, {"'x'", "also in"});
  index(R"({"weight_map":{"x":"../a.safetensors"}})");
  expect_error<FormatError>([&] { SafetensorsCheckpoint::open(dir.string()); }, {"beside"});
  index(R"({"weight_map":{"x":1}})");
  expect_error<FormatError>([&] { SafetensorsCheckpoint::open(dir.string()); }, {"'x'"});
  index(R"({"weight_map":)");
  expect_error<FormatError>([&] { SafetensorsCheckpoint::open(dir.string()); },
                            {"index.json", "invalid JSON"});
  index(R"({"metadata":{}})");
  expect_error<FormatError>([&] { SafetensorsCheckpoint::open(dir.string()); }, {"weight_map"});
}

// Every truncation of a real file is an error (or, cut inside the data, a clear one), never a
// crash: the reader checks each length against what is there.
TEST(SafetensorsMalformed, EveryTruncation) {
  const fs::path path = test::temp_dir() / "t.safetensors";
  test::write_safetensors(path, {{"a", "F32", {2}, test::f32_bytes({1, 2})},
                                 {"b", "F16", {3}, std::vector<uint8_t>(6, 1)}});
  std::vector<char> bytes(fs::file_size(path));
  std::ifstream(path, std::ios::binary).read(bytes.data(), std::streamsize(bytes.size()));
  const fs::path cut = test::temp_dir() / "cut.safetensors";
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::ofstream(cut, std::ios::binary).write(bytes.data(), std::streamsize(n));
    EXPECT_THROW(SafetensorsFile::open(cut.string()), FormatError) << n << " bytes";
    fs::remove(cut);
  }
}

}  // namespace
}  // namespace slm
