#!/usr/bin/env bash
# The unattended labelling loop on the hand-written dev calls, end to end on this machine:
#   split → Label Studio → push the tune half with zero-shot predictions → simulated annotator
#   (gold labels through the API) → webhook events → after N annotations the receiver pulls a
#   snapshot, trains answers/errors/calltype and gates each on the held-out half → new champions.
# Prints the held-out scores before (zero-shot) and after (champions).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
export CALLQA_HOME=${CALLQA_HOME:-.callqa/label-loop}
DATA=${DATA:-../shared/data/dev_calls*.jsonl}
LS_PORT=${LS_PORT:-8087}
HOOK_PORT=${HOOK_PORT:-8088}
NOISE=${NOISE:-0}
ROUNDS=${ROUNDS:-1}  # annotate the tune half in this many batches; each batch starts one retraining job
export CALLQA_LABELSTUDIO__URL=http://127.0.0.1:$LS_PORT
export OMP_WAIT_POLICY=PASSIVE

mkdir -p "$CALLQA_HOME"
"$BIN/callqa" split --data "$DATA" --out "$CALLQA_HOME/data"
TUNE=$CALLQA_HOME/data/tune.jsonl
export CALLQA_LABELSTUDIO__HELD_OUT=$CALLQA_HOME/data/held_out.jsonl
N_TUNE=$(grep -c . "$TUNE")
PER_ROUND=$(((N_TUNE + ROUNDS - 1) / ROUNDS))
CALLQA_LABELSTUDIO__RETRAIN_AFTER=$PER_ROUND
export CALLQA_LABELSTUDIO__RETRAIN_AFTER

"$BIN/callqa" label server --port "$LS_PORT" &
LS=$!
HOOK=""
trap 'kill $LS $HOOK 2>/dev/null || true; wait 2>/dev/null || true' EXIT
until curl -sf "$CALLQA_LABELSTUDIO__URL/health" >/dev/null; do
  kill -0 $LS 2>/dev/null || { echo "Label Studio did not start" >&2; exit 1; }
  sleep 2
done

echo "== before: zero-shot on the held-out half"
"$BIN/callqa" evaluate --data "$CALLQA_LABELSTUDIO__HELD_OUT" --model zero-shot
"$BIN/callqa" label push --calls "$TUNE"
"$BIN/callqa" label webhook --port "$HOOK_PORT" &
HOOK=$!
until curl -sf "http://127.0.0.1:$HOOK_PORT/labelstudio/status" >/dev/null; do sleep 1; done
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  "$BIN/callqa" label annotate --gold "$TUNE" --noise "$NOISE" --limit "$PER_ROUND" --seed "$ROUND"
  echo "== round $ROUND: waiting for retraining job $ROUND (pull → train → gate)"
  while true; do
    STATE=$(curl -sf "http://127.0.0.1:$HOOK_PORT/labelstudio/status" |
      "$BIN/python" -c "import json,sys; j=json.load(sys.stdin)['jobs']; print(j[$ROUND-1]['status'] if len(j) >= $ROUND else 'none')")
    [[ $STATE == done || $STATE == failed ]] && break
    sleep 15
  done
  [[ $STATE == done ]] || { echo "job $ROUND failed; see $CALLQA_HOME/labelling/jobs/$ROUND/job.log" >&2; exit 1; }
done
curl -sf "http://127.0.0.1:$HOOK_PORT/labelstudio/status" | "$BIN/python" -m json.tool

echo "== after: champions on the held-out half"
"$BIN/callqa" evaluate --data "$CALLQA_LABELSTUDIO__HELD_OUT" --model champion --errors-model champion \
  --calltype-model champion ||
  "$BIN/callqa" evaluate --data "$CALLQA_LABELSTUDIO__HELD_OUT" --model zero-shot --errors-model champion \
    --calltype-model champion
