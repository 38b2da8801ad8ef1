"""Diarizer fine-tuning: a tiny TitaNet built here, fine-tuned on spoken synthetic calls (WAV + RTTM),
DER measured before and after, the .nemo registered and fetched back from the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from callqa import registry
from callqa.models import fetch
from callqa.speech.segments import read_rttm
from training.diarizer import NEMO_FILE, DiarizerSpec, labelled_audio, train_diarizer
from training.fit import FitOptions
from training.speech_models import build_all, render_corpus

pytestmark = pytest.mark.slow


def test_finetune_logs_der_before_after_and_registers(tmp_path: Path):
    base = build_all(tmp_path / "models", quick=True, only={"speaker"}, progress=False)["speaker"]
    corpus = render_corpus(tmp_path / "calls", calls=3, heldout=1, seed=4, progress=False)
    calls = labelled_audio([corpus.root])
    assert len(calls) == 4 and all(read_rttm(c.rttm) for c in calls)
    spec = DiarizerSpec(
        data=[corpus.root], base=base, fit=FitOptions(max_epochs=1, max_steps=1, batch_size=4, lr=1e-4, progress=False)
    )
    outcome = train_diarizer(spec)
    assert outcome.version == "1" and outcome.metrics["steps"] == 1
    assert {"der_before", "der_after"} <= set(outcome.metrics)
    assert 0 <= outcome.metrics["der_after"] <= 1.5
    registry.promote("diarizer", outcome.version)
    path, name = fetch("champion", "diarizer")
    assert (path / NEMO_FILE).is_file() and name == "callqa-diarizer/1"


def test_labelled_audio_refuses_missing_labels(tmp_path: Path):
    from callqa.errors import BadInput

    (tmp_path / "a.wav").write_bytes(b"RIFF")
    with pytest.raises(BadInput, match=r"a\.rttm is missing"):
        labelled_audio([tmp_path])
