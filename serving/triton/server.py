"""A local Triton server: the ``tritonserver`` that ``nvidia-pytriton`` bundles, from its own venv.

The bundle (Triton 2.51) has the Python backend only, needs ``numpy<2`` (with numpy 2 outputs
come back silently empty) and links the system libpython, so it runs from ``.venv-triton``
(created on first use) as a subprocess; callqa talks to it with ``tritonclient`` alone.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from callqa.errors import BadInput, ConfigError, ServiceUnavailable
from callqa.process import LOOPBACK, ServerProcess, free_port, port_open

log = logging.getLogger(__name__)

DEFAULT_VENV = Path(".venv-triton")
REQUIREMENTS = ("nvidia-pytriton==0.7.0", "numpy<2", "onnxruntime==1.32.0")
EXIT_TIMEOUT_S = 2  # Triton waits 30 s for in-flight requests on shutdown by default
HOST = LOOPBACK
# Our venv's variables would make the backend stub's Python read the wrong site-packages.
_DROPPED_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3.*/site-packages"))
    if not found:
        raise ConfigError(f"{venv}: no site-packages (a broken venv? remove it to rebuild)")
    return found[-1]


def ensure_venv(venv: Path = DEFAULT_VENV, *, quiet: bool = True) -> Path:
    """The Triton venv (created on first use, ~1-2 min); returns the backend directory prepared in it.

    That directory is the bundle's Python backend plus the backend stub built for the venv's Python
    (pytriton copies it the same way before each start of its own).
    """
    venv = venv.resolve()
    backends = venv / "backends"
    stamp = venv / ".callqa-installed"  # holds the requirements it was built with
    wanted = "\n".join(REQUIREMENTS)
    if (
        stamp.is_file()
        and stamp.read_text() == wanted
        and (backends / "python" / "triton_python_backend_stub").is_file()
    ):
        return backends
    log.info("installing %s into %s (once)", " ".join(REQUIREMENTS), venv)
    try:
        if not _venv_python(venv).is_file():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        cmd = [str(_venv_python(venv)), "-m", "pip", "install", *REQUIREMENTS]
        subprocess.run([*cmd, "-q"] if quiet else cmd, check=True)
    except subprocess.CalledProcessError as exc:
        raise ConfigError(f"could not install {' '.join(REQUIREMENTS)} into {venv}: {exc}") from exc
    bundle = _site_packages(venv) / "pytriton" / "tritonserver"
    version = _python_version(venv)
    stub = bundle / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise ConfigError(f"nvidia-pytriton has no Python backend stub for Python {version} ({stub})")
    if backends.exists():
        shutil.rmtree(backends)
    shutil.copytree(bundle / "backends", backends)
    shutil.copy2(stub, backends / "python" / "triton_python_backend_stub")
    stamp.write_text(wanted)
    return backends


def _python_version(venv: Path) -> str:
    out = subprocess.run(
        [str(_venv_python(venv)), "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def _python_libdir(venv: Path) -> Path:
    """Where the venv's interpreter keeps ``libpython3.X.so`` (the backend stub links it)."""
    code = "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"
    out = subprocess.run([str(_venv_python(venv)), "-c", code], check=True, capture_output=True, text=True)
    libdir = Path(out.stdout.strip())
    if not any(libdir.glob("libpython3*.so*")):
        raise ConfigError(
            f"{libdir} has no libpython3.*.so: Triton's Python backend needs a Python built with --enable-shared"
        )
    return libdir


class TritonServer(ServerProcess):
    """Start, wait for and stop a local ``tritonserver`` (``with TritonServer(repo) as srv: srv.http_url``)."""

    name = "tritonserver"
    poll_seconds = 0.2

    def __init__(
        self,
        repository: str | Path,
        *,
        http_port: int | None = None,
        grpc_port: int | None = None,
        venv: Path = DEFAULT_VENV,
        log_path: Path | None = None,
    ) -> None:
        self.repository = Path(repository).resolve()
        if not self.repository.is_dir():
            raise BadInput(f"{repository}: no such Triton model repository")
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        if self.grpc_port == self.http_port:
            raise BadInput("the HTTP and gRPC ports must differ")
        self.venv = Path(venv).resolve()
        super().__init__(log_path or self.repository.parent / f"{self.repository.name}-tritonserver.log")

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"grpc://{HOST}:{self.grpc_port}"

    def command(self, backends: Path) -> list[str]:
        exe = _site_packages(self.venv) / "pytriton" / "tritonserver" / "bin" / "tritonserver"
        return [
            str(exe),
            f"--model-repository={self.repository}",
            f"--backend-directory={backends}",
            f"--http-address={HOST}",
            f"--http-port={self.http_port}",
            f"--grpc-address={HOST}",
            f"--grpc-port={self.grpc_port}",
            "--allow-metrics=false",
            f"--exit-timeout-secs={EXIT_TIMEOUT_S}",
        ]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        libs = [str(_python_libdir(self.venv)), str(_site_packages(self.venv) / "nvidia_pytriton.libs")]
        if env.get("LD_LIBRARY_PATH"):
            libs.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = ":".join(libs)
        env["PATH"] = f"{self.venv / 'bin'}:{env.get('PATH', '')}"
        return env

    def start(self, timeout: float = 120.0) -> TritonServer:
        for port in (self.http_port, self.grpc_port):
            if port_open(port):
                raise ServiceUnavailable(f"port {port} is already in use; stop what listens there or pick another")
        backends = ensure_venv(self.venv)
        self.launch(self.command(backends), self.env(), timeout)
        log.info("tritonserver ready", extra={"http": self.http_url, "grpc": self.grpc_url, "log": str(self.log_path)})
        return self

    @property
    def health_url(self) -> str:
        return f"{self.http_url}/v2/health/ready"
