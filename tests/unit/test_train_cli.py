"""``callqa train`` / ``gate`` / ``split``: clear refusals for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CALLQA = str(Path(sys.executable).with_name("callqa"))


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CALLQA, *args], capture_output=True, text=True, timeout=300, check=False)


def test_unknown_task_and_missing_data_are_refused(tmp_path):
    bad = _run("train", "bogus")
    assert bad.returncode == 2 and "bogus" in bad.stderr
    missing = _run("train", "errors", "--data", str(tmp_path / "nope*.jsonl"))
    assert missing.returncode == 2 and "no files match" in missing.stderr


def test_gate_without_versions_says_so(tmp_path):
    data = tmp_path / "calls.jsonl"
    data.write_text(Path("../shared/data/dev_calls.jsonl").read_text(encoding="utf-8").splitlines()[0] + "\n")
    out = _run("gate", "errors", "--data", str(data))
    assert out.returncode == 4 and "no registered versions" in out.stderr


def test_split_writes_two_disjoint_halves(tmp_path):
    out = _run("split", "--data", "../shared/data/dev_calls*.jsonl", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    tune = (tmp_path / "tune.jsonl").read_text().splitlines()
    held = (tmp_path / "held_out.jsonl").read_text().splitlines()
    total = sum(len(p.read_text().splitlines()) for p in Path("../shared/data").glob("dev_calls*.jsonl"))
    assert len(tune) + len(held) == total and tune and held and not set(tune) & set(held)
