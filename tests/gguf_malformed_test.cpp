// Malformed GGUF files: each must give FormatError (or UnsupportedError / IoError where that is
// the truth) with a message naming the file and the fault, never a crash, a hang or a huge
// allocation. Runs under ASan+UBSan in CI.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "slm/error.h"
#include "src/format/gguf.h"
#include "src/format/gguf_writer.h"
#include "tests/gguf_test_util.h"
#include "tests/test_data.h"

namespace slm {
namespace {

using test::write_temp;

constexpr uint64_t kHuge = uint64_t{1} << 60;
constexpr uint64_t kMaxU64 = std::numeric_limits<uint64_t>::max();

// Hand-made GGUF bytes, for layouts the writer refuses to produce.
struct Raw {
  std::vector<uint8_t> b;

  Raw& bytes(const void* p, size_t n) {
    const size_t old = b.size();
    b.resize(old + n);
    if (n > 0) std::memcpy(b.data() + old, p, n);
    return *this;
  }
  Raw& u8(uint8_t v) { return bytes(&v, 1); }
  Raw& u32(uint32_t v) { return bytes(&v, 4); }
  Raw& u64(uint64_t v) { return bytes(&v, 8); }
  Raw& str(std::string_view s) {
    u64(s.size());
    return bytes(s.data(), s.size());
  }
  Raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    bytes("GGUF", 4);
    u32(version);
    u64(n_tensors);
    return u64(n_kv);
  }
  Raw& key(std::string_view k, GgufType type) {
    str(k);
    return u32(static_cast<uint32_t>(type));
  }
  Raw& tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name);
    u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    u32(type);
    return u64(offset);
  }
  Raw& pad(size_t alignment = 32) {
    while (b.size() % alignment != 0) b.push_back(0);
    return *this;
  }
  Raw& zeros(size_t n) {
    b.resize(b.size() + n, 0);
    return *this;
  }
};

// `levels` arrays nested inside each other, the innermost holding one uint8.
Raw nested_arrays(int levels) {
  Raw r;
  r.header(0, 1).key("deep", GgufType::kArray);
  for (int k = 1; k < levels; ++k) r.u32(static_cast<uint32_t>(GgufType::kArray)).u64(1);
  r.u32(static_cast<uint32_t>(GgufType::kUint8)).u64(1).u8(7);
  return r;
}

// One F32 tensor of 8 elements with the given info fields, and room for its data.
Raw one_tensor(std::vector<uint64_t> dims, uint32_t type = 0, uint64_t offset = 0,
               size_t data_bytes = 32) {
  Raw r;
  r.header(1, 0)
      .tensor("blk.0.attn_q.weight", std::move(dims), type, offset)
      .pad()
      .zeros(data_bytes);
  return r;
}

struct Case {
  std::string name;
  std::function<std::vector<uint8_t>()> make;
  ErrorKind kind;
  std::string message;  // must appear in what()
};

std::vector<Case> cases() {
  const auto fmt_ = ErrorKind::kFormat;
  const auto unsup = ErrorKind::kUnsupported;
  std::vector<Case> c;
  c.push_back({"Empty", [] { return std::vector<uint8_t>{}; }, fmt_, "not a GGUF file"});
  c.push_back({"ThreeBytes",
               [] {
                 return std::vector<uint8_t>{'G', 'G', 'U'};
               },
               fmt_, "not a GGUF file"});
  c.push_back({"BadMagic",
               [] {
                 Raw r;
                 r.header(0, 0);
                 std::memcpy(r.b.data(), "GGML", 4);
                 return r.b;
               },
               fmt_, "magic"});
  c.push_back({"MagicOnly", [] { return Raw().bytes("GGUF", 4).b; }, fmt_, "version"});
  c.push_back({"Version1", [] { return Raw().header(0, 0, 1).b; }, unsup, "version 1"});
  c.push_back({"Version0", [] { return Raw().header(0, 0, 0).b; }, unsup, "version 0"});
  c.push_back({"Version4", [] { return Raw().header(0, 0, 4).b; }, unsup, "version 4"});
  c.push_back(
      {"ByteSwappedVersion", [] { return Raw().header(0, 0, 0x03000000).b; }, unsup, "big-endian"});
  c.push_back({"ByteSwappedVersion2", [] { return Raw().header(0, 0, 0x02000000).b; }, unsup,
               "big-endian"});
  c.push_back({"TruncatedCounts", [] { return Raw().bytes("GGUF", 4).u32(3).u64(0).b; }, fmt_,
               "truncated"});
  c.push_back({"HugeKvCount", [] { return Raw().header(0, kHuge).b; }, fmt_, "metadata count"});
  c.push_back(
      {"MaxKvCount", [] { return Raw().header(0, kMaxU64).zeros(64).b; }, fmt_, "metadata count"});
  c.push_back({"HugeTensorCount", [] { return Raw().header(kHuge, 0).b; }, fmt_, "tensor count"});
  c.push_back({"TensorCountTooBigAfterMetadata",
               [] {
                 Raw r;
                 r.header(3, 1).key("a", GgufType::kString).str(std::string(60, 'x'));
                 return r.b;
               },
               fmt_, "tensor count"});
  c.push_back({"KeyLengthPastEof", [] { return Raw().header(0, 1).u64(1000).zeros(20).b; }, fmt_,
               "past the end"});
  c.push_back({"KeyLengthMax", [] { return Raw().header(0, 1).u64(kMaxU64).zeros(20).b; }, fmt_,
               "past the end"});
  c.push_back(
      {"StringValuePastEof",
       [] { return Raw().header(0, 1).key("general.name", GgufType::kString).u64(kHuge).b; }, fmt_,
       "general.name"});
  c.push_back({"UnknownValueType", [] { return Raw().header(0, 1).str("k").u32(13).zeros(8).b; },
               fmt_, "unknown value type 13"});
  c.push_back({"BoolNotZeroOrOne",
               [] { return Raw().header(0, 1).key("b", GgufType::kBool).u8(2).b; }, fmt_,
               "not 0 or 1"});
  c.push_back(
      {"DuplicateKey",
       [] {
         Raw r;
         r.header(0, 2).key("a.b", GgufType::kUint8).u8(1).key("a.b", GgufType::kUint8).u8(2);
         return r.b;
       },
       fmt_, "duplicate key"});
  c.push_back({"HugeArrayOfU8",
               [] {
                 Raw r;
                 r.header(0, 1).key("arr", GgufType::kArray).u32(0).u64(kHuge).zeros(16);
                 return r.b;
               },
               fmt_, "array of"});
  c.push_back({"HugeArrayOfArrays",
               [] {
                 Raw r;
                 r.header(0, 1).key("arr", GgufType::kArray).u32(9).u64(kMaxU64).zeros(16);
                 return r.b;
               },
               fmt_, "array of"});
  c.push_back({"TooManyArrayItems",  // 17 M bytes that would decode to ~1.7 GB
               [] {
                 Raw r;
                 r.header(0, 1).key("arr", GgufType::kArray).u32(0).u64((1u << 24) + 1);
                 return r.zeros((1u << 24) + 1).b;
               },
               fmt_, "elements in all"});
  c.push_back({"ArrayOfStringsTruncated",
               [] {
                 Raw r;
                 r.header(0, 1).key("tokenizer.ggml.tokens", GgufType::kArray).u32(8).u64(10);
                 r.str("a").str("b").str("c");
                 return r.b;
               },
               fmt_, "tokenizer.ggml.tokens"});
  c.push_back({"ArrayElementStringPastEof",
               [] {
                 Raw r;
                 r.header(0, 1).key("toks", GgufType::kArray).u32(8).u64(2).str("a").u64(kHuge);
                 return r.b;
               },
               fmt_, "past the end"});
  c.push_back({"ArrayUnknownElementType",
               [] { return Raw().header(0, 1).key("a", GgufType::kArray).u32(99).u64(0).b; }, fmt_,
               "unknown element type 99"});
  c.push_back({"ArraysNestedTooDeep", [] { return nested_arrays(65).b; }, fmt_, "nested deeper"});
  c.push_back(
      {"ArraysNestedVeryDeep", [] { return nested_arrays(100000).b; }, fmt_, "nested deeper"});
  c.push_back(
      {"AlignmentZero",
       [] { return Raw().header(0, 1).key("general.alignment", GgufType::kUint32).u32(0).b; }, fmt_,
       "general.alignment"});
  c.push_back(
      {"AlignmentNotPowerOfTwo",
       [] { return Raw().header(0, 1).key("general.alignment", GgufType::kUint32).u32(48).b; },
       fmt_, "power of two"});
  c.push_back(
      {"AlignmentWrongType",
       [] { return Raw().header(0, 1).key("general.alignment", GgufType::kUint64).u64(32).b; },
       fmt_, "expected uint32"});
  c.push_back({"TensorNameTruncated", [] { return Raw().header(1, 0).u64(100).zeros(30).b; }, fmt_,
               "past the end"});
  c.push_back({"TensorInfoTruncated",
               [] {
                 Raw r;
                 r.header(1, 0).str("t").u32(4).u64(8).u64(8).zeros(4);  // half the third dim
                 return r.b;
               },
               fmt_, "truncated"});
  c.push_back({"NDimsFive", [] { return one_tensor({1, 1, 1, 1, 8}).b; }, fmt_, "n_dims is 5"});
  c.push_back({"NDimsZero", [] { return one_tensor({}).zeros(16).b; }, fmt_, "n_dims is 0"});
  c.push_back({"NDimsHuge", [] { return Raw().header(1, 0).str("t").u32(0xFFFFFFFF).zeros(64).b; },
               fmt_, "n_dims"});
  c.push_back({"ZeroDim", [] { return one_tensor({8, 0}).b; }, fmt_, "dimension 1 is 0"});
  c.push_back({"DimsProductOverflows",
               [] {
                 return one_tensor({1ull << 32, 1ull << 32}).b;
               },
               fmt_, "overflows"});
  c.push_back({"ByteSizeOverflows",
               [] {
                 return one_tensor({1ull << 62, 2}).b;
               },
               fmt_, "overflows"});
  c.push_back({"UnknownTypeId", [] { return one_tensor({8}, 1000).b; }, unsup,
               "unknown ggml type id 1000"});
  c.push_back(
      {"RemovedTypeId", [] { return one_tensor({8}, 4).b; }, unsup, "unknown ggml type id 4"});
  c.push_back({"RowNotMultipleOfBlock", [] { return one_tensor({33}, 2).b; }, fmt_,
               "not a multiple of the q4_0 block size 32"});
  c.push_back({"MisalignedOffset", [] { return one_tensor({4}, 0, 4).b; }, fmt_,
               "not a multiple of the alignment 32"});
  c.push_back({"DataOutsideFile", [] { return one_tensor({8}, 0, 0, 16).b; }, fmt_,
               "lies outside the file"});
  c.push_back({"OffsetOutsideFile", [] { return one_tensor({8}, 0, 1024).b; }, fmt_,
               "lies outside the file"});
  c.push_back({"OffsetNearMax", [] { return one_tensor({8}, 0, kMaxU64 - 31).b; }, fmt_,
               "lies outside the file"});
  c.push_back({"DataSectionPastEof",
               [] { return Raw().header(1, 0).tensor("t", {8}, 0, 0).b; },  // no padding, no data
               fmt_, "data section starts"});
  c.push_back({"DuplicateTensorNames",
               [] {
                 Raw r;
                 r.header(2, 0).tensor("w", {8}, 0, 0).tensor("w", {8}, 0, 32).pad().zeros(64);
                 return r.b;
               },
               fmt_, "duplicate tensor name"});
  return c;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class GgufMalformed : public ::testing::TestWithParam<Case> {};

TEST_P(GgufMalformed, GivesAClearError) {
  const Case& c = GetParam();
  const std::string path = write_temp(c.name + ".gguf", c.make());
  for (bool use_mmap : {true, false}) {
    try {
      GgufFile::open(path, use_mmap);
      ADD_FAILURE() << c.name << ": opened without error";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_EQ(e.kind(), c.kind) << what;
      EXPECT_EQ(what.rfind(path + ": ", 0), 0u) << "message does not start with the path: " << what;
      EXPECT_NE(what.find(c.message), std::string::npos)
          << "expected '" << c.message << "' in: " << what;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Table, GgufMalformed, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

TEST(GgufMalformedEdges, NestingAtTheLimitIsAccepted) {
  const GgufFile g = GgufFile::open(write_temp("deep.gguf", nested_arrays(64).b));
  const GgufValue* v = g.find("deep");
  ASSERT_NE(v, nullptr);
  int depth = 1;
  while (v->elem_type == GgufType::kArray) {
    v = &v->items[0];
    ++depth;
  }
  EXPECT_EQ(depth, 64);
  EXPECT_EQ(v->items[0].u, 7u);
}

TEST(GgufMalformedEdges, VocabOnlyFileMayEndAfterMetadata) {
  Raw r;
  r.header(0, 1).key("general.architecture", GgufType::kString).str("llama");
  const GgufFile g = GgufFile::open(write_temp("vocab.gguf", r.b));
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
}

// Bytes needed for a valid file: the end of the last tensor's data (padding after it may go).
size_t required_size(const GgufWriter& w) {
  const GgufLayout l = w.layout();
  if (w.n_tensors() == 0) return l.file_size;
  const std::vector<uint8_t> bytes = w.to_bytes();
  const GgufFile g = GgufFile::open(write_temp("full.gguf", bytes));
  size_t end = 0;
  for (const GgufTensor& t : g.tensors()) {
    end = std::max<size_t>(end, g.data_offset() + t.offset + t.n_bytes);
  }
  return end;
}

void expect_truncation_fails(const std::vector<uint8_t>& full, size_t cut, size_t required,
                             bool use_mmap) {
  const std::vector<uint8_t> part(full.begin(), full.begin() + static_cast<ptrdiff_t>(cut));
  const std::string path = write_temp("cut.gguf", part);
  if (cut >= required) {
    EXPECT_NO_THROW(GgufFile::open(path, use_mmap)) << "cut at " << cut;
    return;
  }
  try {
    GgufFile::open(path, use_mmap);
    ADD_FAILURE() << "truncated at " << cut << " of " << full.size() << " opened";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(GgufTruncation, AtEverySectionBoundary) {
  const GgufWriter w = test::small_model_writer();
  const std::vector<uint8_t> full = w.to_bytes();
  const GgufLayout l = w.layout();
  const size_t required = required_size(w);
  std::vector<size_t> cuts = {
      0, 4, 8, 16, 24, l.tensor_infos_offset, l.data_offset, required - 1, required};
  for (size_t off : l.kv_offsets) cuts.insert(cuts.end(), {off, off + 8, off + 9});
  for (size_t off : l.tensor_info_offsets) cuts.insert(cuts.end(), {off, off + 8, off + 12});
  for (uint64_t off : l.tensor_offsets) cuts.insert(cuts.end(), {l.data_offset + off + 1});
  for (size_t cut : cuts) {
    SCOPED_TRACE(cut);
    expect_truncation_fails(full, cut, required, true);
  }
}

TEST(GgufTruncation, AtEveryByte) {
  for (bool with_tensors : {true, false}) {
    GgufWriter w = test::small_model_writer();
    if (!with_tensors) {
      w = GgufWriter();
      w.set_string("general.architecture", "llama");
      w.set_array("a", std::vector<int32_t>{1, 2, 3});
      w.set("n",
            GgufMetaValue::array_of(GgufType::kArray,
                                    {GgufMetaValue::string_array(std::vector<std::string>{"x"})}));
    }
    const std::vector<uint8_t> full = w.to_bytes();
    const size_t required = required_size(w);
    for (size_t cut = 0; cut <= full.size(); ++cut) {
      expect_truncation_fails(full, cut, required, cut % 2 == 0);
    }
  }
}

// Overwrite every byte before the tensor data with values that often mean "huge" or "unknown":
// whatever happens must be a clean slm::Error or a file whose tensors lie inside it.
TEST(GgufMutation, EveryHeaderByte) {
  const GgufWriter w = test::small_model_writer();
  const std::vector<uint8_t> full = w.to_bytes();
  const size_t header_end = w.layout().data_offset;
  size_t opened = 0, refused = 0;
  for (size_t pos = 0; pos < header_end; ++pos) {
    for (uint8_t value : {uint8_t{0x00}, uint8_t{0x01}, uint8_t{0x7F}, uint8_t{0xFF}}) {
      if (full[pos] == value) continue;
      std::vector<uint8_t> bytes = full;
      bytes[pos] = value;
      const std::string path = write_temp("mut.gguf", bytes);
      try {
        const GgufFile g = GgufFile::open(path);
        for (const GgufTensor& t : g.tensors()) {
          ASSERT_LE(g.data_offset() + t.offset + t.n_bytes, g.file_size());
        }
        ++opened;
      } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind(path, 0), 0u) << e.what();
        ++refused;
      }
    }
  }
  EXPECT_GT(refused, 0u);
  EXPECT_GT(opened, 0u);  // e.g. a changed letter in a key or a string value
}

TEST(GgufTruncation, RealFileCutInMetadataAndData) {
  const auto path = test::data_path("models/stories260K/stories260K.gguf");
  SLM_REQUIRE_DATA(path);
  const std::string s = test::read_text(path);
  const std::vector<uint8_t> full(s.begin(), s.end());
  size_t required = 0;
  {
    const GgufFile g = GgufFile::open(path.string());
    for (const GgufTensor& t : g.tensors()) {
      required = std::max<size_t>(required, g.data_offset() + t.offset + t.n_bytes);
    }
  }
  ASSERT_GT(required, 13000u);
  // Inside the token list, inside the tensor infos, inside the last tensor.
  for (size_t cut : {size_t{100}, size_t{5000}, size_t{13000}, required - 1}) {
    SCOPED_TRACE(cut);
    expect_truncation_fails(full, cut, required, true);
  }
}

}  // namespace
}  // namespace slm
