#!/usr/bin/env bash
# Regenerates the results table of docs/performance.md: `slm bench` on `slm synth` models of
# the presets slm runs × the weight types, with tokens/s and % of the decode roofline
# (read bandwidth ÷ bytes of weights per token). The bandwidth is measured again just before each
# model's run: a shared host's drifts by a third within an hour, so each row is set against what
# the memory gave at its own time.
#
#   tools/perf_table.sh [BUILD_DIR]          (default: build)
# Environment (defaults are the documented settings, like llama-bench -p 512 -n 128):
#   P=512 N=128 R=3 T=2        slm bench -p/-n/-r/-t
#   BW_GBS=...                 read bandwidth in GB/s for every row's roofline; default:
#                              measured before each row with bench/limits_bench.cpp
#                              (BM_MemoryReadBandwidth, T threads)
#   PRESETS="smollm2-135m tinyllama-1.1b llama-3.2-1b"   TYPES="q4_0 q8_0 q4_k_m f16"
#   MODELS=/tmp/slm-synth       where synthetic models are written once and reused
#   LOAD=--no-mmap|--mmap       passed to slm bench (default: slm's default)
#   LLAMA_BENCH=path/to/llama-bench   also run llama.cpp's llama-bench on the same file, with the
#                              same -p/-n/-r/-t, just before slm, and add its t/s and slm's ratio
# Prints a Markdown table on stdout; progress on stderr.
set -euo pipefail
build=${1:-build}
slm="$build/slm"
P=${P:-512} N=${N:-128} R=${R:-3} T=${T:-2}
PRESETS=${PRESETS:-"smollm2-135m tinyllama-1.1b llama-3.2-1b"}
TYPES=${TYPES:-"q4_0 q8_0 q4_k_m f16"}
MODELS=${MODELS:-/tmp/slm-synth}
LOAD=${LOAD:-}
mkdir -p "$MODELS"

bandwidth() {
  if [[ -n "${BW_GBS:-}" ]]; then echo "$BW_GBS"; return; fi
  "$build/bench/slm_bench" --benchmark_filter="BM_MemoryReadBandwidth/min_time:1.000/real_time/threads:$T\$" \
    --benchmark_format=json 2>/dev/null |
    python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["benchmarks"][0]["bytes_per_second"]/1e9))'
}

LLAMA_BENCH=${LLAMA_BENCH:-}
header="| model | type | file MB | weights MB | pp$P t/s | tg$N t/s | read GB/s | roofline t/s | tg % of roofline |"
rule="|---|---|---|---|---|---|---|---|---|"
if [[ -n "$LLAMA_BENCH" ]]; then
  header+=" llama.cpp pp$P | llama.cpp tg$N | slm ÷ llama.cpp pp, tg |"
  rule+="---|---|---|"
fi
echo "$header"
echo "$rule"
for preset in $PRESETS; do
  for type in $TYPES; do
    model="$MODELS/$preset-$type.gguf"
    [[ -f "$model" ]] || "$slm" synth --preset "$preset" --type "$type" -o "$model" >&2
    echo "bench $preset $type (read bandwidth first, $T threads)..." >&2
    bw=$(bandwidth)
    llama="[]"
    if [[ -n "$LLAMA_BENCH" ]]; then
      llama=$("$LLAMA_BENCH" -m "$model" -p "$P" -n "$N" -r "$R" -t "$T" -o json 2>/dev/null) ||
        { echo "llama-bench failed on $model" >&2; llama="[]"; }
    fi
    out=$("$slm" bench -m "$model" -p "$P" -n "$N" -r "$R" -t "$T" $LOAD --json)
    python3 - "$preset" "$type" "$model" "$bw" "$out" "$llama" "$LLAMA_BENCH" <<'PY'
import json, os, sys
preset, typ, model, bw, out = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
llama = {"pp" if r["n_prompt"] else "tg": r for r in json.loads(sys.argv[6])}
rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
tests = {r["test"][:2]: r for r in rows}
# Bytes read per generated token: all tensor data, as in issue 4's roofline column (an untied
# embedding table is read one row per token, so this is slightly conservative for those).
per_token = rows[0]["model_bytes"]
roof = bw * 1e9 / per_token
fmt = lambda r: "%.2f ± %.2f" % (r["tokens_per_s"], r["stddev"]) if r else "-"
tg = tests.get("tg")
row = "| %s | %s | %.0f | %.0f | %s | %s | %.1f | %.1f | %s |" % (
    preset, typ, os.path.getsize(model) / 1e6, per_token / 1e6, fmt(tests.get("pp")), fmt(tg),
    bw, roof, "%.0f %%" % (100 * tg["tokens_per_s"] / roof) if tg else "-")
if sys.argv[7]:  # a llama-bench was given: its columns, "-" where it gave nothing
    ll = lambda k: "%.2f ± %.2f" % (llama[k]["avg_ts"], llama[k]["stddev_ts"]) if k in llama else "-"
    ratio = lambda k: ("%.2f×" % (tests[k]["tokens_per_s"] / llama[k]["avg_ts"])
                       if k in llama and k in tests else "-")
    row += " %s | %s | %s, %s |" % (ll("pp"), ll("tg"), ratio("pp"), ratio("tg"))
print(row)
PY
  done
done
echo
if [[ -n "${BW_GBS:-}" ]]; then bw_source="given as $BW_GBS"; else bw_source="measured before each row"; fi
[[ -z "$LLAMA_BENCH" ]] || echo "llama.cpp: $LLAMA_BENCH -p $P -n $N -r $R -t $T on the same file, just before slm."
echo "Roofline: read GB/s ($bw_source) ÷ weight bytes. Settings: slm bench -p $P -n $N -r $R -t $T $LOAD;" \
     "$(date -u +%Y-%m-%d), load average $(cut -d' ' -f1-3 /proc/loadavg)."
