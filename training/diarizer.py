"""Fine-tune the clustering diarizer's TitaNet speaker model on labelled audio (WAV + RTTM).

The base is the current ``callqa-diarizer`` champion, else the TitaNet that ``callqa speech
build-models`` built. Labelled audio is a directory of ``<call>.wav`` + ``<call>.rttm`` pairs
(``callqa generate --audio`` writes them; Label Studio speaker regions export to them later);
without one, synthetic calls are spoken for the run. Speaker classes are the call's own
speakers (``call:spk``): what the embedding must learn is to tell two voices of one call apart.
A new angular-softmax head is trained with the encoder under the same Lightning Trainer; the
clustering DER on held-out calls is measured before and after, logged and registered with the
``.nemo`` under ``callqa-diarizer``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import soundfile as sf

from callqa import registry
from callqa.errors import BadInput, ModelNotFound
from callqa.modelfiles import CONFIG_FILE
from callqa.settings import Settings, get_settings
from callqa.speech.segments import read_rttm
from training.fit import FitOptions
from training.jobs import TrainOutcome
from training.speech_models import (
    CorpusCall,
    _heldout_der,
    _save,
    _write_manifest,
    render_corpus,
)

log = logging.getLogger(__name__)
NEMO_FILE = "titanet.nemo"


@dataclass
class DiarizerSpec:
    data: list[Path] = field(default_factory=list)  # directories (or files) of WAV + RTTM
    fit: FitOptions = field(default_factory=FitOptions)
    register: bool = True
    base: Path | None = None
    synthetic_calls: int = 12
    heldout_share: float = 0.25
    crop_seconds: tuple[float, float] = (0.8, 2.0)
    crops_per_second: float = 0.8
    collar: float = 0.25


def labelled_audio(paths: list[Path]) -> list[CorpusCall]:
    """WAV + RTTM pairs from files or directories (the RTTM beside each WAV, same stem)."""
    wavs: list[Path] = []
    for p in paths:
        wavs += sorted(p.glob("*.wav")) if p.is_dir() else [p] if p.suffix == ".wav" else []
    calls = []
    for wav in wavs:
        rttm = wav.with_suffix(".rttm")
        if not rttm.is_file():
            raise BadInput(f"{wav}: no speaker labels beside it ({rttm.name} is missing)")
        turns = read_rttm(rttm)
        segments = [s for segs in turns.values() for s in segs]
        if not segments:
            raise BadInput(f"{rttm}: no speaker segments")
        info = sf.info(wav)
        if info.samplerate != 16_000 or info.channels != 1:
            raise BadInput(f"{wav}: fine-tuning reads 16 kHz mono WAV, got {info.samplerate} Hz × {info.channels}")
        speakers = sorted({s.speaker for s in segments})
        calls.append(
            CorpusCall(
                call_id=wav.stem,
                wav=wav,
                rttm=rttm,
                duration=info.duration,
                voices=dict.fromkeys(speakers),  # type: ignore[arg-type]  # only the count is read
                turns=[],
                speech=segments,
            )
        )
    if len(calls) < 2:
        raise BadInput(f"need at least 2 labelled calls (WAV + RTTM) to train and check, found {len(calls)}")
    return calls


def base_model(spec: DiarizerSpec, settings: Settings) -> tuple[Path, str]:
    """The speaker model to start from and its name."""
    if spec.base is not None:
        return spec.base, spec.base.name
    if registry.champion("diarizer", settings) is not None:
        from callqa.models import fetch

        path, name = fetch(registry.CHAMPION, "diarizer", settings)
        return path / NEMO_FILE, name
    path = settings.speech.speaker_model or settings.models_dir / "titanet_small.nemo"
    if not Path(path).is_file():
        raise ModelNotFound(
            f"{path}: no speaker model to fine-tune; build one: callqa speech build-models --only speaker"
        )
    return Path(path), Path(path).name


def _finetune(base: Path, calls: list[CorpusCall], spec: DiarizerSpec, work: Path, run_id, tracking_uri):
    import lightning.pytorch as pl
    from omegaconf import open_dict
    from torch import nn

    from callqa.speech.nemo_backends import nemo_asr, quiet_nemo
    from training.fit import mlflow_logger, quiet_lightning, trainer_kwargs

    quiet_lightning()
    rng = random.Random(spec.fit.seed)
    # a speaker class is one speaker of one call (RTTM labels are per call, voices are not known)
    crops = []
    for call in calls:
        for speaker in call.voices:
            for region in call.single_speaker(speaker):
                if region.duration < 0.5:
                    continue
                for _ in range(max(1, round(region.duration * spec.crops_per_second))):
                    d = min(region.duration, rng.uniform(*spec.crop_seconds))
                    start = rng.uniform(region.start, region.end - d)
                    crops.append((call.wav, round(start, 3), round(d, 3), f"{call.call_id}:{speaker}"))
    labels = sorted({c[3] for c in crops})
    if len(labels) < 2:
        raise BadInput("fine-tuning needs speech of at least two speakers")
    rng.shuffle(crops)
    manifest = _write_manifest(
        work / "finetune.json",
        [{"audio_filepath": str(w), "offset": o, "duration": d, "label": lab} for w, o, d, lab in crops],
    )
    asr = nemo_asr()
    model = asr.models.EncDecSpeakerLabelModel.restore_from(str(base), map_location="cpu")
    quiet_nemo()
    pl.seed_everything(spec.fit.seed, workers=True, verbose=False)
    trainer = pl.Trainer(
        **trainer_kwargs(spec.fit), logger=mlflow_logger(run_id, tracking_uri), enable_progress_bar=spec.fit.progress
    )
    cfg = model.cfg
    with open_dict(cfg):
        cfg.train_ds.manifest_filepath = str(manifest)
        cfg.train_ds.labels = None
        cfg.train_ds.batch_size = spec.fit.batch_size
        cfg.decoder.num_classes = len(labels)
        cfg.optim.lr = spec.fit.lr
        cfg.optim.pop("sched", None)  # constant learning rate: a short fine-tune needs no schedule
    model.decoder.final = nn.Linear(
        model.decoder.final.in_features, len(labels), bias=False
    )  # a head for these speakers
    model.decoder._num_classes = len(labels)
    model.set_trainer(trainer)
    model.setup_training_data(cfg.train_ds)
    model.setup_optimization(cfg.optim)
    model.cfg = cfg
    trainer.fit(model)
    model.eval()
    return model, {"crops": float(len(crops)), "speakers": float(len(labels)), "steps": float(trainer.global_step)}


def train_diarizer(spec: DiarizerSpec, settings: Settings | None = None) -> TrainOutcome:
    """Fine-tune, measure DER before/after on held-out calls, log and register (see the module docstring)."""
    import mlflow
    from callqa.speech.nemo_backends import NemoClusteringDiarizer

    settings = settings or get_settings()
    began = time.perf_counter()
    base, base_name = base_model(spec, settings)
    scratch = Path(tempfile.mkdtemp(prefix="callqa-diarizer-"))
    try:
        if spec.data:
            calls = labelled_audio(spec.data)
        else:
            n_held = max(1, round(spec.synthetic_calls * spec.heldout_share))
            corpus = render_corpus(
                scratch / "calls", calls=spec.synthetic_calls - n_held, heldout=n_held, seed=spec.fit.seed + 7,
                progress=spec.fit.progress,
            )  # fmt: skip
            calls = corpus.train + corpus.heldout
        calls.sort(key=lambda c: c.call_id)
        digest = hashlib.sha256(
            "".join(f"{c.call_id}:{c.wav.stat().st_size}:{c.rttm.read_text(encoding='utf-8')}" for c in calls).encode()
        ).hexdigest()[:16]
        n_held = max(1, round(len(calls) * spec.heldout_share))
        train_calls, held = calls[:-n_held], calls[-n_held:]
        registry.use(settings)
        experiment_id = registry.experiment("callqa-diarizer", settings)
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"diarizer-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        ) as run:
            mlflow.log_params(
                {
                    "task": "diarizer",
                    "dataset_hash": digest,
                    "base_model": base_name,
                    "train_calls": len(train_calls),
                    "heldout_calls": len(held),
                    "data": ",".join(map(str, spec.data)) or "synthetic",
                    "lr": spec.fit.lr,
                    "max_steps": spec.fit.max_steps,
                    "max_minutes": spec.fit.max_minutes,
                    "batch_size": spec.fit.batch_size,
                }
            )
            before = _heldout_der(NemoClusteringDiarizer(base), held, spec.collar)
            model, stats = _finetune(
                base, train_calls, spec, scratch, run.info.run_id, registry.registry(settings).tracking_uri
            )
            out = scratch / "model"
            out.mkdir()
            _save(model, out / NEMO_FILE)
            after = _heldout_der(NemoClusteringDiarizer(out / NEMO_FILE), held, spec.collar)
            metrics = {
                **stats,
                "der_before": before["der"],
                "der_after": after["der"],
                "der_silero_vad_before": before["der_silero_vad"],
                "der_silero_vad_after": after["der_silero_vad"],
            }
            mlflow.log_metrics(metrics)
            (out / CONFIG_FILE).write_text(
                json.dumps({"type": "diarizer", "file": NEMO_FILE, "base": base_name, **metrics}, indent=2),
                encoding="utf-8",
            )
            mlflow.log_artifacts(str(out), artifact_path="model")
            version = None
            if spec.register:
                source = f"{run.info.artifact_uri}/model"
                version = registry.register_artifacts("diarizer", source, run.info.run_id, settings)
                mlflow.set_tag("callqa.registered_version", version)
            run_id = run.info.run_id
        keep = Path(tempfile.mkdtemp(prefix="callqa-diarizer-model-"))
        shutil.copytree(out, keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("diarizer fine-tuned: DER %.3f → %.3f", metrics["der_before"], metrics["der_after"])
    return TrainOutcome("diarizer", run_id, version, keep, metrics, digest, time.perf_counter() - began)
