"""The whole training loop through the CLI against a real ``mlflow server`` on loopback:
split → train → register → gate → champion → evaluate from the registry; a shuffled-label model
is refused; the MLflow pyfunc of a version predicts; Ray Train with two CPU workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from callqa.dataset import write_labelled_calls
from callqa.synthetic import generate_calls

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
CALLQA = str(Path(sys.executable).with_name("callqa"))


def _cli(env: dict[str, str], *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([CALLQA, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    print(f"callqa {' '.join(args)} → {proc.returncode}", file=sys.stderr)
    assert proc.returncode == expect, f"callqa {' '.join(args)} → {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc


def _json(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout)


@pytest.fixture
def env(server, tmp_path: Path) -> dict[str, str]:
    url, _ = server
    return os.environ | {
        "CALLQA_MLFLOW_URI": url,
        "CALLQA_HOME": str(tmp_path / "client"),
        "OMP_WAIT_POLICY": "PASSIVE",
        "HF_HUB_OFFLINE": "1",
    }


def test_train_gate_promote_refuse_and_evaluate(env, tmp_path: Path):
    data = tmp_path / "data"
    _cli(env, "split", "--data", "../shared/data/dev_calls*.jsonl", "--out", str(data))
    # a blind split the error model can be judged on firmly: 80 synthetic calls of another seed
    held_out = write_labelled_calls(tmp_path / "held_out.jsonl", generate_calls(80, seed=99))

    good = _json(_cli(env, "train", "errors", "--data", str(data / "tune.jsonl"), "--synthetic", "150",
                      "--epochs", "6", "--json"))  # fmt: skip
    assert good["version"] == "1" and good["metrics"]["epochs"] >= 1
    first = _json(_cli(env, "gate", "errors", "--data", str(held_out), "--json"))
    assert first["promoted"], first  # it beats the best constant answer (no champion yet) with confidence
    assert first["champion"].startswith("flags ") and first["champion_score"] < first["candidate_score"]

    bad = _json(_cli(env, "train", "errors", "--data", str(data / "tune.jsonl"), "--synthetic", "150",
                     "--epochs", "6", "--shuffle-labels", "--json"))  # fmt: skip
    assert bad["version"] == "2"
    second = _json(_cli(env, "gate", "errors", "--data", str(held_out), "--json"))
    assert not second["promoted"], second
    assert second["candidate_score"] < second["champion_score"]
    assert second["champion"] == "callqa-errors/1"

    from mlflow import MlflowClient

    client = MlflowClient(env["CALLQA_MLFLOW_URI"], registry_uri=env["CALLQA_MLFLOW_URI"])  # not a global one
    assert client.get_model_version_by_alias("callqa-errors", "champion").version == "1"
    run = client.get_run(client.get_model_version("callqa-errors", "2").run_id)
    assert run.data.tags["callqa.gate"] == "refused"
    assert {"gate_candidate_error_macro_f1", "gate_champion_error_macro_f1", "train_loss"} <= set(run.data.metrics)
    assert run.data.params["shuffled_labels"] == "True"
    assert run.inputs.dataset_inputs, "the training data is logged as an MLflow dataset"
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert len(history) >= 2, "a loss per epoch"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert "evaluation/gate.md" in artifacts and "evaluation/candidate" in artifacts

    # answers: a version trained for a few steps loses to the zero-shot baseline and is refused
    _cli(env, "train", "answers", "--data", str(data / "tune.jsonl"), "--synthetic", "20", "--max-steps", "3", "--json")
    gate = _json(_cli(env, "gate", "answers", "--data", str(data / "held_out.jsonl"), "--json"))
    assert gate["champion"] == "zero-shot" and not gate["promoted"]
    _cli(env, "evaluate", "--data", str(data / "held_out.jsonl"), "--model", "champion", expect=2)  # none yet

    result = _json(_cli(env, "evaluate", "--data", str(data / "held_out.jsonl"), "--model", "models:/callqa-answers/1",
                        "--json"))  # fmt: skip
    assert result["model"] == "callqa-answers/1" and result["error_model"] == "callqa-errors/1"
    assert result["error_macro_f1"] is not None and set(result["per_error"]) >= {"no_next_step", "filler_words"}
    assert "call_type_accuracy" in result
    _cli(env, "evaluate", "--data", str(data / "held_out.jsonl"), "--model", "models:/callqa-answers/7", expect=4)

    # any MLflow client can load a version as a pyfunc and predict
    import mlflow.pyfunc
    import pandas as pd

    mlflow.set_tracking_uri(env["CALLQA_MLFLOW_URI"])
    mlflow.set_registry_uri(env["CALLQA_MLFLOW_URI"])
    model = mlflow.pyfunc.load_model("models:/callqa-errors@champion")
    call = {"call_id": "p", "turns": [{"speaker": "AGENT", "text": "Алло, короче, ну это, вам ничего не надо?"},
                                     {"speaker": "CLIENT", "text": "Нет."}]}  # fmt: skip
    out = model.predict(pd.DataFrame({"call": [json.dumps(call, ensure_ascii=False)]}))
    assert "errors" in json.loads(out["result"][0])


def test_ray_train_two_cpu_workers(env):
    out = _json(_cli(env, "train", "calltype", "--synthetic", "40", "--epochs", "2", "--ray", "--workers", "2",
                     "--json"))  # fmt: skip
    assert out["version"] == "1"
    assert out["metrics"]["ray_workers"] == 2
    from mlflow import MlflowClient

    client = MlflowClient(env["CALLQA_MLFLOW_URI"], registry_uri=env["CALLQA_MLFLOW_URI"])  # not a global one
    run = client.get_run(out["run_id"])
    assert run.data.params["ray_workers"] == "2"
    assert client.get_metric_history(out["run_id"], "train_loss"), "rank 0 logged the epochs"
