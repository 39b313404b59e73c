#!/usr/bin/env bash
# One-step setup for slm on Debian 12: installs the Debian packages the build needs (only those
# missing), configures a Release build and builds it, then runs the CLI or the test suite.
#
#   tools/quickstart.sh run [slm run args...]   generate text (default: the bundled model)
#   tools/quickstart.sh test [ctest args...]    run the test suite
#
# Environment:
#   SLM_BUILD_DIR   build folder (default: build/ in the repository)
#   SLM_CMAKE_ARGS  extra CMake arguments, split on spaces (e.g. "-DSLM_WERROR=ON")
#
# Safe to run again: packages already installed are skipped and the build is incremental.
set -euo pipefail

# Everything this script says and everything the build prints goes to stderr; stdout is kept for
# what the user asked for (generated text, test results), so `run` can be piped.
exec 3>&1 1>&2

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'quickstart: error: %s\n' "$*"; exit 1; }
usage() {
  cat <<'EOF'
usage: tools/quickstart.sh run [slm run args...]
       tools/quickstart.sh test [ctest args...]
EOF
  exit 2
}

[[ $# -ge 1 ]] || usage
mode=$1
shift
[[ $mode == run || $mode == test ]] || usage

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${SLM_BUILD_DIR:-$repo/build}
jobs=$(nproc 2>/dev/null || echo 2)

# --- 1. Debian packages --------------------------------------------------------------------
# g++ brings libgomp (GCC's OpenMP runtime and omp.h), so no separate OpenMP package is needed;
# libomp-dev is LLVM's runtime and only matters for clang. libgmock-dev is not used.
required=(g++ cmake git libeigen3-dev libxsimd-dev libfmt-dev libgtest-dev libbenchmark-dev
  pkg-config libpcre2-dev libutf8proc-dev libsimdjson-dev)
optional=(ninja-build)  # faster builds; CMake falls back to Makefiles without it

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# How to run apt-get: directly as root, through sudo otherwise; empty when neither works.
apt_prefix() {
  if [[ $(id -u) -eq 0 ]]; then
    echo env
  elif command -v sudo >/dev/null; then
    echo sudo
  fi
}

if ! command -v dpkg-query >/dev/null; then
  say "Not a Debian system (no dpkg-query): skipping package checks."
  echo "Make sure these (or your system's equivalents) are installed: ${required[*]} ${optional[*]}"
else
  say "Checking Debian packages: ${required[*]} ${optional[*]}"
  missing_required=() missing_optional=()
  for p in "${required[@]}"; do installed "$p" || missing_required+=("$p"); done
  for p in "${optional[@]}"; do installed "$p" || missing_optional+=("$p"); done
  missing=("${missing_required[@]}" "${missing_optional[@]}")
  prefix=$(apt_prefix)
  if [[ ${#missing[@]} -eq 0 ]]; then
    echo "all installed"
  elif [[ -n $prefix ]]; then
    say "Installing missing packages: ${missing[*]}"
    $prefix apt-get update
    $prefix env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  elif [[ ${#missing_required[@]} -gt 0 ]]; then
    die "missing Debian packages: ${missing[*]}
  You are not root and sudo is not available. As root, run:
    apt-get update && apt-get install -y ${missing[*]}"
  else
    echo "optional packages missing (continuing without them): ${missing_optional[*]}"
  fi
fi

# --- 2. Configure and build ----------------------------------------------------------------
read -r -a extra_args <<<"${SLM_CMAKE_ARGS:-}"
configure=(cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release)
# A build folder keeps the generator it was made with; choose one only for a new folder.
if [[ ! -f $build_dir/CMakeCache.txt ]] && command -v ninja >/dev/null; then
  configure+=(-G Ninja)
fi
configure+=("${extra_args[@]}")

say "Configuring: ${configure[*]}"
"${configure[@]}"
say "Building with $jobs jobs: cmake --build $build_dir -j $jobs"
cmake --build "$build_dir" -j "$jobs"

# --- 3. Run or test ------------------------------------------------------------------------
case $mode in
  run)
    say "Running: $build_dir/slm run $*"
    exec "$build_dir/slm" run "$@" 1>&3
    ;;
  test)
    say "Testing: ctest --test-dir $build_dir --output-on-failure -j $jobs $*"
    exec ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" "$@" 1>&3 2>&1
    ;;
esac
