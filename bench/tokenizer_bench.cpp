// Tokenizer throughput (MB/s, one thread) on >= 1 MB of mixed-language text built from
// tokenizer/hf/corpus.json, and tokenizer.json load time. Data: $SLM_TEST_DATA or ../shared.
#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "slm/tokenizer.h"

namespace {

std::filesystem::path data_root() {
  const char* env = std::getenv("SLM_TEST_DATA");
  return env != nullptr ? std::filesystem::path(env) : std::filesystem::path(SLM_BENCH_DATA);
}

std::string tokenizer_json(const std::string& name) {
  return (data_root() / "tokenizer/hf" / name / "tokenizer.json").string();
}

// The corpus strings joined by newlines, repeated until the text is at least 1 MB.
const std::string& corpus_text() {
  static const std::string text = [] {
    simdjson::dom::parser parser;
    auto json = simdjson::padded_string::load((data_root() / "tokenizer/hf/corpus.json").string());
    std::string once;
    for (auto s : parser.parse(json.value()).get_array()) {
      once += s.get_string().value();
      once += '\n';
    }
    std::string out;
    while (out.size() < (1u << 20) + (1u << 18)) out += once;
    return out;
  }();
  return text;
}

void BM_Encode(benchmark::State& state, const std::string& name) {
  const auto path = tokenizer_json(name);
  if (!std::filesystem::exists(path)) return state.SkipWithError(("missing " + path).c_str());
  const slm::Tokenizer t = slm::Tokenizer::from_file(path);
  const std::string& text = corpus_text();
  size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = t.encode(text, false, true);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["MB"] = static_cast<double>(text.size()) / 1e6;
}

void BM_Load(benchmark::State& state, const std::string& name) {
  const auto path = tokenizer_json(name);
  if (!std::filesystem::exists(path)) return state.SkipWithError(("missing " + path).c_str());
  for (auto _ : state) {
    const slm::Tokenizer t = slm::Tokenizer::from_file(path);
    benchmark::DoNotOptimize(t.vocab_size());
  }
}

}  // namespace

BENCHMARK_CAPTURE(BM_Encode, llama3, std::string("llama3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, qwen3, std::string("qwen3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, gemma3, std::string("gemma3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, llama2, std::string("llama2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, deepseek_v3, std::string("deepseek_v3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, llama3, std::string("llama3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, qwen3, std::string("qwen3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, gemma3, std::string("gemma3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, llama2, std::string("llama2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, deepseek_v3, std::string("deepseek_v3"))->Unit(benchmark::kMillisecond);
