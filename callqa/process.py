"""Helper servers callqa starts on loopback (Label Studio, tritonserver): each in its own process
group, its output in a log file (an unread pipe fills and stalls the server), waited for until its
health URL answers, stopped with its children."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

import httpx

from callqa.errors import ServiceUnavailable

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """Whether something listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class ServerProcess:
    """A server process: subclasses build the command and call ``launch`` from their ``start``."""

    name = "server"
    poll_seconds = 0.5

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def health_url(self) -> str:
        raise NotImplementedError

    def start(self, timeout: float = 120.0) -> Self:
        raise NotImplementedError

    def launch(self, cmd: list[str], env: dict[str, str], timeout: float) -> None:
        """Run ``cmd`` and wait until it is healthy; stopped again if it is not."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as logfile:
            self.proc = subprocess.Popen(cmd, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServiceUnavailable(
                    f"{self.name} exited with code {self.proc.returncode}; see {self.log_path}:\n{self.tail()}"
                )
            try:
                if httpx.get(self.health_url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(self.poll_seconds)
        raise ServiceUnavailable(f"{self.name} was not ready in {timeout:.0f} s; see {self.log_path}:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        if not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
