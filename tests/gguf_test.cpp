// GGUF reader and writer on well-formed files: round trips of every metadata type through the
// writer (v2 and v3, mmap and read), alignment, tensor views, typed getters, and the real files
// in the shared test data.
#include "src/format/gguf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "slm/error.h"
#include "src/format/gguf_writer.h"
#include "src/format/mapped_file.h"
#include "tests/gguf_test_util.h"
#include "tests/test_data.h"

namespace slm {
namespace {

using test::pattern_bytes;
using test::write_temp;

std::vector<uint8_t> read_all(const std::string& path) {
  const std::string s = test::read_text(path);
  return {s.begin(), s.end()};
}

// Every value type, nested arrays, empty arrays and strings with odd bytes.
GgufWriter every_type_writer() {
  GgufWriter w;
  w.set_u8("t.u8", 250);
  w.set_i8("t.i8", -100);
  w.set_u16("t.u16", 65000);
  w.set_i16("t.i16", -32000);
  w.set_u32("t.u32", 4000000000u);
  w.set_i32("t.i32", -2000000000);
  w.set_u64("t.u64", std::numeric_limits<uint64_t>::max());
  w.set_i64("t.i64", std::numeric_limits<int64_t>::min());
  w.set_f32("t.f32", 0.15625f);
  w.set_f64("t.f64", -1.0 / 3.0);
  w.set_bool("t.true", true);
  w.set_bool("t.false", false);
  w.set_string("t.str", "héllo");
  w.set_string("t.empty", "");
  w.set_string("t.nul", std::string_view("a\0b", 3));
  w.set_string_array("t.strs", std::vector<std::string>{"x", "", "yz"});
  w.set_array("t.f32s", std::vector<float>{1.5f, -2.0f});
  w.set_array("t.f64s", std::vector<double>{0.25});
  w.set_array("t.i32s", std::vector<int32_t>{-1, 0, 7});
  w.set_array("t.u8s", std::vector<uint8_t>{1, 2, 255});
  w.set_array("t.i64s", std::vector<int64_t>{});
  w.set("t.bools", GgufMetaValue::array_of(GgufType::kBool, {GgufMetaValue::boolean(true),
                                                             GgufMetaValue::boolean(false)}));
  // [[1, 2], [], [3]] as int16, then [["a"], [[7u]]] mixing inner element types.
  w.set("t.nested",
        GgufMetaValue::array_of(GgufType::kArray, {GgufMetaValue::array(std::vector<int16_t>{1, 2}),
                                                   GgufMetaValue::array(std::vector<int16_t>{}),
                                                   GgufMetaValue::array(std::vector<int16_t>{3})}));
  w.set("t.mixed", GgufMetaValue::array_of(
                       GgufType::kArray,
                       {GgufMetaValue::string_array(std::vector<std::string>{"a"}),
                        GgufMetaValue::array_of(
                            GgufType::kArray, {GgufMetaValue::array(std::vector<uint32_t>{7})})}));
  return w;
}

class GgufRoundTrip : public ::testing::TestWithParam<std::tuple<uint32_t, bool>> {};

TEST_P(GgufRoundTrip, EveryMetadataType) {
  const auto [version, use_mmap] = GetParam();
  GgufWriter w = every_type_writer();
  w.set_version(version);
  const std::string path = (test::temp_dir() / "all.gguf").string();
  w.write(path);
  ASSERT_EQ(read_all(path), w.to_bytes());

  const GgufFile g = GgufFile::open(path, use_mmap);
  EXPECT_EQ(g.path(), path);
  EXPECT_EQ(g.version(), version);
  EXPECT_EQ(g.is_mapped(), use_mmap);
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_TRUE(g.tensors().empty());
  EXPECT_EQ(g.metadata().size(), 24u);
  EXPECT_EQ(g.metadata()[0].key, "t.u8");  // file order is kept

  EXPECT_EQ(g.find("t.u8")->type, GgufType::kUint8);
  EXPECT_EQ(g.get_uint("t.u8"), 250u);
  EXPECT_EQ(g.get_int("t.i8"), -100);
  EXPECT_EQ(g.find("t.i8")->type, GgufType::kInt8);
  EXPECT_EQ(g.get_uint("t.u16"), 65000u);
  EXPECT_EQ(g.get_int("t.i16"), -32000);
  EXPECT_EQ(g.get_uint("t.u32"), 4000000000u);
  EXPECT_EQ(g.get_int("t.i32"), -2000000000);
  EXPECT_EQ(g.get_uint("t.u64"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(g.get_int("t.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(g.find("t.f32")->type, GgufType::kFloat32);
  EXPECT_EQ(g.get_float("t.f32"), 0.15625);
  EXPECT_EQ(g.get_float("t.f64"), -1.0 / 3.0);
  EXPECT_EQ(g.get_bool("t.true"), true);
  EXPECT_EQ(g.get_bool("t.false"), false);
  EXPECT_EQ(g.get_string("t.str"), "héllo");
  EXPECT_EQ(g.get_string("t.empty"), "");
  EXPECT_EQ(g.get_string("t.nul"), std::string_view("a\0b", 3));
  EXPECT_EQ(g.get_string_array("t.strs"), (std::vector<std::string_view>{"x", "", "yz"}));
  EXPECT_EQ(g.get_float_array("t.f32s"), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(g.get_float_array("t.f64s"), (std::vector<float>{0.25f}));
  EXPECT_EQ(g.get_int_array("t.i32s"), (std::vector<int64_t>{-1, 0, 7}));
  EXPECT_EQ(g.get_int_array("t.u8s"), (std::vector<int64_t>{1, 2, 255}));
  EXPECT_EQ(g.get_int_array("t.i64s"), (std::vector<int64_t>{}));
  EXPECT_EQ(g.find("t.i64s")->elem_type, GgufType::kInt64);

  const GgufValue* bools = g.find("t.bools");
  ASSERT_NE(bools, nullptr);
  ASSERT_EQ(bools->items.size(), 2u);
  EXPECT_EQ(bools->elem_type, GgufType::kBool);
  EXPECT_EQ(bools->items[0].u, 1u);
  EXPECT_EQ(bools->items[1].u, 0u);

  const GgufValue* nested = g.find("t.nested");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->type, GgufType::kArray);
  EXPECT_EQ(nested->elem_type, GgufType::kArray);
  ASSERT_EQ(nested->items.size(), 3u);
  EXPECT_EQ(nested->items[0].elem_type, GgufType::kInt16);
  ASSERT_EQ(nested->items[0].items.size(), 2u);
  EXPECT_EQ(nested->items[0].items[1].i, 2);
  EXPECT_TRUE(nested->items[1].items.empty());
  EXPECT_EQ(nested->items[2].items[0].i, 3);

  const GgufValue* mixed = g.find("t.mixed");
  ASSERT_NE(mixed, nullptr);
  ASSERT_EQ(mixed->items.size(), 2u);
  EXPECT_EQ(mixed->items[0].elem_type, GgufType::kString);
  EXPECT_EQ(mixed->items[0].items[0].str, "a");
  EXPECT_EQ(mixed->items[1].items[0].items[0].u, 7u);
  EXPECT_EQ(mixed->items[1].items[0].items[0].type, GgufType::kUint32);

  // Copying every value back through the writer gives the same bytes.
  GgufWriter copy;
  copy.set_version(version);
  for (const GgufKv& kv : g.metadata()) copy.set(kv.key, GgufMetaValue::from(kv.value));
  EXPECT_EQ(copy.to_bytes(), w.to_bytes());
}

INSTANTIATE_TEST_SUITE_P(VersionsAndModes, GgufRoundTrip,
                         ::testing::Combine(::testing::Values(2u, 3u), ::testing::Bool()));

TEST(Gguf, TypedGetterErrorsNameTheKey) {
  const std::string path = write_temp("t.gguf", every_type_writer().to_bytes());
  const GgufFile g = GgufFile::open(path);
  const auto expect_format_error = [&](auto fn, const std::string& key) {
    try {
      fn();
      ADD_FAILURE() << "no error for " << key;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  };
  expect_format_error([&] { (void)g.get_uint("t.i8"); }, "t.i8");    // negative
  expect_format_error([&] { (void)g.get_uint("t.str"); }, "t.str");  // string
  expect_format_error([&] { (void)g.get_uint("t.f32"); }, "t.f32");  // float
  expect_format_error([&] { (void)g.get_int("t.u64"); }, "t.u64");   // too large
  expect_format_error([&] { (void)g.get_float("t.str"); }, "t.str");
  expect_format_error([&] { (void)g.get_bool("t.u8"); }, "t.u8");
  expect_format_error([&] { (void)g.get_string("t.u32"); }, "t.u32");
  expect_format_error([&] { (void)g.get_string_array("t.f32s"); }, "t.f32s");
  expect_format_error([&] { (void)g.get_float_array("t.strs"); }, "t.strs");
  expect_format_error([&] { (void)g.get_int_array("t.f32s"); }, "t.f32s");
  expect_format_error([&] { (void)g.get_int_array("t.str"); }, "t.str");
  expect_format_error([&] { (void)g.require_uint("no.such.key"); }, "no.such.key");
  expect_format_error([&] { (void)g.require_string("no.such.key"); }, "no.such.key");

  expect_format_error([&] { (void)g.get_uint("t.i32s"); }, "t.i32s");  // an array
  EXPECT_FALSE(g.get_uint("absent").has_value());
  EXPECT_FALSE(g.get_string_array("absent").has_value());
  EXPECT_EQ(g.find("absent"), nullptr);
  EXPECT_EQ(g.get_float("t.i32"), -2000000000.0);  // integers are numbers too
  EXPECT_EQ(g.get_int("t.u32"), 4000000000);
  EXPECT_EQ(g.require_uint("t.u16"), 65000u);
  EXPECT_EQ(g.require_string("t.str"), "héllo");
}

class GgufAlignment : public ::testing::TestWithParam<std::tuple<uint32_t, bool>> {};

TEST_P(GgufAlignment, TensorsAreAlignedAndPointIntoTheFile) {
  const auto [alignment, use_mmap] = GetParam();
  struct Spec {
    std::string name;
    std::vector<uint64_t> dims;
    DType type;
    size_t n_bytes;
  };
  const std::vector<Spec> specs = {
      {"a.f32", {3, 2}, DType::kF32, 24},        {"b.f16", {5}, DType::kF16, 10},
      {"c.q4_0", {64, 2}, DType::kQ4_0, 4 * 18}, {"d.q8_0", {32, 1, 1, 3}, DType::kQ8_0, 3 * 34},
      {"e.q4_k", {256}, DType::kQ4_K, 144},      {"f.bf16", {1}, DType::kBF16, 2},
  };
  GgufWriter w;
  if (alignment != 32) w.set_alignment(alignment);
  w.set_string("general.architecture", "test");
  std::vector<std::vector<uint8_t>> payloads;
  for (size_t k = 0; k < specs.size(); ++k) {
    payloads.push_back(pattern_bytes(specs[k].n_bytes, static_cast<uint32_t>(k)));
    w.add_tensor(specs[k].name, specs[k].dims, specs[k].type, payloads.back());
  }
  const std::string path = write_temp("aligned.gguf", w.to_bytes());
  const GgufFile g = GgufFile::open(path, use_mmap);
  EXPECT_EQ(g.alignment(), alignment);
  EXPECT_EQ(g.data_offset() % alignment, 0u);
  EXPECT_EQ(g.data_offset(), w.layout().data_offset);
  ASSERT_EQ(g.tensors().size(), specs.size());
  const auto bytes = MappedFile::open(path, false);
  for (size_t k = 0; k < specs.size(); ++k) {
    const GgufTensor& t = g.tensors()[k];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, specs[k].name);
    EXPECT_EQ(t.dims, specs[k].dims);
    EXPECT_EQ(t.type, specs[k].type);
    EXPECT_EQ(t.n_bytes, specs[k].n_bytes);
    uint64_t n = 1;
    for (uint64_t d : specs[k].dims) n *= d;
    EXPECT_EQ(t.n_elements, n);
    EXPECT_EQ(t.offset % alignment, 0u);
    EXPECT_EQ(t.offset, w.layout().tensor_offsets[k]);
    EXPECT_EQ(g.find_tensor(t.name), &t);
    // A mapping starts on a page, so the views keep the file's alignment.
    if (use_mmap) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % std::min<uint32_t>(alignment, 4096), 0u);
    }
    // The view is at data_offset + offset of the file and holds exactly the bytes written.
    EXPECT_EQ(std::memcmp(t.data, payloads[k].data(), payloads[k].size()), 0);
    EXPECT_EQ(std::memcmp(bytes.data() + g.data_offset() + t.offset, payloads[k].data(),
                          payloads[k].size()),
              0);
  }
  EXPECT_EQ(g.find_tensor("missing"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(AlignmentsAndModes, GgufAlignment,
                         ::testing::Combine(::testing::Values(1u, 8u, 32u, 64u, 4096u),
                                            ::testing::Bool()));

TEST(Gguf, DataPointersAreInsideTheMapping) {
  const std::string path = write_temp("m.gguf", test::small_model_writer().to_bytes());
  for (bool use_mmap : {true, false}) {
    GgufFile g = GgufFile::open(path, use_mmap);
    EXPECT_EQ(g.is_mapped(), use_mmap);
    EXPECT_EQ(g.file_size(), std::filesystem::file_size(path));
    for (const GgufTensor& t : g.tensors()) {
      EXPECT_EQ(t.data - (g.tensors()[0].data - g.tensors()[0].offset),
                static_cast<ptrdiff_t>(t.offset));
      EXPECT_LE(g.data_offset() + t.offset + t.n_bytes, g.file_size());
    }
    // Moving the file keeps every view valid (the mapping does not move).
    const uint8_t* first = g.tensors()[0].data;
    GgufFile moved = std::move(g);
    EXPECT_EQ(moved.tensors()[0].data, first);
    EXPECT_EQ(moved.get_string("general.architecture"), "llama");
  }
}

TEST(GgufWriter, RejectsBadInput) {
  GgufWriter w;
  EXPECT_THROW(w.set_version(1), InvalidArgumentError);
  EXPECT_THROW(w.set_version(4), InvalidArgumentError);
  EXPECT_THROW(w.set_alignment(0), InvalidArgumentError);
  EXPECT_THROW(w.set_alignment(48), InvalidArgumentError);
  EXPECT_THROW(w.set_u64("general.alignment", 64), InvalidArgumentError);
  EXPECT_THROW(GgufMetaValue::array_of(GgufType::kUint8, {GgufMetaValue::i8(1)}),
               InvalidArgumentError);
  const std::vector<uint8_t> four(4);
  w.add_tensor("x", {1}, DType::kF32, four);
  EXPECT_THROW(w.add_tensor("x", {1}, DType::kF32, four), InvalidArgumentError);  // duplicate
  EXPECT_THROW(w.add_tensor("y", {2}, DType::kF32, four), InvalidArgumentError);  // size
  EXPECT_THROW(w.add_tensor("y", {}, DType::kF32, four), InvalidArgumentError);
  EXPECT_THROW(w.add_tensor("y", {1, 1, 1, 1, 1}, DType::kF32, four), InvalidArgumentError);
  EXPECT_THROW(w.add_tensor("y", {0}, DType::kF32, {}), InvalidArgumentError);
  EXPECT_THROW(w.add_tensor("y", {16}, DType::kQ4_0, std::vector<uint8_t>(9)),
               InvalidArgumentError);  // half a block
  EXPECT_EQ(w.n_tensors(), 1u);
  EXPECT_THROW(w.write((test::temp_dir() / "no_such_dir" / "x.gguf").string()), IoError);
}

TEST(GgufWriter, ReplacingAKeyKeepsItsPlaceAndAlignmentFollowsTheKey) {
  GgufWriter w;
  w.set_u32("a", 1);
  w.set_u32("b", 2);
  w.set_string("a", "one");
  w.set_u32("general.alignment", 16);
  EXPECT_EQ(w.alignment(), 16u);
  EXPECT_TRUE(w.has_key("general.alignment"));
  w.add_tensor("t", {3}, DType::kF32, pattern_bytes(12, 9));
  const GgufFile g = GgufFile::open(write_temp("r.gguf", w.to_bytes()));
  ASSERT_EQ(g.metadata().size(), 3u);
  EXPECT_EQ(g.metadata()[0].key, "a");
  EXPECT_EQ(g.get_string("a"), "one");
  EXPECT_EQ(g.alignment(), 16u);
  EXPECT_EQ(g.data_offset() % 16, 0u);
}

TEST(GgufWriter, TensorViewIsWrittenWithoutCopy) {
  const std::vector<uint8_t> data = pattern_bytes(8 * 34, 4);
  GgufWriter w;
  w.add_tensor_view("v", {256}, DType::kQ8_0, data);
  const GgufFile g = GgufFile::open(write_temp("v.gguf", w.to_bytes()));
  ASSERT_EQ(g.tensors().size(), 1u);
  EXPECT_EQ(std::memcmp(g.tensors()[0].data, data.data(), data.size()), 0);
}

TEST(GgufWriter, GeneratedTensorIsFilledWhileWriting) {
  const std::vector<uint8_t> data = pattern_bytes(3 * 34, 5);
  GgufWriter a, b;
  a.add_tensor("t", {32, 3}, DType::kQ8_0, data);
  int calls = 0;
  b.add_tensor_generated("t", {32, 3}, DType::kQ8_0, [&](std::span<uint8_t> out) {
    ++calls;
    ASSERT_EQ(out.size(), data.size());
    std::copy(data.begin(), data.end(), out.begin());
  });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(b.to_bytes(), a.to_bytes());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(b.layout().file_size, a.layout().file_size);
  EXPECT_THROW(b.add_tensor_generated("u", {33}, DType::kQ8_0, [](std::span<uint8_t>) {}),
               InvalidArgumentError);
  EXPECT_THROW(b.add_tensor_generated("v", {32}, DType::kQ8_0, nullptr), InvalidArgumentError);
}

TEST(MappedFile, EmptyFileMissingFileAndDirectory) {
  const std::string empty = write_temp("empty.bin", {});
  for (bool use_mmap : {true, false}) {
    const MappedFile f = MappedFile::open(empty, use_mmap);
    EXPECT_EQ(f.size(), 0u);
    EXPECT_TRUE(f.bytes().empty());
    EXPECT_EQ(f.path(), empty);
  }
  const std::string missing = (test::temp_dir() / "missing.gguf").string();
  try {
    MappedFile::open(missing);
    ADD_FAILURE() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
  const std::string dir = test::temp_dir().string();
  EXPECT_THROW(MappedFile::open(dir), IoError);
  EXPECT_THROW(MappedFile::open(dir, false), IoError);
  EXPECT_THROW(GgufFile::open(dir), IoError);
}

TEST(MappedFile, ReadAndMapGiveTheSameBytesAndMoveCleanly) {
  const std::vector<uint8_t> data = pattern_bytes(10000, 7);
  const std::string path = write_temp("d.bin", data);
  MappedFile a = MappedFile::open(path, true);
  MappedFile b = MappedFile::open(path, false);
  EXPECT_TRUE(a.is_mapped());
  EXPECT_FALSE(b.is_mapped());
  ASSERT_EQ(a.size(), data.size());
  ASSERT_EQ(b.size(), data.size());
  EXPECT_EQ(std::memcmp(a.data(), data.data(), data.size()), 0);
  EXPECT_EQ(std::memcmp(b.data(), data.data(), data.size()), 0);
  // The read copy starts on a 2 MiB boundary, so transparent huge pages can back it.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % (uintptr_t{2} << 20), 0u);
  const uint8_t* p = a.data();
  MappedFile c(std::move(a));
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  c = std::move(b);              // releases the mapping, takes the buffer
  EXPECT_FALSE(c.is_mapped());
  EXPECT_EQ(std::memcmp(c.data(), data.data(), data.size()), 0);
}

// ---- the real files -----------------------------------------------------------------------

// Every tensor lies inside the file; touching its first and last byte lets ASan check it too.
void check_tensors_in_file(const GgufFile& g) {
  unsigned sum = 0;
  for (const GgufTensor& t : g.tensors()) {
    SCOPED_TRACE(t.name);
    EXPECT_GE(t.offset + g.data_offset(), g.data_offset());
    EXPECT_LE(g.data_offset() + t.offset + t.n_bytes, g.file_size());
    EXPECT_EQ(t.offset % g.alignment(), 0u);
    EXPECT_EQ(t.n_bytes, row_bytes(t.type, t.dims[0]) * (t.n_elements / t.dims[0]));
    sum += t.data[0] + t.data[t.n_bytes - 1];
  }
  (void)sum;
}

TEST(GgufRealFiles, Stories260K) {
  const auto path = test::data_path("models/stories260K/stories260K.gguf");
  SLM_REQUIRE_DATA(path);
  for (bool use_mmap : {true, false}) {
    const GgufFile g = GgufFile::open(path.string(), use_mmap);
    EXPECT_EQ(g.version(), 3u);
    EXPECT_EQ(g.alignment(), 32u);
    EXPECT_EQ(g.tensors().size(), 48u);
    EXPECT_EQ(g.metadata().size(), 19u);
    EXPECT_EQ(g.require_string("general.architecture"), "llama");
    EXPECT_EQ(g.require_uint("llama.embedding_length"), 64u);
    EXPECT_EQ(g.require_uint("llama.block_count"), 5u);
    EXPECT_EQ(g.get_uint("llama.attention.head_count_kv"), 4u);
    EXPECT_EQ(g.get_uint("tokenizer.ggml.seperator_token_id"), 4294967295u);
    EXPECT_NEAR(*g.get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-12);
    const auto tokens = g.get_string_array("tokenizer.ggml.tokens");
    ASSERT_TRUE(tokens.has_value());
    ASSERT_EQ(tokens->size(), 512u);
    EXPECT_EQ((*tokens)[1], "<s>");
    EXPECT_EQ(g.get_float_array("tokenizer.ggml.scores")->size(), 512u);
    EXPECT_EQ(g.get_int_array("tokenizer.ggml.token_type")->at(0), 2);
    const GgufTensor* emb = g.find_tensor("token_embd.weight");
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ(emb->dims, (std::vector<uint64_t>{64, 512}));
    EXPECT_EQ(emb->type, DType::kF32);
    EXPECT_EQ(emb->offset, 0u);
    EXPECT_EQ(emb->n_bytes, 64u * 512 * 4);
    const GgufTensor* q = g.find_tensor("blk.0.attn_k.weight");
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q->dims, (std::vector<uint64_t>{64, 32}));
    EXPECT_EQ(q->offset, 278784u);
    check_tensors_in_file(g);
  }
}

std::vector<std::filesystem::path> gguf_files_in(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".gguf") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void open_every_file_in(const std::string& relative, size_t at_least) {
  const auto dir = test::data_path(relative);
  SLM_REQUIRE_DATA(dir);
  const auto files = gguf_files_in(dir);
  EXPECT_GE(files.size(), at_least);
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    try {
      const GgufFile g = GgufFile::open(path.string());
      EXPECT_TRUE(g.version() == 2 || g.version() == 3);
      EXPECT_TRUE(g.get_string("general.architecture").has_value());
      check_tensors_in_file(g);
    } catch (const Error& e) {
      ADD_FAILURE() << e.what();
    }
  }
}

TEST(GgufRealFiles, Zoo) { open_every_file_in("zoo/gguf", 19); }
TEST(GgufRealFiles, LlamaCppVocabFiles) { open_every_file_in("tokenizer/llamacpp", 12); }

TEST(GgufRealFiles, StoriesQuantizedVariants) {
  const auto dir = test::data_path("models/stories260K");
  SLM_REQUIRE_DATA(dir);
  for (const auto& path : gguf_files_in(dir)) {
    SCOPED_TRACE(path.string());
    const GgufFile g = GgufFile::open(path.string(), false);
    EXPECT_EQ(g.tensors().size(), 48u);
    check_tensors_in_file(g);
  }
}

}  // namespace
}  // namespace slm
