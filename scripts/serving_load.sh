#!/usr/bin/env bash
# Load test on loopback: starts `callqa serve` (Ray Serve; LOCAL=1 for --local), sends the dev
# transcripts at each of RATES per second for SECONDS_EACH, then AUDIO_N one-minute synthetic
# recordings at AUDIO_RATE per second and follows each job to its end; reports go to OUT.
set -euo pipefail
BIN=${BIN:-.venv/bin}
PORT=${PORT:-8400}
OUT=${OUT:-.callqa/loadtest}
RATES=${RATES:-"10 20"}
SECONDS_EACH=${SECONDS_EACH:-30}
AUDIO_N=${AUDIO_N:-12}
AUDIO_RATE=${AUDIO_RATE:-0.1}
TRANSCRIPTS=${TRANSCRIPTS:-../shared/data/dev_calls.jsonl}
export CALLQA_API_KEYS=${CALLQA_API_KEYS:-load-test-key}
export CALLQA_SPEECH__ASR=${CALLQA_SPEECH__ASR:-nemo}
mkdir -p "$OUT"

[ -d "$OUT/calls" ] || "$BIN/callqa" generate --audio --n 6 --seed 123 --out "$OUT/calls"
"$BIN/callqa" speech build-models --if-missing --only speaker --only asr

mode=()
[ -n "${LOCAL:-}" ] && mode=(--local)
"$BIN/callqa" serve "${mode[@]}" --port "$PORT" >"$OUT/server.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  kill -0 $server 2>/dev/null || { tail -50 "$OUT/server.log"; exit 1; }
  sleep 1
done
curl -s "http://127.0.0.1:$PORT/readyz"; echo

status=0
for rate in $RATES; do
  "$BIN/callqa" serve loadtest --url "http://127.0.0.1:$PORT" --transcripts "$TRANSCRIPTS" \
    --rate "$rate" --seconds "$SECONDS_EACH" --out "$OUT/transcripts-$rate.json" || status=1
done
recordings=()
for wav in "$OUT"/calls/*.wav; do recordings+=(--recording "$wav"); done
"$BIN/callqa" serve loadtest --url "http://127.0.0.1:$PORT" "${recordings[@]}" --cut 60 \
  --count "$AUDIO_N" --rate "$AUDIO_RATE" --out "$OUT/recordings.json" || status=1
exit $status
