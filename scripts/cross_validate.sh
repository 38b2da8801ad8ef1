#!/usr/bin/env bash
# Dev-set cross-validation of the fine-tuned models: train on synthetic calls + one half of the
# hand-written dev calls, score on the other half, then swap. Prints one JSON line per fold and task.
# Usage: scripts/cross_validate.sh [OUT_DIR]   (env: BIN = the venv bin dir; ANSWERS_ARGS, CLASSIFIER_ARGS = train options)
set -euo pipefail
BIN=${BIN:-.venv/bin}
OUT=${1:-.callqa/cv}
ANSWERS_ARGS=${ANSWERS_ARGS:-}
CLASSIFIER_ARGS=${CLASSIFIER_ARGS:-}
mkdir -p "$OUT"
"$BIN/callqa" split --data "../shared/data/dev_calls*.jsonl" --out "$OUT/data"
for fold in tune held_out; do
  other=$([ "$fold" = tune ] && echo held_out || echo tune)
  for task in answers errors calltype; do
    train_args=$([ "$task" = answers ] && echo "$ANSWERS_ARGS" || echo "$CLASSIFIER_ARGS")
    # shellcheck disable=SC2086
    model=$("$BIN/callqa" train "$task" --data "$OUT/data/$fold.jsonl" --no-register --json $train_args \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["model_dir"])')
    case $task in
      answers) args=(--model "$model") ;;
      errors) args=(--model zero-shot --errors-model "$model") ;;
      calltype) args=(--model zero-shot --calltype-model "$model") ;;
    esac
    "$BIN/callqa" evaluate --data "$OUT/data/$other.jsonl" "${args[@]}" --json >"$OUT/$task-train-$fold.json"
    python3 - "$OUT/$task-train-$fold.json" "$task" "$fold" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
task, fold = sys.argv[2], sys.argv[3]
key = {"answers": "answer_f1", "errors": "error_macro_f1", "calltype": "call_type_accuracy"}[task]
per = d["per_question"] if task == "answers" else (d.get("per_error") or {})
print(json.dumps({"task": task, "trained_on": fold, key: round(d[key], 3),
                  "per": {k: round(v["f1"], 2) for k, v in per.items()}}))
PY
  done
done
