#!/usr/bin/env bash
# Interleaved A/B comparison of two herald binaries with bench/e2e/run.sh. This VM's speed drifts
# by a quarter or more within minutes, so two sets run one after the other compare the machine,
# not the code: here the runs alternate, each pair in the opposite order of the one before
# (A B, B A, A B, ...), and the summary is the median over pairs of B − A for Herald's CPU per
# delivered trigger, in total and by thread, with how many pairs went each way.
#
# Usage: bench/e2e/ab.sh [--pairs N] HERALD_A HERALD_B [run.sh arguments...]
# Env:   as run.sh (REQUESTS, CONNECTIONS, ...); BUILD_DIR (build) provides the sink and the load
#        generator. Results stay in a temporary directory (bench/results is left alone).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
PAIRS=5

die() { echo "ab.sh: $*" >&2; exit 1; }

if [[ ${1:-} == --pairs ]]; then
  PAIRS=${2:?}
  shift 2
fi
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
(($# >= 2)) || die "usage: ab.sh [--pairs N] HERALD_A HERALD_B [run.sh arguments...]"
[[ $PAIRS =~ ^[1-9][0-9]*$ ]] || die "--pairs must be a positive integer, got '$PAIRS'"
declare -A BIN=([A]=$(realpath -e "$1" 2>/dev/null || true) [B]=$(realpath -e "$2" 2>/dev/null || true))
shift 2
for side in A B; do [[ -x ${BIN[$side]} ]] || die "binary $side is not an executable file"; done
for tool in herald_bench_sink herald_bench_load; do
  [[ -x $BUILD_DIR/$tool ]] || die "$BUILD_DIR/$tool not found (build the bench targets first)"
done
command -v jq >/dev/null || die "'jq' is required"

TMP=$(mktemp -d -t herald-ab.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
for side in A B; do
  mkdir "$TMP/$side"
  ln -s "${BIN[$side]}" "$TMP/$side/herald"
  ln -s "$(realpath "$BUILD_DIR/herald_bench_sink")" "$TMP/$side/herald_bench_sink"
  ln -s "$(realpath "$BUILD_DIR/herald_bench_load")" "$TMP/$side/herald_bench_load"
done
echo "A = ${BIN[A]}"
echo "B = ${BIN[B]}"

# One run: its report as JSON in $TMP/<side>-<pair>.json, one summary line on stdout.
run_one() {
  local side=$1 pair=$2
  shift 2
  if ! REV=$side BUILD_DIR=$TMP/$side RESULTS_DIR=$TMP/results RESULT_JSON=$TMP/$side-$pair.json \
    "$ROOT/bench/e2e/run.sh" "$@" >"$TMP/$side-$pair.log" 2>&1; then
    tail -5 "$TMP/$side-$pair.log" >&2
    die "run $pair of $side failed"
  fi
  jq -r --arg pair "$pair" '"pair \($pair) \(.rev): \(.herald_cpu_us) µs/trigger (\(.herald_cpu_by_thread)), \(.triggers_per_s) triggers/s, ack p99 \(.ack_p99_ms) ms, ratio \(.ratio)"' \
    "$TMP/$side-$pair.json"
}

for ((pair = 1; pair <= PAIRS; pair++)); do
  if ((pair % 2)); then order=(A B); else order=(B A); fi
  for side in "${order[@]}"; do run_one "$side" "$pair" "$@"; done
done

# Per pair: B − A for the total and for each thread (µs per trigger), and B ÷ A for triggers/s.
for ((pair = 1; pair <= PAIRS; pair++)); do
  jq -n --slurpfile a "$TMP/A-$pair.json" --slurpfile b "$TMP/B-$pair.json" '
    def threads: .herald_cpu_by_thread | split(", ") | map(select(length > 0) | split(" ")
      | {key: (.[0] | sub("^herald-"; "")), value: (.[1] | tonumber)}) | from_entries;
    ($a[0] | threads) as $ta | ($b[0] | threads) as $tb
    | {total: ($b[0].herald_cpu_us - $a[0].herald_cpu_us),
       rate: (if $a[0].triggers_per_s > 0 then $b[0].triggers_per_s / $a[0].triggers_per_s else 0 end),
       threads: ([$ta, $tb | keys[]] | unique | map({key: ., value: (($tb[.] // 0) - ($ta[.] // 0))})
                 | from_entries)}'
done | jq -rs '
  def median: sort | if length % 2 == 1 then .[length / 2 | floor]
                     else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def signed: if . > 0 then "+\(.)" else "\(.)" end;
  . as $pairs
  | "",
    "B − A over \($pairs | length) pairs (median; pairs where B was lower / higher):",
    "  total  \($pairs | map(.total) | median | signed) µs per trigger (\($pairs | map(select(.total < 0)) | length) / \($pairs | map(select(.total > 0)) | length))",
    ($pairs | map(.threads | keys[]) | unique[] as $t
     | "  \($t)  \($pairs | map(.threads[$t] // 0) | median | signed) µs (\($pairs | map(select((.threads[$t] // 0) < 0)) | length) / \($pairs | map(select((.threads[$t] // 0) > 0)) | length))"),
    "  triggers/s B ÷ A  \($pairs | map(.rate) | median * 1000 | round / 1000)"'
