// Sliding-window layers keep only their window plus one chunk of positions (issue 7, item 2):
// the window table of PagedKvCache, chunked prefill (bit-identical to one pass), the zoo's
// sliding-window models (llama.cpp and transformers references) on inputs 4× their window with
// the cache bytes of those layers bounded, and fork / rewind / save-load on such a cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "slm/slm.h"
#include "src/api/model_impl.h"
#include "src/graph/decoder.h"
#include "src/runtime/paged_kv_cache.h"
#include "tests/allocation_counter.h"
#include "tests/test_data.h"

namespace slm {
namespace {

using test::data_path;

// 3 layers, rows of 8 f32, blocks of 4 positions: a block of one layer is 2·4·8·4 = 256 bytes.
TEST(WindowKvCache, WindowLayersReleaseWhatNoLaterQuerySees) {
  const auto pool = std::make_shared<KvBlockPool>(3, 8, KvElement::kF32, 4, size_t(1) << 20);
  const std::vector<int32_t> windows = {5, 0, 5};  // layers 0 and 2 slide
  PagedKvCache seq(pool, 64, windows);
  EXPECT_EQ(seq.window_layers(), 2);
  for (int32_t pos = 0; pos < 40; ++pos) {
    seq.prepare(pos, 1);
    for (int32_t layer = 0; layer < 3; ++layer) {
      std::memset(seq.k_row(layer, pos), pos + layer, 32);
      std::memset(seq.v_row(layer, pos), 100 + pos, 32);
    }
    // (pos − 5, pos] spans at most 3 blocks of 4; the full layer holds every position.
    EXPECT_LE(seq.window_bytes(), 3u * 2 * 256) << pos;
    EXPECT_EQ(seq.bytes() - seq.window_bytes(), size_t(pos / 4 + 1) * 256) << pos;
  }
  // The rows a query at 39 reads are intact, in both tables.
  for (int32_t layer = 0; layer < 3; ++layer) {
    const ref::KvRows k = seq.k_rows(layer, 35);
    for (size_t j = 0; j < 5; ++j) EXPECT_EQ(k.row(j)[0], 35 + int(j) + layer);
  }
  EXPECT_EQ(seq.k_rows(1, 0).row(0)[0], 1);  // the full layer still has position 0
  EXPECT_EQ(seq.first_cached(0), 32);        // (34, 39] from block 8 on
  EXPECT_EQ(seq.first_cached(1), 0);
  EXPECT_TRUE(seq.can_truncate(36));   // a query at 36 reads (31, 36): 32.. are kept
  EXPECT_FALSE(seq.can_truncate(35));  // it would read position 31
  EXPECT_TRUE(seq.can_truncate(0));

  PagedKvCache child = seq.fork();  // shares both tables; a write copies the window block
  child.prepare(40, 1);
  std::memset(child.k_row(0, 40), 7, 32);
  EXPECT_EQ(child.k_rows(0, 36).row(0)[0], 36);
  seq.prepare(40, 1);
  std::memset(seq.k_row(0, 40), 9, 32);
  EXPECT_EQ(child.k_row(0, 40)[0], 7);

  seq.truncate(37);
  EXPECT_EQ(seq.bytes() - seq.window_bytes(), 10u * 256);
  seq.truncate(0);
  EXPECT_EQ(seq.bytes(), 0u);
  child = PagedKvCache(pool, 64, windows);
  EXPECT_EQ(pool->blocks_in_use(), 0u);
}

TEST(WindowKvCache, BlocksOfOneSizeMakeRoomForAnother) {
  // Budget: one block of all 3 layers = three one-layer blocks.
  const auto pool = std::make_shared<KvBlockPool>(3, 8, KvElement::kF32, 4, 3 * 256);
  const int32_t whole = pool->allocate();
  EXPECT_THROW(pool->allocate(1), OutOfMemoryError);
  pool->release(whole);  // free: its memory can serve blocks of another size
  for (int i = 0; i < 3; ++i) pool->allocate(1);
  EXPECT_EQ(pool->bytes(), 3u * 256);
  EXPECT_THROW(pool->allocate(1), OutOfMemoryError);
}

std::vector<int32_t> ids_of(const std::filesystem::path& path) {
  std::string text = test::read_text(path);
  std::replace_if(
      text.begin(), text.end(), [](char c) { return c == '[' || c == ']' || c == ','; }, ' ');
  std::istringstream in(text);
  std::vector<int32_t> ids;
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

// Logits of every token in one pass through a contiguous cache: the path the reference tests
// check, every position cached, the window applied by the attention's mask alone.
std::vector<float> one_pass(const Model& model, const std::vector<int32_t>& tokens) {
  const auto& m = *model.impl();
  const ModelConfig& c = m.config;
  ContiguousKvCache cache(c.n_layer, int32_t(tokens.size()), c.n_head_kv * c.head_dim,
                          KvElement::kF32);
  Decoder decoder(c, m.weights);
  std::vector<float> out(tokens.size() * size_t(c.n_vocab));
  decoder.forward(tokens, 0, cache, true, out.data(), 2);
  return out;
}

struct WindowCase {
  const char* model;
  const char* logits;  // reference [n × vocab] for `tokens`
  const char* tokens;
  double max_nmse;
  const char* greedy = nullptr;  // llama.cpp's greedy ids and incremental logits
  const char* greedy_logits = nullptr;
};

void PrintTo(const WindowCase& c, std::ostream* os) { *os << c.model; }

class WindowReference : public testing::TestWithParam<WindowCase> {};

// The zoo inputs are 4× (or more) the window: evaluated chunk by chunk on a cache whose window
// layers hold at most window + chunk positions, the logits are the references', and exactly
// those of one pass over a full cache.
TEST_P(WindowReference, LongInputInChunksGivesTheReferenceLogits) {
  const WindowCase& wc = GetParam();
  SLM_REQUIRE_DATA(data_path(wc.model));
  const Model model = Model::load(data_path(wc.model));
  const ModelConfig& c = model.impl()->config;
  const std::vector<int32_t> tokens = ids_of(data_path(wc.tokens));
  const std::vector<float> expected = test::read_f32(data_path(wc.logits));
  const size_t V = size_t(c.n_vocab);
  const int32_t window = *std::max_element(c.sliding_window.begin(), c.sliding_window.end());
  ASSERT_GE(tokens.size(), 4u * size_t(window));
  const int32_t n_window = int32_t(std::count_if(c.sliding_window.begin(), c.sliding_window.end(),
                                                 [](int32_t w) { return w > 0; }));
  ASSERT_GT(n_window, 0);

  const size_t B = 4, chunk = 5, W = size_t(window);
  const size_t layer_block = 2 * B * size_t(c.n_head_kv * c.head_dim) * sizeof(float);
  const SessionOptions options{.threads = 2,
                               .kv_type = KvType::kF32,
                               .kv_block_tokens = int32_t(B),
                               .prefill_chunk_tokens = int32_t(chunk)};
  Session session(model, options);
  std::vector<float> got;
  for (size_t at = 0; at < tokens.size(); at += chunk) {
    const std::vector<int32_t> part(tokens.begin() + long(at),
                                    tokens.begin() + long(std::min(tokens.size(), at + chunk)));
    const auto l = session.eval(part, true);
    got.insert(got.end(), l.begin(), l.end());
    // Full layers: every position; window layers: the last window + chunk positions.
    const size_t full =
        (size_t(session.position()) + B - 1) / B * size_t(c.n_layer - n_window) * layer_block;
    const size_t bound = ((W + chunk + B - 1) / B + 1) * size_t(n_window) * layer_block;
    EXPECT_LE(session.kv_bytes() - full, bound) << "at " << session.position();
  }
  ASSERT_EQ(got.size(), expected.size());
  double worst = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    worst = std::max(worst, test::nmse(&got[i * V], &expected[i * V], V));
  }
  EXPECT_LE(worst, wc.max_nmse);
  EXPECT_EQ(got, one_pass(model, tokens));  // bit for bit

  // One eval of the whole input, chunked inside: the same bits.
  Session whole(model, options);
  const auto all = whole.eval(tokens, true);
  EXPECT_EQ(std::vector<float>(all.begin(), all.end()), got);

  // Then the incremental path on the released cache: llama.cpp's greedy steps.
  if (!wc.greedy) return;
  const std::vector<int32_t> greedy = test::read_ids(data_path(wc.greedy));
  const std::vector<float> steps = test::read_f32(data_path(wc.greedy_logits));
  worst = test::nmse(&all[(tokens.size() - 1) * V], &steps[0], V);
  for (size_t k = 1; k < greedy.size(); ++k) {
    const auto l = whole.eval(std::span(&greedy[k - 1], 1));
    worst = std::max(worst, test::nmse(l.data(), &steps[k * V], V));
  }
  EXPECT_LE(worst, wc.max_nmse);
  const size_t full =
      (size_t(whole.position()) + B - 1) / B * size_t(c.n_layer - n_window) * layer_block;
  EXPECT_LE(whole.kv_bytes() - full,
            ((W + chunk + B - 1) / B + 1) * size_t(n_window) * layer_block);
}

constexpr double kF32 = 1e-6, kGelu = 1e-4;  // DESIGN.md "Numerics", as tests/model_test.cpp
INSTANTIATE_TEST_SUITE_P(
    Zoo, WindowReference,
    testing::Values(
        WindowCase{"zoo/gguf/phi3-F32.gguf", "zoo/gguf/phi3-F32.logits.f32", "zoo/gguf/tokens.txt",
                   kF32, "zoo/gguf/phi3-F32.greedy.txt", "zoo/gguf/phi3-F32.greedy_logits.f32"},
        WindowCase{"zoo/gguf/gemma2-F32.gguf", "zoo/gguf/gemma2-F32.logits.f32",
                   "zoo/gguf/tokens.txt", kGelu, "zoo/gguf/gemma2-F32.greedy.txt",
                   "zoo/gguf/gemma2-F32.greedy_logits.f32"},
        WindowCase{"zoo/hf/mistral-swa", "zoo/hf/mistral-swa/logits.f32", "zoo/hf/tokens.json",
                   kF32},
        WindowCase{"zoo/hf/phi3", "zoo/hf/phi3/logits.f32", "zoo/hf/tokens.json", kF32},
        WindowCase{"zoo/hf/gemma2", "zoo/hf/gemma2/logits.f32", "zoo/hf/tokens.json", kF32},
        WindowCase{"zoo/hf/gemma3", "zoo/hf/gemma3/logits.f32", "zoo/hf/tokens.json", kF32}));

std::vector<int32_t> long_input(size_t n) {
  std::vector<int32_t> tokens(n);
  for (size_t i = 0; i < n; ++i) tokens[i] = int32_t(3 + (i * 131 + 17) % 500);
  tokens[0] = 1;
  return tokens;
}

// Longer than any reference: mistral-swa with its window forced to 5, 160 tokens (32 windows),
// chunk by chunk on the window table against one pass over the full contiguous cache; while a
// chunk runs, the window layers hold at most window + chunk positions, rounded out to blocks.
TEST(WindowSession, ForcedSmallWindowLongRunEqualsTheFullCache) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/mistral-swa"));
  const Model model = Model::load(
      test::hf_zoo_copy("mistral-swa", "\"sliding_window\": 16", "\"sliding_window\": 5"));
  const ModelConfig& c = model.impl()->config;
  ASSERT_EQ(c.window(0), 5);
  ASSERT_EQ(c.n_layer, 2);
  const std::vector<int32_t> tokens = long_input(160);
  const std::vector<float> want = one_pass(model, tokens);
  const size_t V = size_t(c.n_vocab), B = 4, W = 5;
  const size_t layer_block = 2 * B * size_t(c.n_head_kv * c.head_dim) * sizeof(float);
  for (const size_t chunk : {size_t(1), size_t(7), size_t(64)}) {
    // The pass itself, on the cache a session uses: bytes held right after each pass.
    const auto pool = std::make_shared<KvBlockPool>(c.n_layer, c.n_head_kv * c.head_dim,
                                                    KvElement::kF32, int32_t(B), size_t(1) << 30);
    PagedKvCache cache(pool, 160, c.sliding_window, int32_t(chunk));
    EXPECT_EQ(cache.window_layers(), 2);
    Decoder decoder(c, model.impl()->weights);
    std::vector<float> got(tokens.size() * V);
    for (size_t at = 0; at < tokens.size(); at += chunk) {
      const size_t n = std::min(chunk, tokens.size() - at);
      decoder.forward(std::span(tokens).subspan(at, n), int32_t(at), cache, true, &got[at * V], 2);
      EXPECT_LE(cache.bytes(), ((W + chunk + B - 1) / B + 1) * 2 * layer_block) << chunk;
    }
    EXPECT_EQ(got, want) << chunk;

    Session s(model, {.threads = 2,
                      .kv_type = KvType::kF32,
                      .kv_block_tokens = int32_t(B),
                      .prefill_chunk_tokens = int32_t(chunk)});
    const auto l = s.eval(tokens, true);
    EXPECT_EQ(std::vector<float>(l.begin(), l.end()), want) << chunk;
    EXPECT_LE(s.kv_bytes(), ((W + chunk + B - 1) / B + 1) * 2 * layer_block) << chunk;
  }
}

TEST(WindowSession, ForkRewindAndPromptOnAWindowCache) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/gemma3"));
  const Model model = Model::load(data_path("zoo/hf/gemma3"));  // window 16 on 5 of 6 layers
  const std::vector<int32_t> tokens = long_input(70), more = {5, 6, 7, 8};
  const SessionOptions options{
      .threads = 1, .kv_type = KvType::kF32, .kv_block_tokens = 8, .prefill_chunk_tokens = 16};
  std::vector<int32_t> all = tokens;
  all.insert(all.end(), more.begin(), more.end());
  Session cold(model, options);
  const auto want_all = cold.eval(all, true);
  const std::vector<float> want(want_all.end() - long(more.size() * 512), want_all.end());

  Session s(model, options);
  s.eval(tokens);
  Session child = s.fork();
  const auto got = child.eval(more, true);
  EXPECT_EQ(std::vector<float>(got.begin(), got.end()), want);
  const auto again = s.eval(more, true);  // the parent's window blocks were not touched
  EXPECT_EQ(std::vector<float>(again.begin(), again.end()), want);

  // Within the window: rewind and re-decode as a fresh run would.
  s.rewind(70);
  const auto redo = s.eval(more, true);
  EXPECT_EQ(std::vector<float>(redo.begin(), redo.end()), want);
  // Further back, the window's rows are gone: a clear error, the sequence untouched.
  try {
    s.rewind(40);
    ADD_FAILURE() << "rewind into released rows";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("sliding-window"), std::string::npos) << e.what();
  }
  EXPECT_EQ(s.position(), 74);
  // prompt() with a prefix shared only that far back starts over, and still gives a cold run's
  // logits.
  std::vector<int32_t> other(tokens.begin(), tokens.begin() + 40);
  other.insert(other.end(), more.begin(), more.end());
  const Session::PromptResult r = s.prompt(other, true);
  EXPECT_EQ(r.reused, 0);
  Session fresh(model, options);
  const auto cold_other = fresh.eval(other, true);
  EXPECT_EQ(std::vector<float>(r.logits.begin(), r.logits.end()),
            std::vector<float>(cold_other.begin(), cold_other.end()));
  s.rewind(0);
  EXPECT_EQ(s.position(), 0);
  EXPECT_THROW(Session(model, {.prefill_chunk_tokens = 0}), InvalidArgumentError);
}

TEST(WindowSession, SavedWindowStateResumesBitIdentically) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/mistral-swa"));
  const Model model = Model::load(data_path("zoo/hf/mistral-swa"));  // window 16, every layer
  // The same weights with a wider window (copied first: temp_dir() starts empty on each call).
  const Model wide = Model::load(
      test::hf_zoo_copy("mistral-swa", "\"sliding_window\": 16", "\"sliding_window\": 40"));
  const std::filesystem::path dir = test::temp_dir() / "states";
  std::filesystem::create_directories(dir);
  const SessionOptions options{
      .threads = 1, .kv_type = KvType::kF32, .kv_block_tokens = 4, .prefill_chunk_tokens = 8};
  Session a(model, options);
  a.eval(long_input(100));
  a.save_state((dir / "window.bin").string());
  const std::vector<int32_t> more = {9, 10, 11};
  const auto l = a.eval(more, true);
  const std::vector<float> want(l.begin(), l.end());
  // Only the window's rows were written, not the 100 positions'.
  const size_t row = size_t(model.impl()->config.n_head_kv * model.impl()->config.head_dim) * 4;
  EXPECT_LT(std::filesystem::file_size(dir / "window.bin"), 100 * 2 * 2 * row);

  Session b(model, {.threads = 1, .kv_type = KvType::kF32, .kv_block_tokens = 16});
  b.load_state((dir / "window.bin").string());
  EXPECT_EQ(b.position(), 100);
  const auto got = b.eval(more, true);
  EXPECT_EQ(std::vector<float>(got.begin(), got.end()), want);

  // The wider window needs rows the file does not have.
  Session c(wide, options);
  c.eval(std::vector<int32_t>{1, 2});
  try {
    c.load_state((dir / "window.bin").string());
    ADD_FAILURE() << "loaded a state without the rows the next token reads";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("needs them from"), std::string::npos) << e.what();
  }
  EXPECT_EQ(c.position(), 2);
}

// A version-1 state file (every layer, every row; no first positions) still loads.
TEST(WindowSession, VersionOneStateFilesStillLoad) {
  SLM_REQUIRE_DATA(data_path("models/stories260K/stories260K.gguf"));
  const Model model = Model::load(data_path("models/stories260K/stories260K.gguf").string());
  const ModelConfig& c = model.impl()->config;
  const std::filesystem::path dir = test::temp_dir();
  Session a(model, {.threads = 1});
  const std::vector<int32_t> tokens = {1, 403, 407, 261, 378};
  a.eval(tokens);
  a.save_state((dir / "v2.bin").string());
  const auto l = a.eval(std::vector<int32_t>{9}, true);
  const std::vector<float> want(l.begin(), l.end());
  // Header: magic 8, fingerprint 8, element 4, layers 4, row bytes 8, tokens 4, ids; then the
  // per-layer first positions that version 1 lacks.
  std::string v1 = test::read_text(dir / "v2.bin");
  v1[7] = '1';
  v1.erase(36 + tokens.size() * 4, size_t(c.n_layer) * 4);
  std::ofstream(dir / "v1.bin", std::ios::binary) << v1;
  Session b(model, {.threads = 1});
  b.load_state((dir / "v1.bin").string());
  EXPECT_EQ(b.tokens(), tokens);
  const auto got = b.eval(std::vector<int32_t>{9}, true);
  EXPECT_EQ(std::vector<float>(got.begin(), got.end()), want);
}

// generate()'s context shift keeps a prefix whose window rows are gone: prompt() starts over
// and generation goes on.
TEST(WindowSession, ContextShiftOnAWindowModel) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/mistral-swa"));
  const Model model = Model::load(data_path("zoo/hf/mistral-swa"));
  Session s(model, {.context_length = 40, .threads = 1, .prefill_chunk_tokens = 4});
  GenerateOptions options{
      .max_tokens = 60, .on_full_context = ContextPolicy::kShift, .keep_tokens = 2};
  options.sampling.temperature = 0;
  options.ignore_eos = true;
  const GenerateResult r = generate(s, long_input(10), options);
  EXPECT_EQ(r.tokens.size(), 60u);
  EXPECT_GE(r.context_shifts, 1);
  EXPECT_FALSE(r.stopped_by_context);
}

// Decoding past the window recycles the window table's blocks through the pool: constant
// memory, and after the first cycle no allocation at all.
TEST(WindowSession, DecodingPastTheWindowAllocatesNothing) {
  SLM_REQUIRE_DATA(data_path("zoo/hf/mistral-swa"));
  const Model model = Model::load(data_path("zoo/hf/mistral-swa"));  // window 16, every layer
  Session s(model, {.threads = 1, .kv_block_tokens = 4, .prefill_chunk_tokens = 8});
  s.eval(long_input(30));
  int32_t next = 7;
  for (int step = 0; step < 20; ++step) s.eval(std::span(&next, 1));
  const size_t held = s.kv_bytes();
  test::AllocationCounter counter;
  for (int step = 0; step < 40; ++step) s.eval(std::span(&next, 1));  // 10 blocks of 4
  EXPECT_EQ(counter.count(), 0u);
  EXPECT_EQ(s.kv_bytes(), held);
}

// A later chunk that runs out of KV memory leaves the sequence where it was (no windows here,
// so rewinding is always possible).
TEST(WindowSession, AFailedChunkRewindsTheEval) {
  SLM_REQUIRE_DATA(data_path("models/stories260K/stories260K.gguf"));
  const Model model = Model::load(data_path("models/stories260K/stories260K.gguf").string());
  const ModelConfig& c = model.impl()->config;
  const size_t block = size_t(c.n_layer) * 2 * 4 * size_t(c.n_head_kv * c.head_dim) * 2;
  Session s(model, {.threads = 1,
                    .kv_block_tokens = 4,
                    .kv_budget_bytes = 3 * block,
                    .prefill_chunk_tokens = 4});
  s.eval(std::vector<int32_t>{1, 403});
  EXPECT_THROW(s.eval(long_input(16)), OutOfMemoryError);  // 18 positions need 5 blocks
  EXPECT_EQ(s.position(), 2);
  EXPECT_EQ(s.kv_bytes(), block);
}

}  // namespace
}  // namespace slm
