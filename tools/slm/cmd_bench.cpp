// `slm bench`: prompt processing (pp: P tokens in one batch) and text generation (tg: N tokens
// one at a time) throughput, mean ± stddev over REPS runs after one warm-up, like llama-bench.
// With --parallel N, tg advances N sequences by one token per forward pass (slm::Batch) and
// reports their aggregate tokens/s.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "args.h"
#include "common.h"

namespace slm::cli {
namespace {

struct BenchArgs {
  std::string model;
  int32_t prompt = 512;
  int32_t generate = 128;
  int32_t threads = 0;
  int32_t reps = 5;
  int32_t parallel = 1;
  bool json = false;
  std::string kv_type = "f16";
  LoadFlags load;
};

struct Stats {
  double mean = 0, stddev = 0;
};

Stats stats(const std::vector<double>& xs) {
  Stats s;
  for (double x : xs) s.mean += x;
  s.mean /= double(xs.size());
  for (double x : xs) s.stddev += (x - s.mean) * (x - s.mean);
  s.stddev = xs.size() > 1 ? std::sqrt(s.stddev / double(xs.size() - 1)) : 0;
  return s;
}

// Token ids that exercise real rows of the embedding without depending on a tokenizer. Each run
// gets other ids (shifted by `run`): a session's pool keeps the blocks of an earlier run published,
// and the same prompt again would be taken from them (prefix sharing) instead of computed.
std::vector<TokenId> bench_tokens(int32_t n, int32_t vocab, int32_t run) {
  std::vector<TokenId> ids(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    ids[size_t(i)] = TokenId((int64_t(i) * 7919 + 13 + run) % vocab);
  }
  return ids;
}

// Tokens per second of one run: pp evaluates all tokens in one call, tg one token per call.
double run_once(Session& session, const std::vector<TokenId>& tokens, bool batch) {
  session.reset();
  Stopwatch clock;
  if (batch) {
    session.eval(tokens);
  } else {
    for (const TokenId& id : tokens) session.eval(std::span(&id, 1));
  }
  return double(tokens.size()) * 1000.0 / clock.ms();
}

// Aggregate generated tokens per second of N sequences decoded together: each step is one forward
// pass over one token of every sequence.
double run_parallel(Batch& batch, std::vector<Session>& sessions,
                    const std::vector<TokenId>& tokens) {
  std::vector<BatchItem> items;
  for (Session& s : sessions) {
    s.reset();
    items.push_back({&s, {}});
  }
  Stopwatch clock;
  for (const TokenId& id : tokens) {
    for (BatchItem& item : items) item.tokens = std::span(&id, 1);
    batch.eval(items);
  }
  return double(tokens.size() * sessions.size()) * 1000.0 / clock.ms();
}

}  // namespace

int cmd_bench(std::span<char* const> args) {
  BenchArgs a;
  ArgParser p("slm bench",
              "slm bench [-m MODEL] [-p 512] [-n 128] [-t THREADS] [-r REPS] [-np N] "
              "[--kv-type T] [--json] [--mmap|--no-mmap]",
              "Measures prompt processing (pp) and generation (tg) tokens/s on synthetic token\n"
              "ids, mean ± stddev over REPS runs after a warm-up. Without -m it uses the bundled\n"
              "model. 0 skips a test.");
  p.add_string({"-m", "--model"}, "MODEL", "model file (.gguf) or Hugging Face directory; default: the bundled model",
               &a.model);
  p.add_int({"-p", "--n-prompt"}, "N", "prompt tokens evaluated in one batch (default 512)",
            &a.prompt, 0, 1 << 20);
  p.add_int({"-n", "--n-gen"}, "N", "tokens generated one at a time (default 128)", &a.generate,
            0, 1 << 20);
  p.add_int({"-t", "--threads"}, "N", "threads, 0 = all cores (default 0)", &a.threads, 0, 4096);
  p.add_int({"-r", "--repetitions"}, "N", "measured runs per test (default 5)", &a.reps, 1, 1000);
  p.add_int({"-np", "--parallel"}, "N",
            "tg: N sequences decoded together, one forward pass per token of all; reports their "
            "aggregate t/s (default 1)",
            &a.parallel, 1, 256);
  p.add_flag({"--json"}, "one JSON object per test instead of a table", &a.json);
  p.add_string({"--kv-type"}, "TYPE", "KV cache type: f32, f16 or q8_0 (default f16)", &a.kv_type);
  a.load.add_to(p);
  if (!p.parse(args)) return 0;
  KvType kv_type;
  try {
    kv_type = parse_kv_type(a.kv_type);
  } catch (const UsageError& e) {
    throw p.error(e.what());
  }

  const std::string path = resolve_model_path(a.model);
  const LoadOptions load_options = a.load.options(p);
  const Model model = Model::load(path, load_options);
  const ModelInfo& info = model.info();
  const int32_t threads =
      a.threads > 0 ? a.threads : int32_t(std::max(1u, std::thread::hardware_concurrency()));
  const int32_t context = std::max({a.prompt, a.generate, 1});
  const SessionOptions session_options{
      .context_length = context, .threads = threads, .kv_type = kv_type};
  Session session(model, session_options);
  std::vector<Session> parallel;  // tg's sequences with --parallel > 1
  for (int32_t i = 0; a.parallel > 1 && i < a.parallel; ++i) {
    parallel.emplace_back(model, session_options);
  }
  Batch batch(model, threads);
  const std::string isa = kernel_isa();

  if (!a.json) {
    fmt::print("model: {} ({}, {} parameters, {} bytes: {}; {}; {} bytes repacked; kv {})\n",
               path, info.architecture, info.parameter_count, info.weight_bytes,
               info.weight_types, load_options.use_mmap ? "mmap" : "no-mmap",
               info.weight_bytes_repacked, kv_type_name(kv_type));
    fmt::print("| {:>8} | {:>7} | {:>4} | {:>6} | {:>20} |\n", "test", "threads", "seqs", "isa",
               "t/s");
  }
  for (const auto& [name, n, batched_pp] :
       {std::tuple{"pp", a.prompt, true}, {"tg", a.generate, false}}) {
    if (n == 0) continue;
    const int32_t sequences = batched_pp || parallel.empty() ? 1 : a.parallel;
    int32_t runs = 0;
    const auto run = [&] {
      const std::vector<TokenId> tokens = bench_tokens(n, info.vocab_size, runs++);
      return sequences > 1 ? run_parallel(batch, parallel, tokens)
                           : run_once(session, tokens, batched_pp);
    };
    run();  // warm-up: page in the weights, grow the scratch
    std::vector<double> rates;
    for (int32_t r = 0; r < a.reps; ++r) rates.push_back(run());
    const Stats s = stats(rates);
    const std::string test = fmt::format("{}{}", name, n);
    if (a.json) {
      fmt::print(R"({{"test":"{}","tokens_per_s":{:.3f},"stddev":{:.3f},"threads":{},)"
                 R"("model_bytes":{},"isa":"{}","mmap":{},"kv":"{}","sequences":{}}})"
                 "\n",
                 test, s.mean, s.stddev, threads, info.weight_bytes, isa, load_options.use_mmap,
                 kv_type_name(kv_type), sequences);
    } else {
      fmt::print("| {:>8} | {:>7} | {:>4} | {:>6} | {:>11.2f} ± {:<6.2f} |\n", test, threads,
                 sequences, isa, s.mean, s.stddev);
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace slm::cli
