"""A local Label Studio server: its own virtual environment, SQLite, admin and token from settings.

Label Studio pins Django, numpy and its SDK in ways our stack does not share, so it lives in
``settings.labelstudio.venv`` and runs as a subprocess; callqa only talks to it over HTTP with
``label-studio-sdk``. The first start creates the admin user and a fixed *legacy* API token from
settings (``LABEL_STUDIO_USER_TOKEN``), with legacy tokens enabled for the organisation, so no
step is interactive. Current servers default to personal access tokens (JWT refresh tokens); the
SDK tells the two apart by shape and our client accepts either (``CALLQA_LABELSTUDIO__API_KEY``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from callqa.errors import BadInput, ConfigError, ServiceUnavailable
from callqa.process import ServerProcess, port_open
from callqa.settings import Settings, get_settings
from callqa.storage import LocalStore, open_store

log = logging.getLogger(__name__)

# Variables Label Studio falls back to when its own are unset: never let the caller's leak in.
_LEAKY_ENV = ("USERNAME", "PASSWORD", "PORT", "HOST", "DJANGO_DB", "DATABASE_URL")


def ensure_venv(settings: Settings | None = None, *, quiet: bool = True) -> Path:
    """Label Studio's virtual environment (created on first use, ~1.5 min); returns its ``label-studio``."""
    cfg = (settings or get_settings()).labelstudio
    venv = cfg.venv.resolve()
    exe = venv / "bin" / "label-studio"
    stamp = venv / f".installed-{cfg.version}"
    if exe.is_file() and stamp.is_file():
        return exe
    log.info("installing label-studio==%s into %s (once)", cfg.version, venv)
    python = shutil.which("python3.11") or sys.executable
    try:
        if not (venv / "bin" / "python").is_file():
            subprocess.run([python, "-m", "venv", str(venv)], check=True)
        cmd = [str(venv / "bin" / "pip"), "install", f"label-studio=={cfg.version}"]
        subprocess.run([*cmd, "-q"] if quiet else cmd, check=True)
    except subprocess.CalledProcessError as exc:
        raise ConfigError(f"could not install label-studio=={cfg.version} into {venv}: {exc}") from exc
    stamp.touch()
    return exe


class LabelStudioServer(ServerProcess):
    name = "Label Studio"
    poll_seconds = 1.0
    """Start, wait for and stop a Label Studio on 127.0.0.1 (``with LabelStudioServer(...) as srv:``)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        port: int | None = None,
        data_dir: Path | None = None,
        documents_root: Path | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        cfg = self.settings.labelstudio
        parsed = urlparse(cfg.url)
        if parsed.hostname not in ("127.0.0.1", "localhost"):
            raise BadInput(f"the local server runs on 127.0.0.1; settings point at {cfg.url}")
        self.port = port or parsed.port or 8080
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = (data_dir or self.settings.labelstudio_dir).resolve()
        store = open_store(self.settings)
        if documents_root is None and not isinstance(store, LocalStore):
            documents_root = self.data_dir / "media-root"
        self.documents_root = (documents_root or store.root).resolve()
        super().__init__(self.data_dir / "server.log")

    def env(self) -> dict[str, str]:
        cfg = self.settings.labelstudio
        env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
        env.update(
            {
                "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
                "LABEL_STUDIO_USERNAME": cfg.username,
                "LABEL_STUDIO_PASSWORD": cfg.password,
                "LABEL_STUDIO_USER_TOKEN": cfg.api_key,
                "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
                "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
                "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(self.documents_root),
                "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
                "LATEST_VERSION_CHECK": "false",
                "COLLECT_ANALYTICS": "false",
                # no error reports to Sentry from a self-hosted box (they only time out here anyway)
                "LABEL_STUDIO_SENTRY_DSN": "",
                "LABEL_STUDIO_FRONTEND_SENTRY_DSN": "",
                # our webhook receiver runs on loopback too
                "SSRF_PROTECTION_ENABLED": "false",
                "ML_BLOCK_LOCAL_IP": "false",
            }
        )
        return env

    def start(self, timeout: float = 180.0) -> LabelStudioServer:
        if port_open(self.port):
            # Label Studio would silently move to the next port; say so instead
            raise ServiceUnavailable(
                f"port {self.port} is already in use; stop what listens there or set CALLQA_LABELSTUDIO__URL"
            )
        exe = ensure_venv(self.settings)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.documents_root.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(exe),
            "start",
            "--no-browser",
            "--internal-host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        self.launch(cmd, self.env(), timeout)
        return self

    @property
    def health_url(self) -> str:
        return f"{self.url}/health"
