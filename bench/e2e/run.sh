#!/usr/bin/env bash
# End-to-end push benchmark on loopback:
#   herald_bench_load --trigger--> herald --push-webhook--> herald_bench_sink
# Phase A measures the raw-client ceiling (load --mode raw straight into the sink), phase A2 the
# same requests sent through Herald's outbound HTTP engine alone (load --mode engine: libcurl
# multi, as Herald's dispatcher drives it), phase B the real path, phase C the same server's no-op
# route (GET /healthz) at the same concurrency. Builds nothing; every process
# it starts is stopped on exit; every step is bounded.
#
# Usage: bench/e2e/run.sh [--requests N] [--connections C] [--subscribers S]
# Env:   REQUESTS (20000) CONNECTIONS (32) SUBSCRIBERS (100) BUILD_DIR (build)
#        SINK_THREADS (2) LOAD_THREADS (1) MAX_SECONDS (60, hard stop per load phase)
#        WAIT_SECONDS (60, for deliveries after the last trigger) RESULTS_DIR (bench/results)
#        REV (the git revision: the label of the binary in the report) RESULT_JSON (if set, the
#        report as one JSON object is also written there)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
REQUESTS=${REQUESTS:-20000}
CONNECTIONS=${CONNECTIONS:-32}
SUBSCRIBERS=${SUBSCRIBERS:-100}
SINK_THREADS=${SINK_THREADS:-2}
LOAD_THREADS=${LOAD_THREADS:-1}
MAX_SECONDS=${MAX_SECONDS:-60}
WAIT_SECONDS=${WAIT_SECONDS:-60}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}

API_KEY=bench-development-api-key-0001
SECRET=bench-secret
WORKFLOW=bench

die() { echo "run.sh: $*" >&2; exit 1; }

while (($#)); do
  case $1 in
    --requests) REQUESTS=${2:?}; shift 2 ;;
    --connections) CONNECTIONS=${2:?}; shift 2 ;;
    --subscribers) SUBSCRIBERS=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
for v in REQUESTS CONNECTIONS SUBSCRIBERS SINK_THREADS LOAD_THREADS MAX_SECONDS WAIT_SECONDS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done

HERALD_BIN=$BUILD_DIR/herald
SINK_BIN=$BUILD_DIR/herald_bench_sink
LOAD_BIN=$BUILD_DIR/herald_bench_load
for bin in "$HERALD_BIN" "$SINK_BIN" "$LOAD_BIN"; do
  if [[ ! -x $bin ]]; then
    echo "run.sh: $bin not found. Build first (from $ROOT):" >&2
    echo "  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DHERALD_BUILD_BENCH=ON" >&2
    echo "  cmake --build build --target herald herald_bench_sink herald_bench_load" >&2
    exit 2
  fi
done
for tool in curl jq timeout; do
  command -v "$tool" >/dev/null || die "'$tool' is required"
done

TMP=$(mktemp -d -t herald-bench.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nobody answers on (a later bind failure is retried by the caller).
free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  return 1
}

# --- sink ------------------------------------------------------------------------------------
"$SINK_BIN" --listen 127.0.0.1:0 --threads "$SINK_THREADS" --secret "$SECRET" \
  --max-seconds 3600 >"$TMP/sink.out" 2>"$TMP/sink.err" &
PIDS+=($!)
SINK_PORT=
for _ in $(seq 100); do
  SINK_PORT=$(awk '$1 == "listening" { print $2; exit }' "$TMP/sink.out")
  [[ -n $SINK_PORT ]] && break
  kill -0 "${PIDS[-1]}" 2>/dev/null || break
  sleep 0.1
done
[[ -n $SINK_PORT ]] || die "the sink did not start: $(tail -5 "$TMP/sink.err")"
SINK_URL=http://127.0.0.1:$SINK_PORT
SINK_PID=${PIDS[-1]}

# --- herald ----------------------------------------------------------------------------------
HERALD_URL=
for attempt in 1 2 3; do
  port=$(free_port) || die "no free loopback port"
  HERALD_DEVELOPMENT_API_KEY=$API_KEY HERALD_ALLOW_PRIVATE_TARGETS=1 HERALD_LOG_LEVEL=warn \
    "$HERALD_BIN" serve --listen "127.0.0.1:$port" --data "$TMP/data" \
    >"$TMP/herald.out" 2>"$TMP/herald.err" &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 200); do
    if curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then
      HERALD_URL=http://127.0.0.1:$port
      break 2
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "run.sh: herald did not come up on port $port (attempt $attempt):" >&2
  tail -5 "$TMP/herald.err" >&2
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset 'PIDS[-1]'  # reaped: never signal that pid again
done
[[ -n $HERALD_URL ]] || die "herald did not start"
HERALD_PID=${PIDS[-1]}

# api METHOD PATH BODY EXPECTED_STATUS
api() {
  local code
  code=$(curl -sS --max-time 10 -o "$TMP/reply.json" -w '%{http_code}' -X "$1" \
    -H "Authorization: ApiKey $API_KEY" -H 'Content-Type: application/json' \
    --data "$3" "$HERALD_URL$2") || die "$1 $2 failed"
  [[ $code == "$4" ]] || die "$1 $2 answered $code, expected $4: $(head -c 400 "$TMP/reply.json")"
}

echo "setup: push-webhook integration, $SUBSCRIBERS subscribers with one token each, workflow"
api POST /v1/integrations "$(jq -nc --arg url "$SINK_URL/hook" --arg secret "$SECRET" \
  '{providerId: "push-webhook", channel: "push", name: "bench", identifier: "bench-webhook",
    active: true, credentials: {webhookUrl: $url, secretKey: $secret}}')" 201

# One block of a curl config file: METHOD PATH JSON.
curl_block() {
  printf 'url = "%s%s"\nrequest = "%s"\ndata = "%s"\n' "$HERALD_URL" "$2" "$1" "${3//\"/\\\"}"
  printf 'header = "Authorization: ApiKey %s"\nheader = "Content-Type: application/json"\n' "$API_KEY"
  printf 'output = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nmax-time = 10\nsilent\n'
}
# All subscriber calls in one curl process, over one keep-alive connection.
for ((i = 0; i < SUBSCRIBERS; i++)); do
  ((i == 0)) || echo next
  curl_block POST /v2/subscribers "{\"subscriberId\":\"sub-$i\"}"
  echo next
  curl_block PUT "/v1/subscribers/sub-$i/credentials" \
    "{\"providerId\":\"push-webhook\",\"credentials\":{\"deviceTokens\":[\"tok-$i\"]}}"
done >"$TMP/subscribers.curl"
timeout 300 curl -K "$TMP/subscribers.curl" >"$TMP/subscribers.codes" || true
good=$(grep -cE '^20[01]$' "$TMP/subscribers.codes" || true)
((good == 2 * SUBSCRIBERS)) ||
  die "subscriber setup: $good of $((2 * SUBSCRIBERS)) calls succeeded" \
    "(statuses: $(sort "$TMP/subscribers.codes" | uniq -c | tr -s '\n ' ' '))"

api POST /v2/workflows "$(jq -nc --arg id "$WORKFLOW" \
  '{name: $id, workflowId: $id, active: true,
    steps: [{name: "Push", type: "push",
             controlValues: {title: "Hi {{subscriber.subscriberId}}", body: "n={{payload.n}}"}}]}')" 201

# load OUTPUT_FILE ARGS...: runs the load generator in the background so that a signal to this
# script interrupts `wait` at once (the trap then stops it).
load() {
  local out=$1
  shift
  timeout $((MAX_SECONDS + 30)) "$LOAD_BIN" --requests "$REQUESTS" --connections "$CONNECTIONS" \
    --subscribers "$SUBSCRIBERS" --threads "$LOAD_THREADS" --max-seconds "$MAX_SECONDS" "$@" \
    >"$out" &
  PIDS+=($!)
  wait "${PIDS[-1]}" || true
  unset 'PIDS[-1]'
}
sink_stats() { curl -fsS --max-time 5 "$SINK_URL/stats"; }
# Sets COUNT to the sink's delivery count (0 if it cannot be read) using shell builtins only.
sink_count() {
  local fd reply=
  COUNT=0
  exec {fd}<>"/dev/tcp/127.0.0.1/$SINK_PORT" 2>/dev/null || return 0
  printf 'GET /stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&"$fd" 2>/dev/null || true
  IFS= read -r -d '' -t 5 reply <&"$fd" || true
  exec {fd}>&-
  [[ $reply =~ \"count\":([0-9]+) ]] && COUNT=${BASH_REMATCH[1]}
  return 0
}
# Herald's CPU time so far (user + system, clock ticks), summed by thread name: "name ticks" lines.
herald_cpu() {
  local task comm
  for task in /proc/"$HERALD_PID"/task/*; do
    comm=$(cat "$task/comm" 2>/dev/null) || continue
    # Fields after "pid (comm) ": state is $1, utime $12, stime $13.
    awk -v name="$comm" '{ sub(/^.*\) /, ""); print name, $12 + $13 }' "$task/stat" 2>/dev/null
  done | awk '{ ticks[$1] += $2 } END { for (n in ticks) print n, ticks[n] }'
}

# A process's CPU time so far (user + system of all its threads, clock ticks).
process_cpu() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# --- phase A: raw-client ceiling -------------------------------------------------------------
echo "phase A: $REQUESTS signed push-webhook POSTs straight to the sink ($CONNECTIONS connections)"
SINK_CPU_BEFORE=$(process_cpu "$SINK_PID")
load "$TMP/raw.json" --mode raw --url "$SINK_URL/hook" --secret "$SECRET"
SINK_CPU_AFTER=$(process_cpu "$SINK_PID")
RAW=$(<"$TMP/raw.json")
[[ $RAW == \{* ]] || die "raw load produced no report"
RAW_STATS=$(sink_stats)
curl -fsS --max-time 5 -X POST -o /dev/null "$SINK_URL/reset"

# --- phase A2: Herald's HTTP engine alone ----------------------------------------------------
# The same requests through Herald's outbound engine (http/client.h), handed to it from another
# thread as the dispatcher does, 256 at a time: the engine puts at most 64 on the wire (Herald's
# default per integration), whatever CONNECTIONS is, as it does for Herald.
echo "phase A2: the same POSTs through Herald's HTTP engine (libcurl) to the sink"
CONNECTIONS=256 load "$TMP/engine.json" --mode engine --url "$SINK_URL/hook" --secret "$SECRET"
ENGINE=$(<"$TMP/engine.json")
[[ $ENGINE == \{* ]] || die "engine load produced no report"
ENGINE_STATS=$(sink_stats)
curl -fsS --max-time 5 -X POST -o /dev/null "$SINK_URL/reset"

# --- phase B: triggers through Herald --------------------------------------------------------
echo "phase B: $REQUESTS triggers to Herald ($CONNECTIONS connections)"
# From the first trigger to the last delivery Herald is being measured, so nothing in between
# starts a process (a curl, jq or mkfifo there took a few percent of the CPU from Herald): the
# wait loop's pause is a timed read on a FIFO nobody writes to, made now; the count of
# acknowledged triggers is read from the load generator's report by the shell, and the sink's
# count over bash's /dev/tcp (bash reads a socket a byte at a time: once a second is enough).
# The sink stamps the last delivery itself, so how often the loop polls does not change the
# rates and latencies; Herald's CPU is read when the loop ends, up to a second after the last
# delivery, which an idle Herald spends asleep (one clock tick in five seconds, measured).
mkfifo "$TMP/nap"
exec {NAP}<>"$TMP/nap"
CPU_BEFORE=$(herald_cpu)
load "$TMP/trigger.json" --mode trigger --url "$HERALD_URL/v1/events/trigger" \
  --api-key "$API_KEY" --workflow "$WORKFLOW"
IFS= read -r -d "" TRIG <"$TMP/trigger.json" || true  # no subshell: Herald is being measured
[[ $TRIG == \{* ]] || die "trigger load produced no report"
[[ $TRIG =~ \"ok\":([0-9]+) ]] || die "the trigger report has no \"ok\" count: $TRIG"
ACKED=${BASH_REMATCH[1]}
echo "waiting up to ${WAIT_SECONDS}s for $ACKED deliveries"
deadline=$((SECONDS + WAIT_SECONDS))
while :; do
  sink_count
  ((COUNT >= ACKED)) && break
  ((SECONDS < deadline)) || break
  kill -0 "$HERALD_PID" 2>/dev/null || { echo "run.sh: herald exited" >&2; break; }
  read -r -t 1 -u "$NAP" _ || true
done
exec {NAP}>&-
STATS=$(sink_stats)
CPU_AFTER=$(herald_cpu)
# Herald's CPU per delivered trigger in phase B, in total and by thread name (largest first).
CPU=$(awk -v hz="$(getconf CLK_TCK)" -v n="$(jq '.count' <<<"$STATS")" '
  NR == FNR { before[$1] = $2; next }
  { used[$1] = $2 - before[$1] }
  END {
    total = 0
    for (t in used) total += used[t]
    if (n <= 0 || hz <= 0) { print "{\"us\":0,\"by_thread\":\"\"}"; exit }
    line = ""
    while (1) {
      best = ""
      for (t in used) if (best == "" || used[t] > used[best]) best = t
      if (best == "" || used[best] <= 0) break
      line = line (line == "" ? "" : ", ") best " " int(used[best] * 1e6 / hz / n + 0.5)
      delete used[best]
    }
    printf "{\"us\":%d,\"by_thread\":\"%s\"}\n", int(total * 1e6 / hz / n + 0.5), line
  }' <(echo "$CPU_BEFORE") <(echo "$CPU_AFTER"))

# --- phase C: the same server's no-op route -------------------------------------------------
# What this server answers when a request does nothing (GET /healthz) at the same concurrency:
# the ceiling the HTTP layer and the load generator leave for durable triggers.
echo "phase C: $REQUESTS GET /healthz to Herald ($CONNECTIONS connections)"
load "$TMP/noop.json" --mode get --url "$HERALD_URL/healthz"
NOOP=$(<"$TMP/noop.json")
[[ $NOOP == \{* ]] || die "no-op load produced no report"

# --- report ----------------------------------------------------------------------------------
SINK_CPU_US=$(awk -v hz="$(getconf CLK_TCK)" -v n="$(jq '.count' <<<"$RAW_STATS")" \
  -v t="$((SINK_CPU_AFTER - SINK_CPU_BEFORE))" 'BEGIN { print (n > 0 ? int(t * 1e6 / hz / n + 0.5) : 0) }')
RESULT=$(jq -n --argjson raw "$RAW" --argjson raw_stats "$RAW_STATS" --argjson trig "$TRIG" \
  --argjson noop "$NOOP" \
  --argjson engine "$ENGINE" --argjson engine_stats "$ENGINE_STATS" --argjson sink_cpu "$SINK_CPU_US" \
  --argjson stats "$STATS" --argjson cpu "$CPU" --arg when "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --arg rev "${REV:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}" \
  --argjson cores "$(nproc)" --argjson requests "$REQUESTS" \
  --argjson connections "$CONNECTIONS" --argjson subscribers "$SUBSCRIBERS" '
  def per_s($n; $from; $to): if $to > $from then $n / (($to - $from) / 1e6) else 0 end;
  def ms: . / 1000 * 100 | round / 100;
  def r1: . * 10 | round / 10;
  (per_s($stats.count; $trig.start_us; $stats.last_at_us)) as $dps
  | (per_s($raw_stats.count; $raw.start_us; $raw_stats.last_at_us)) as $raw_dps
  | (per_s($engine_stats.count; $engine.start_us; $engine_stats.last_at_us)) as $engine_dps
  | {when: $when, rev: $rev, cores: $cores, requests: $requests, connections: $connections,
     subscribers: $subscribers,
     triggers_acked: $trig.ok, trigger_errors: $trig.errors,
     triggers_per_s: ($trig.rps | r1), ack_p50_ms: ($trig.p50_us | ms),
     ack_p99_ms: ($trig.p99_us | ms), ack_p999_ms: ($trig.p999_us | ms),
     noop_per_s: ($noop.rps | r1), noop_p50_ms: ($noop.p50_us | ms),
     noop_p99_ms: ($noop.p99_us | ms), noop_p999_ms: ($noop.p999_us | ms),
     noop_errors: $noop.errors,
     delivered: $stats.count, deliveries_per_s: ($dps | r1),
     delivery_p50_ms: ($stats.p50_us | ms), delivery_p99_ms: ($stats.p99_us | ms),
     bad_signatures: $stats.bad_signature,
     raw_per_s: ($raw_dps | r1), raw_p50_ms: ($raw_stats.p50_us | ms),
     raw_p99_ms: ($raw_stats.p99_us | ms), raw_rtt_p50_ms: ($raw.p50_us | ms),
     raw_rtt_p99_ms: ($raw.p99_us | ms), raw_errors: $raw.errors,
     trigger_timed_out: $trig.timed_out, trigger_statuses: ($trig.status_counts | tojson), raw_statuses: ($raw.status_counts | tojson),
     ratio: (if $raw_dps > 0 then $dps / $raw_dps * 1000 | round / 1000 else 0 end),
     herald_cpu_us: $cpu.us, herald_cpu_by_thread: $cpu.by_thread,
     engine_per_s: ($engine_dps | r1), engine_errors: $engine.errors,
     engine_bad_signatures: $engine_stats.bad_signature,
     engine_ratio: (if $raw_dps > 0 then $engine_dps / $raw_dps * 1000 | round / 1000 else 0 end),
     raw_client_cpu_us: ($raw.cpu_us_per_request | r1),
     engine_cpu_us: ($engine.cpu_us_per_request | r1), sink_cpu_us: $sink_cpu,
     complete: ($stats.count >= $trig.ok and $trig.ok == $requests)}')

jq -r '
  "",
  "| Metric | Value |",
  "|---|---|",
  "| Durable triggers/s (201 acknowledged) | \(.triggers_per_s) (\(.triggers_acked) acked, \(.trigger_errors) errors) |",
  "| Trigger ack latency p50 / p99 / p99.9 | \(.ack_p50_ms) / \(.ack_p99_ms) / \(.ack_p999_ms) ms |",
  "| Same server'"'"'s no-op route (GET /healthz): requests/s, p50 / p99 / p99.9 | \(.noop_per_s); \(.noop_p50_ms) / \(.noop_p99_ms) / \(.noop_p999_ms) ms |",
  "| Deliveries/s (delivered ÷ (last delivery − first trigger sent)) | \(.deliveries_per_s) (\(.delivered) delivered) |",
  "| Trigger→delivery latency p50 / p99 | \(.delivery_p50_ms) / \(.delivery_p99_ms) ms |",
  "| Raw-client ceiling deliveries/s | \(.raw_per_s) |",
  "| Raw-client send→sink latency p50 / p99 (round trip) | \(.raw_p50_ms) / \(.raw_p99_ms) ms (\(.raw_rtt_p50_ms) / \(.raw_rtt_p99_ms) ms) |",
  "| Deliveries/s ÷ raw ceiling | \(.ratio) |",
  "| Herald CPU per delivered trigger (µs, by thread) | \(.herald_cpu_us) (\(.herald_cpu_by_thread)) |",
  "| Herald'"'"'s HTTP engine alone (libcurl), same requests to the sink: deliveries/s | \(.engine_per_s) (\(.engine_ratio) of the raw ceiling) |",
  "| CPU per request in phase A: raw client / sink; the engine'"'"'s process in phase A2 (µs) | \(.raw_client_cpu_us) / \(.sink_cpu_us); \(.engine_cpu_us) |",
  "",
  "Trigger statuses \(.trigger_statuses), raw statuses \(.raw_statuses).\(
    if .trigger_timed_out then " The trigger phase hit MAX_SECONDS." else "" end)",
  "\(.requests) requests, \(.connections) connections, \(.subscribers) subscribers, \(.cores) cores, rev \(.rev), \(.when)"
' <<<"$RESULT"

[[ -z ${RESULT_JSON:-} ]] || echo "$RESULT" >"$RESULT_JSON"

mkdir -p "$RESULTS_DIR"
CSV=$RESULTS_DIR/$(date -u +%Y-%m-%d).csv
COLUMNS=(when rev cores requests connections subscribers triggers_acked trigger_errors
  triggers_per_s ack_p50_ms ack_p99_ms delivered deliveries_per_s delivery_p50_ms
  delivery_p99_ms bad_signatures raw_per_s raw_p50_ms raw_p99_ms raw_rtt_p50_ms raw_rtt_p99_ms
  raw_errors ratio complete herald_cpu_us engine_per_s engine_ratio raw_client_cpu_us
  engine_cpu_us sink_cpu_us ack_p999_ms noop_per_s noop_p50_ms noop_p99_ms noop_p999_ms)
HEADER=$(IFS=,; echo "${COLUMNS[*]}")
# A file written by an older version of this script (other columns) is left as it is: the rows
# go to the day's next file (DATE-2.csv, DATE-3.csv, ...) with these columns.
for ((n = 2; n < 100; n++)); do
  [[ ! -s $CSV || $(head -1 "$CSV") == "$HEADER" ]] && break
  CSV=$RESULTS_DIR/$(date -u +%Y-%m-%d)-$n.csv
done
[[ -s $CSV ]] || echo "$HEADER" >"$CSV"
jq -r --arg cols "${COLUMNS[*]}" '[.[($cols | split(" "))[]]] | @csv' <<<"$RESULT" >>"$CSV"
echo "appended to $CSV"

if [[ $(jq '.complete' <<<"$RESULT") != true || $(jq '.bad_signatures' <<<"$RESULT") != 0 ||
  $(jq '.engine_errors + .engine_bad_signatures + .noop_errors' <<<"$RESULT") != 0 ]]; then
  echo "run.sh: incomplete run (errors, missing deliveries or bad signatures); see the table" >&2
  exit 1
fi
