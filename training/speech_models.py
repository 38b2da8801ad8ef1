"""Build the NeMo speech models from our YAML configs, trained briefly on synthetic calls (no downloads).

One synthetic corpus (espeak voices through ``callqa.speech.synth``, telephone band, 16 kHz) feeds
all three models: single-speaker crops labelled by voice for TitaNet, call sessions with RTTM for
Sortformer, (turn audio, ``asr_text``) pairs plus a locally trained SentencePiece tokenizer for
the CTC model. Each model trains on CPU with ``lightning.pytorch`` under a step and wall-clock
budget from its config, is saved as ``.nemo`` and checked once on held-out speech.
"""

from __future__ import annotations

import json
import logging
import random
import resource
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.progress import Progress

from callqa.errors import BadInput, ConfigError
from callqa.schemas import LabelledCall
from callqa.speech.audio import write_wav
from callqa.speech.lexicon import LexiconCorrector, word_counts, write_lexicon
from callqa.speech.nemo_backends import pad_batch
from callqa.speech.segments import Segment, SpeakerSegment, to_annotation, write_rttm
from callqa.speech.synth import RefTurn, Voice, render_call
from callqa.synthetic import asr_text, generate_calls

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parent / "configs"
SAMPLE_RATE = 16_000
MODEL_KINDS = ("speaker", "sortformer", "asr")


@dataclass(frozen=True)
class ModelSpec:
    config: str  # YAML name under training/configs
    file: str  # the .nemo written into the models directory
    nemo_class: str  # nemo.collections.asr.models.<class>


SPECS: dict[str, ModelSpec] = {
    "speaker": ModelSpec("titanet_small", "titanet_small.nemo", "EncDecSpeakerLabelModel"),
    "sortformer": ModelSpec("sortformer_tiny", "sortformer_tiny.nemo", "SortformerEncLabelModel"),
    "asr": ModelSpec("fastconformer_ctc_tiny", "fastconformer_ctc_tiny.nemo", "EncDecCTCModelBPE"),
}


# -- configs ------------------------------------------------------------------------------------
def config_names() -> list[str]:
    """The model configs shipped under ``training/configs``."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def preset_names(name: str) -> list[str]:
    """Presets of one config (``default`` and ``tiny`` at least)."""
    return sorted(_raw_config(name).get("presets", {}).keys())


def _raw_config(name: str) -> DictConfig:
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"no model config {name!r} in {CONFIG_DIR} (have: {', '.join(config_names())})")
    cfg = OmegaConf.load(path)
    assert isinstance(cfg, DictConfig)
    return cfg


def load_config(name: str, preset: str = "default", overrides: Sequence[str] = ()) -> DictConfig:
    """A model config with a preset and ``key=value`` overrides merged in (interpolations left live)."""
    raw = _raw_config(name)
    presets = raw.pop("presets", {})
    if preset not in presets:
        raise ConfigError(f"config {name!r} has no preset {preset!r} (have: {', '.join(presets)})")
    cfg = OmegaConf.merge(raw, presets[preset] or {}, OmegaConf.from_dotlist(list(overrides)))
    assert isinstance(cfg, DictConfig)
    return cfg


# -- the synthetic corpus -----------------------------------------------------------------------
@dataclass
class CorpusCall:
    """One rendered synthetic call with its exact truth."""

    call_id: str
    wav: Path  # 16 kHz mono PCM (telephone band when rendered so)
    rttm: Path
    duration: float
    voices: dict[str, Voice]  # role → synthetic voice
    turns: list[RefTurn]
    speech: list[SpeakerSegment]  # who spoke when (RTTM truth, overlaps kept)

    def single_speaker(self, role: str) -> list[Segment]:
        """Speech of ``role`` where nobody else speaks."""
        others = sorted((s.start, s.end) for s in self.speech if s.speaker != role)
        out: list[Segment] = []
        for s in sorted((s for s in self.speech if s.speaker == role), key=lambda s: s.start):
            pieces = [(s.start, s.end)]
            for a, b in others:
                pieces = [p for lo, hi in pieces for p in ((lo, min(hi, a)), (max(lo, b), hi)) if p[1] > p[0]]
            out += [Segment(lo, hi) for lo, hi in pieces]
        return out

    def overlap_with_others(self, turn: RefTurn) -> float:
        """Seconds of ``turn`` during which another speaker talks."""
        return sum(
            max(0.0, min(turn.end, s.end) - max(turn.start, s.start)) for s in self.speech if s.speaker != turn.speaker
        )


@dataclass
class SynthCorpus:
    """Rendered calls on disk: ``train`` to learn from, ``heldout`` for the quality checks."""

    root: Path
    train: list[CorpusCall]
    heldout: list[CorpusCall]


def render_corpus(
    out_dir: Path, *, calls: int, heldout: int, seed: int, telephone: bool = True, workers: int = 2,
    progress: bool = True,
) -> SynthCorpus:  # fmt: skip
    """Speak ``calls + heldout`` generated calls into ``out_dir`` as 16 kHz WAV + RTTM."""
    if calls < 1 or heldout < 1:
        raise BadInput(f"a corpus needs at least one training and one held-out call, got {calls} and {heldout}")
    out_dir.mkdir(parents=True, exist_ok=True)
    labelled = generate_calls(calls + heldout, seed)

    def one(call: LabelledCall) -> CorpusCall:
        synth = render_call(call, seed=seed, telephone=telephone)
        audio = synth.audio[0]
        if synth.sample_rate != SAMPLE_RATE:  # telephone calls come at 8 kHz; the models take 16 kHz
            audio = soxr.resample(audio, synth.sample_rate, SAMPLE_RATE)
        wav = write_wav(out_dir / f"{call.call_id}.wav", np.clip(audio, -1, 1), SAMPLE_RATE)
        rttm = write_rttm(out_dir / f"{call.call_id}.rttm", call.call_id, synth.segments)
        return CorpusCall(
            call_id=call.call_id,
            wav=wav,
            rttm=rttm,
            duration=len(audio) / SAMPLE_RATE,
            voices=dict(synth.voices),
            turns=synth.turns,
            speech=list(synth.segments),
        )

    started = time.perf_counter()
    with Progress(disable=not progress, transient=True) as bar, ThreadPoolExecutor(max_workers=workers) as pool:
        task = bar.add_task("speaking synthetic calls", total=len(labelled))
        rendered = []
        for c in pool.map(one, labelled):
            rendered.append(c)
            bar.advance(task)
    log.info(
        "rendered %d synthetic calls (%.2f h) in %.0f s",
        len(rendered),
        sum(c.duration for c in rendered) / 3600,
        time.perf_counter() - started,
    )
    return SynthCorpus(out_dir, rendered[:calls], rendered[calls:])


@contextmanager
def _corpus_for(
    corpus: SynthCorpus | None, cfg: DictConfig, seed: int, progress: bool
) -> Iterator[tuple[SynthCorpus, Path]]:
    """The given corpus (and a scratch dir), or one rendered for this config and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="callqa-build-") as tmp:
        work = Path(tmp)
        if corpus is None:
            corpus = render_corpus(
                work / "calls",
                calls=int(cfg.data.calls),
                heldout=int(cfg.data.heldout_calls),
                seed=seed,
                progress=progress,
            )
        elif len(corpus.train) < int(cfg.data.calls):
            log.warning("corpus has %d training calls, config asks for %d", len(corpus.train), cfg.data.calls)
        yield corpus, work


def _write_manifest(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _read_clip(wav: Path, start: float, end: float) -> np.ndarray:
    audio, _ = sf.read(wav, start=round(start * SAMPLE_RATE), stop=round(end * SAMPLE_RATE), dtype="float32")
    return audio


# -- training -----------------------------------------------------------------------------------
@dataclass
class TrainStats:
    steps: int = 0
    seconds: float = 0.0
    first_loss: float | None = None
    final_loss: float | None = None  # mean of the last 10% of steps (at least the last one)


@dataclass
class BuildReport:
    """What one build produced: the file, its training and its quality check."""

    kind: str
    path: Path
    preset: str
    train: TrainStats
    quality: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    size_mb: float = 0.0
    peak_rss_mb: float = 0.0

    def write(self) -> Path:
        """Write the report beside the model as ``<stem>.build.json``."""
        out = self.path.with_suffix(".build.json")
        data = asdict(self) | {"path": str(self.path.resolve())}
        out.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        return out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _loss_tracker() -> Any:
    from lightning.pytorch.callbacks import Callback

    class LossTracker(Callback):
        """Keeps every training loss (NeMo models do not log to a logger here)."""

        def __init__(self) -> None:
            self.losses: list[float] = []

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if loss is not None:
                self.losses.append(float(loss))

    return LossTracker()


def _train(spec: ModelSpec, cfg: DictConfig, seed: int, progress: bool, work: Path) -> tuple[Any, TrainStats]:
    """Build ``spec``'s NeMo model from ``cfg.model`` and fit it with ``cfg.trainer`` on CPU."""
    import lightning.pytorch as pl

    from callqa.speech.nemo_backends import nemo_asr, quiet_nemo

    asr = nemo_asr()
    pl.seed_everything(seed, workers=True, verbose=False)
    tracker = _loss_tracker()
    trainer_kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert isinstance(trainer_kwargs, dict)
    trainer = pl.Trainer(
        **trainer_kwargs, callbacks=[tracker], enable_progress_bar=progress, default_root_dir=str(work)
    )
    model = getattr(asr.models, spec.nemo_class)(cfg=cfg.model, trainer=trainer)
    quiet_nemo()
    started = time.perf_counter()
    with warnings.catch_warnings():  # NeMo's training steps self.log() into our logger-less Trainer
        warnings.filterwarnings("ignore", message=".*no logger configured.*")
        trainer.fit(model)
    losses = tracker.losses
    tail = losses[-max(1, len(losses) // 10) :]
    stats = TrainStats(
        steps=int(trainer.global_step),
        seconds=round(time.perf_counter() - started, 1),
        first_loss=round(losses[0], 4) if losses else None,
        final_loss=round(float(np.mean(tail)), 4) if tail else None,
    )
    if stats.steps < 1:
        raise ConfigError(f"{spec.config}: training ran no optimisation step (empty data or zero budget)")
    max_steps = trainer_kwargs.get("max_steps", -1)
    if isinstance(max_steps, int) and 0 < stats.steps < max_steps:
        # the wall-clock cap is a safety net: a model stopped by it depends on the machine's speed
        log.warning(
            "%s: training stopped at step %d of %d (time cap %s, max_epochs %s); this model is weaker "
            "than the same build where all steps ran", spec.config, stats.steps, max_steps,
            trainer_kwargs.get("max_time"), trainer_kwargs.get("max_epochs"),
        )  # fmt: skip
    model.eval()
    return model, stats


def _save(model: Any, path: Path) -> float:
    """Save ``model`` as ``.nemo`` atomically (a half-written file is never picked up); size in MB."""
    cfg = model.cfg
    with open_dict(cfg):  # manifests live in a temp dir that is about to vanish
        for split in ("train_ds", "validation_ds", "test_ds"):
            if cfg.get(split) is not None and "manifest_filepath" in cfg[split]:
                cfg[split].manifest_filepath = None
    model.cfg = cfg
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    model.save_to(str(partial))
    partial.replace(path)
    return round(path.stat().st_size / 2**20, 2)


def _finish(report: BuildReport, started: float) -> Path:
    report.seconds = round(time.perf_counter() - started, 1)
    report.peak_rss_mb = round(_peak_rss_mb(), 0)
    report.write()
    return report.path


# -- TitaNet ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Crop:
    wav: Path
    offset: float
    duration: float
    label: str


def voice_label(voice: Voice, by: str) -> str:
    """A speaker class: the whole voice (``voice``) or only what shapes its sound (``timbre``: variant, pitch).

    Voices that differ only in speaking rate sound the same in a 1–2 s window; as separate classes
    they would teach the embedding to spread one timbre apart.
    """
    if by == "voice":
        return voice.key
    if by == "timbre":
        return f"{voice.variant}-p{voice.pitch}"
    raise ConfigError(f"speaker labels must be 'voice' or 'timbre', not {by!r}")


def speaker_crops(
    calls: Sequence[CorpusCall], rng: random.Random, *, crop_seconds: tuple[float, float], per_second: float,
    heldout_share: float, label_by: str = "timbre",
) -> tuple[list[Crop], list[Crop]]:  # fmt: skip
    """Single-speaker crops labelled by voice, split by speech region into (train, held-out)."""
    lo, hi = crop_seconds
    train: list[Crop] = []
    held: list[Crop] = []
    for call in calls:
        for role, voice in call.voices.items():
            for region in call.single_speaker(role):
                if region.duration < min(lo, 0.5):
                    continue
                n = max(1, round(region.duration * per_second))
                target = held if rng.random() < heldout_share else train
                for _ in range(n):
                    d = min(region.duration, rng.uniform(lo, hi))
                    start = rng.uniform(region.start, region.end - d)
                    target.append(Crop(call.wav, round(start, 3), round(d, 3), voice_label(voice, label_by)))
    return train, held


def _speaker_id_accuracy(model: Any, crops: Sequence[Crop], batch_size: int = 32) -> float:
    """Share of held-out crops whose voice the model names (top-1 over the training voices)."""
    import torch

    labels = list(model.cfg.train_ds.labels)
    index = {v: i for i, v in enumerate(labels)}
    crops = [c for c in crops if c.label in index]
    if not crops:
        return float("nan")
    right = 0
    with torch.inference_mode():
        for k in range(0, len(crops), batch_size):
            batch = crops[k : k + batch_size]
            signal, lengths = pad_batch([_read_clip(c.wav, c.offset, c.offset + c.duration) for c in batch])
            logits, _ = model.forward(input_signal=signal, input_signal_length=lengths)
            right += int((logits.argmax(-1) == torch.tensor([index[c.label] for c in batch])).sum())
    return right / len(crops)


def diarization_error_rate(
    pairs: Sequence[tuple[list[SpeakerSegment], list[SpeakerSegment], float]], collar: float
) -> float:
    """Total DER (pyannote.metrics, overlaps scored) over (reference, hypothesis, duration) triples."""
    from pyannote.core import Segment as PSegment
    from pyannote.core import Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=collar, skip_overlap=False)
    for ref, hyp, duration in pairs:
        metric(to_annotation(ref), to_annotation(hyp), uem=Timeline([PSegment(0, duration)]))
    return float(abs(metric))


def _speech_of(call: CorpusCall) -> list[Segment]:
    """The true speech of a call as one timeline (overlaps merged): the perfect VAD."""
    merged: list[Segment] = []
    for s in sorted(call.speech, key=lambda s: s.start):
        if merged and s.start <= merged[-1].end:
            merged[-1] = Segment(merged[-1].start, max(merged[-1].end, s.end))
        else:
            merged.append(Segment(s.start, s.end))
    return merged


def _heldout_der(diarizer: Any, calls: Sequence[CorpusCall], collar: float) -> dict[str, float]:
    """DER of ``diarizer`` on held-out calls, speaker count given: over the true speech (the model's own
    error) and over Silero VAD speech (what the pipeline gets)."""
    from callqa.speech.vad import SileroVAD

    vad = SileroVAD()
    oracle, piped = [], []
    for call in calls:
        samples, _ = sf.read(call.wav, dtype="float32")
        oracle.append((call.speech, diarizer(samples, _speech_of(call), len(call.voices)), call.duration))
        piped.append((call.speech, diarizer(samples, vad(samples), len(call.voices)), call.duration))
    return {
        "der": round(diarization_error_rate(oracle, collar), 4),
        "der_silero_vad": round(diarization_error_rate(piped, collar), 4),
    }


def build_speaker_model(
    models_dir: Path,
    *,
    preset: str = "default",
    seed: int = 0,
    corpus: SynthCorpus | None = None,
    overrides: Sequence[str] = (),
    progress: bool = True,
) -> Path:
    """Train TitaNet-small on synthetic voices → ``models_dir/titanet_small.nemo``; logs ID accuracy and DER."""
    from callqa.speech.nemo_backends import NemoClusteringDiarizer

    spec = SPECS["speaker"]
    cfg = load_config(spec.config, preset, overrides)
    started = time.perf_counter()
    with _corpus_for(corpus, cfg, seed, progress) as (synth, work):
        rng = random.Random(seed)
        data = cfg.data
        train, held = speaker_crops(
            synth.train[: int(data.calls)],
            rng,
            crop_seconds=(float(data.crop_seconds[0]), float(data.crop_seconds[1])),
            per_second=float(data.crops_per_second),
            heldout_share=float(data.heldout_share),
            label_by=str(data.label_by),
        )
        counts: dict[str, int] = defaultdict(int)
        for c in train:
            counts[c.label] += 1
        voices = sorted(v for v, n in counts.items() if n >= int(data.min_voice_crops))
        train = [c for c in train if c.label in set(voices)]
        if len(voices) < 2:
            raise BadInput(f"speaker model: {len(voices)} voice(s) with enough speech; render more calls")
        rng.shuffle(train)
        manifest = _write_manifest(
            work / "speaker_train.json",
            [
                {"audio_filepath": str(c.wav), "offset": c.offset, "duration": c.duration, "label": c.label}
                for c in train
            ],
        )
        with open_dict(cfg):
            cfg.model.train_ds.manifest_filepath = str(manifest)
            cfg.model.decoder.num_classes = len(voices)
        log.info("speaker model: %d crops of %d voices (%d held out)", len(train), len(voices), len(held))
        model, stats = _train(spec, cfg, seed, progress, work)
        path = models_dir / spec.file
        size = _save(model, path)
        accuracy = _speaker_id_accuracy(model, held)
        heldout = synth.heldout[: int(data.heldout_calls)]
        der = _heldout_der(NemoClusteringDiarizer(path), heldout, float(data.collar))
    quality = {"speaker_id_accuracy": round(accuracy, 4), **der}
    report = BuildReport("speaker", path, preset, stats, quality, size_mb=size)
    log.info(
        "speaker model %s: %d steps in %.0f s, loss %s → %s; speaker-ID accuracy %.1f%% on %d held-out crops; "
        "clustering DER %.1f%% on true speech, %.1f%% on Silero VAD speech (collar %.2f s, %d held-out calls)",
        path.name, stats.steps, stats.seconds, stats.first_loss, stats.final_loss, 100 * accuracy, len(held),
        100 * der["der"], 100 * der["der_silero_vad"], float(data.collar), len(heldout),
    )  # fmt: skip
    return _finish(report, started)


# -- Sortformer ---------------------------------------------------------------------------------
def diarization_sessions(calls: Sequence[CorpusCall], session: float, hop: float) -> list[dict[str, Any]]:
    """NeMo E2E-diarization manifest rows: windows of ``session`` s every ``hop`` s over each call."""
    rows = []
    for call in calls:
        offset = 0.0
        while True:
            duration = min(session, call.duration - offset)
            if duration >= min(session, call.duration) * 0.5:
                rows.append(
                    {
                        "audio_filepath": str(call.wav),
                        "offset": round(offset, 2),
                        "duration": round(duration, 2),
                        "rttm_filepath": str(call.rttm),
                        "num_speakers": len(call.voices),
                        "uniq_id": f"{call.call_id}_{round(offset * 100)}",
                    }
                )
            offset += hop
            if offset + session * 0.5 > call.duration:
                break
    return rows


def build_sortformer(
    models_dir: Path,
    *,
    preset: str = "default",
    seed: int = 0,
    corpus: SynthCorpus | None = None,
    overrides: Sequence[str] = (),
    progress: bool = True,
) -> Path:
    """Train a tiny Sortformer on synthetic calls → ``models_dir/sortformer_tiny.nemo``; logs its DER."""
    from callqa.speech.nemo_backends import SortformerDiarizer

    spec = SPECS["sortformer"]
    cfg = load_config(spec.config, preset, overrides)
    started = time.perf_counter()
    with _corpus_for(corpus, cfg, seed, progress) as (synth, work):
        data = cfg.data
        rows = diarization_sessions(
            synth.train[: int(data.calls)], float(data.session_seconds), float(data.session_hop)
        )
        random.Random(seed).shuffle(rows)
        manifest = _write_manifest(work / "sortformer_train.json", rows)
        with open_dict(cfg):
            cfg.model.train_ds.manifest_filepath = str(manifest)
        log.info("sortformer: %d sessions of %.0f s", len(rows), float(data.session_seconds))
        model, stats = _train(spec, cfg, seed, progress, work)
        path = models_dir / spec.file
        size = _save(model, path)
        heldout = synth.heldout[: int(data.heldout_calls)]
        der = _heldout_der(SortformerDiarizer(path), heldout, float(data.collar))
    report = BuildReport("sortformer", path, preset, stats, der, size_mb=size)
    log.info(
        "sortformer %s: %d steps in %.0f s, loss %s → %s; DER %.1f%% on true speech, %.1f%% on Silero VAD speech "
        "(collar %.2f s, %d held-out calls)",
        path.name, stats.steps, stats.seconds, stats.first_loss, stats.final_loss, 100 * der["der"],
        100 * der["der_silero_vad"], float(data.collar), len(heldout),
    )  # fmt: skip
    return _finish(report, started)


# -- FastConformer CTC --------------------------------------------------------------------------
@dataclass(frozen=True)
class Utterance:
    wav: Path
    offset: float
    duration: float
    text: str


def asr_utterances(calls: Sequence[CorpusCall], *, min_seconds: float, max_seconds: float) -> list[Utterance]:
    """Turns spoken without overlap, with their ``asr_text`` as the target."""
    out = []
    for call in calls:
        for turn in call.turns:
            text = asr_text(turn.text)
            duration = turn.end - turn.start
            if not text or not min_seconds <= duration <= max_seconds or call.overlap_with_others(turn) > 0.05:
                continue
            out.append(Utterance(call.wav, round(turn.start, 3), round(duration, 3), text))
    return out


def train_tokenizer(texts: Sequence[str], out_dir: Path, *, vocab_size: int, kind: str, coverage: float) -> Path:
    """A SentencePiece tokenizer trained on ``texts``, laid out as NeMo's ``tokenizer.dir`` expects."""
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    text_file = out_dir / "text.txt"
    text_file.write_text("\n".join(t for t in texts if t) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(text_file),
        model_prefix=str(out_dir / "tokenizer"),
        vocab_size=vocab_size,
        model_type=kind,
        character_coverage=coverage,
        bos_id=-1,  # CTC needs neither sentence markers nor padding pieces
        eos_id=-1,
        hard_vocab_limit=False,  # a small corpus may not support the full vocabulary
        shuffle_input_sentence=True,
        minloglevel=2,
    )
    # NeMo also registers a WordPiece-style vocab.txt next to the model: word-initial pieces bare, others "##"
    pieces = [line.split("\t")[0] for line in (out_dir / "tokenizer.vocab").read_text(encoding="utf-8").splitlines()]
    specials = {"<unk>", "<s>", "</s>", "<pad>"}
    tokens = [p[1:] or p if p.startswith("▁") else f"##{p}" for p in pieces if p not in specials]
    (out_dir / "vocab.txt").write_text("".join(f"{t}\n" for t in tokens), encoding="utf-8")
    return out_dir


def _transcribe_texts(model: Any, clips: Sequence[np.ndarray], batch_size: int = 8) -> list[str]:
    hyps = model.transcribe(list(clips), batch_size=batch_size, verbose=False)
    if isinstance(hyps, tuple):
        hyps = hyps[0]
    return [h.text if hasattr(h, "text") else str(h) for h in hyps]


def build_ctc_asr(
    models_dir: Path,
    *,
    preset: str = "default",
    seed: int = 0,
    corpus: SynthCorpus | None = None,
    overrides: Sequence[str] = (),
    progress: bool = True,
) -> Path:
    """Train a tiny Russian FastConformer-CTC (+ tokenizer) → ``models_dir/fastconformer_ctc_tiny.nemo``; logs CER."""
    import jiwer

    spec = SPECS["asr"]
    cfg = load_config(spec.config, preset, overrides)
    started = time.perf_counter()
    with _corpus_for(corpus, cfg, seed, progress) as (synth, work):
        data = cfg.data
        train = asr_utterances(
            synth.train[: int(data.calls)], min_seconds=float(data.min_seconds), max_seconds=float(data.max_seconds)
        )
        if not train:
            raise BadInput("ASR model: no single-speaker turns in the corpus; render more calls")
        random.Random(seed).shuffle(train)
        manifest = _write_manifest(
            work / "asr_train.json",
            [{"audio_filepath": str(u.wav), "offset": u.offset, "duration": u.duration, "text": u.text} for u in train],
        )
        texts = [u.text for u in train] + [
            asr_text(t.text) for c in generate_calls(int(data.text_calls), seed + 1_000_003) for t in c.turns
        ]
        tok = cfg.tokenizer
        tokenizer_dir = train_tokenizer(
            texts, work / "tokenizer", vocab_size=int(tok.vocab_size), kind=str(tok.type),
            coverage=float(tok.character_coverage),
        )  # fmt: skip
        with open_dict(cfg):
            cfg.model.train_ds.manifest_filepath = str(manifest)
            cfg.model.tokenizer.dir = str(tokenizer_dir)
        log.info("ASR model: %d utterances (%.2f h)", len(train), sum(u.duration for u in train) / 3600)
        model, stats = _train(spec, cfg, seed, progress, work)
        path = models_dir / spec.file
        size = _save(model, path)
        # the words the model was taught, for respelling what it hears (callqa.speech.lexicon)
        lexicon = write_lexicon(path.with_suffix(".lexicon.txt"), word_counts(texts))
        held = asr_utterances(
            synth.heldout[: int(data.heldout_calls)],
            min_seconds=float(data.min_seconds),
            max_seconds=float(data.max_seconds),
        )[: int(data.heldout_utterances)]
        refs = [u.text for u in held]
        hyps = _transcribe_texts(model, [_read_clip(u.wav, u.offset, u.offset + u.duration) for u in held])
        corrector = LexiconCorrector.from_file(lexicon)
        fixed = [corrector.correct_text(h) for h in hyps]
        quality = {
            "cer": float(jiwer.cer(refs, hyps)) if held else float("nan"),
            "wer": float(jiwer.wer(refs, hyps)) if held else float("nan"),
            "wer_lexicon": float(jiwer.wer(refs, fixed)) if held else float("nan"),
        }
    cer, wer = quality["cer"], quality["wer"]
    report = BuildReport("asr", path, preset, stats, {k: round(v, 4) for k, v in quality.items()}, size_mb=size)
    log.info(
        "ASR model %s: %d steps in %.0f s, loss %s → %s; CER %.1f%%, WER %.1f%% (%.1f%% with the lexicon) on %d "
        "held-out utterances",
        path.name, stats.steps, stats.seconds, stats.first_loss, stats.final_loss, 100 * cer, 100 * wer,
        100 * quality["wer_lexicon"], len(held),
    )  # fmt: skip
    if held:
        log.info("ASR example: ref %r / hyp %r", refs[0], hyps[0])
    return _finish(report, started)


# -- everything ---------------------------------------------------------------------------------
BUILDERS = {"speaker": build_speaker_model, "sortformer": build_sortformer, "asr": build_ctc_asr}


def build_all(
    models_dir: Path, *, quick: bool = False, seed: int = 0, only: set[str] | None = None, progress: bool = True
) -> dict[str, Path]:
    """Build the speech models (``only`` a subset of speaker|sortformer|asr) on one shared synthetic corpus.

    ``quick`` uses the ``tiny`` presets (minimal models, a few calls, one or two optimisation steps).
    """
    kinds = [k for k in MODEL_KINDS if only is None or k in only]
    unknown = set(only or ()) - set(MODEL_KINDS)
    if unknown or not kinds:
        raise BadInput(f"unknown model kind(s) {sorted(unknown)}; choose from {', '.join(MODEL_KINDS)}")
    preset = "tiny" if quick else "default"
    configs = {k: load_config(SPECS[k].config, preset) for k in kinds}
    started = time.perf_counter()
    built: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="callqa-corpus-") as tmp:
        corpus = render_corpus(
            Path(tmp),
            calls=max(int(c.data.calls) for c in configs.values()),
            heldout=max(int(c.data.heldout_calls) for c in configs.values()),
            seed=seed,
            progress=progress,
        )
        for kind in kinds:
            built[kind] = BUILDERS[kind](models_dir, preset=preset, seed=seed, corpus=corpus, progress=progress)
    log.info(
        "built %s in %.0f s (peak memory %.0f MB)",
        ", ".join(p.name for p in built.values()),
        time.perf_counter() - started,
        _peak_rss_mb(),
    )
    return built


def build_report(path: Path) -> dict[str, Any]:
    """The ``<stem>.build.json`` written beside a built model."""
    report = path.with_suffix(".build.json")
    if not report.is_file():
        raise BadInput(f"{report}: no build report (was the model built by build-models?)")
    return json.loads(report.read_text(encoding="utf-8"))


__all__ = [
    "MODEL_KINDS",
    "SPECS",
    "BuildReport",
    "SynthCorpus",
    "build_all",
    "build_ctc_asr",
    "build_report",
    "build_sortformer",
    "build_speaker_model",
    "config_names",
    "diarization_error_rate",
    "load_config",
    "preset_names",
    "render_corpus",
]
