"""A trained model on disk: ``model.json`` (its config) + ``weights.pt`` (a plain state dict).

Serving loads such a directory with PyTorch alone (no Lightning, no MLflow); the registry
stores the same directory as the artifacts of a version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

import torch
from pydantic import BaseModel

from callqa.errors import ModelNotFound

C = TypeVar("C", bound=BaseModel)

CONFIG_FILE = "model.json"
WEIGHTS_FILE = "weights.pt"


def save_model_dir(net: torch.nn.Module, config: BaseModel, path: str | Path) -> Path:
    """Write ``weights.pt`` + ``model.json`` into ``path`` (created if needed)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path / WEIGHTS_FILE)
    (path / CONFIG_FILE).write_text(json.dumps(config.model_dump(mode="json"), indent=2), encoding="utf-8")
    return path


def model_type(path: str | Path) -> str | None:
    """The ``type`` a model directory declares, or None when ``path`` is not one."""
    meta = Path(path) / CONFIG_FILE
    if not meta.is_file():
        return None
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("type")
    except (json.JSONDecodeError, AttributeError):
        return None


def read_model_dir(path: str | Path, config_class: type[C], version: int) -> tuple[C, dict]:
    """The config and state dict of a model directory; ``ModelNotFound`` saying what is wrong."""
    path = Path(path)
    meta, weights = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not meta.is_file() or not weights.is_file():
        raise ModelNotFound(f"{path}: not a model directory (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        config = config_class.model_validate_json(meta.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelNotFound(f"{path / CONFIG_FILE}: not a {config_class.__name__} ({exc})") from exc
    found = getattr(config, "feature_version", version)
    if found != version:
        raise ModelNotFound(f"{path}: built for features v{found}, this callqa reads v{version}")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: torch raises many kinds
        raise ModelNotFound(f"{path / WEIGHTS_FILE}: unreadable weights ({exc})") from exc
    return config, state


def load_net(path: str | Path, config_class: type[C], net_class: type[torch.nn.Module], version: int):
    """A model directory's config and its network built from it, weights loaded, in eval mode."""
    config, state = read_model_dir(path, config_class, version)
    net = net_class(config)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:  # weights of another architecture or size
        raise ModelNotFound(f"{Path(path) / WEIGHTS_FILE}: does not fit a {net_class.__name__} ({exc})") from exc
    return config, net.eval()
