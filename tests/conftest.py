"""Shared fixtures and data builders."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from callqa.questionnaire import load_questionnaire
from callqa.schemas import LabelledCall, Questionnaire
from callqa.settings import get_settings
from tests.builders import make_labelled, make_tiny_encoder


@pytest.fixture(scope="session", autouse=True)
def _shared_encoder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One directory for the real e5 encoder for the whole session: whichever test first needs it
    converts it from the wheel (about a minute with its ONNX export), the others reuse it."""
    path = tmp_path_factory.getbasetemp() / "encoder" / "e5-small"
    wanted = {"CALLQA_ENCODER__PATH": str(path), "CALLQA_ENCODER__BUILD": "true"}
    old = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    yield path
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def encoder_dir(_shared_encoder: Path) -> Path:
    """The real e5 encoder (+ its ONNX export), built now if no test has built it yet."""
    from callqa.encoder.store import ensure_encoder

    get_settings.cache_clear()
    return ensure_encoder(get_settings())


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny XLM-R encoder with its own tokenizer (shapes and steps, not meaning)."""
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test writes its artifacts under its own tmp dir, never into the repo."""
    monkeypatch.setenv("CALLQA_HOME", str(tmp_path / ".callqa"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def questionnaire() -> Questionnaire:
    return load_questionnaire()


@pytest.fixture
def supplier_call() -> LabelledCall:
    """A short qualification call with three answers and a dodge."""
    return make_labelled(
        ("AGENT", "Добрый день! Меня зовут Ольга, компания «ТехноСнаб». Удобно пару минут?"),
        ("CLIENT", "Да, слушаю."),
        ("AGENT", "Подскажите, у кого вы сейчас закупаете подшипники?"),
        ("CLIENT", "Мы уже лет пять берём у Подшипник-Центра, нас всё устраивает."),
        ("AGENT", "А последняя закупка на какую сумму была?"),
        ("CLIENT", "В прошлом месяце на полтора миллиона примерно."),
        ("AGENT", "А кто у вас принимает решение о закупке?"),
        ("CLIENT", "Подписывает генеральный директор, Сергей Петрович."),
        ("AGENT", "А предложения от других поставщиков у вас есть?"),
        ("CLIENT", "Этого я вам не скажу."),
        call_id="fixture-1",
        answers={
            "current_supplier": (3, "берём у Подшипник-Центра", "Подшипник-Центр"),
            "last_purchase_amount": (5, "на полтора миллиона", 1_500_000),
            "decision_maker": (7, "Подписывает генеральный директор, Сергей Петрович", "генеральный директор"),
        },
    )


SPEECH_MODELS = ("titanet_small.nemo", "fastconformer_ctc_tiny.nemo")


def run_callqa(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The ``callqa`` command of this venv, as a user runs it."""
    cli = Path(sys.executable).with_name("callqa")
    return subprocess.run([str(cli), *args], capture_output=True, text=True, check=False, env=env, timeout=3600)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The developer's built speech models when present, else built now (as on a fresh clone; shared by
    the e2e and serving tests, so built once per session)."""
    local = get_settings().models_dir
    if all((local / m).is_file() for m in SPEECH_MODELS):
        return local
    out = tmp_path_factory.mktemp("models")
    proc = run_callqa("speech", "build-models", "--only", "speaker", "--only", "asr", "--models-dir", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out
