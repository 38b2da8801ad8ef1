"""One way to fit a LightningModule here: CPU threads, a wall-clock budget, per-epoch metrics to MLflow.

``fit`` runs in this process; ``training.distributed.fit_ray`` runs the same module factory
under Ray Train (TorchTrainer, DDP over CPU workers) and hands the weights back.
"""

from __future__ import annotations

import logging
import os
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from callqa.synthetic import is_synthetic

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class FitOptions:
    max_epochs: int = 10
    max_minutes: float = 10.0
    batch_size: int = 16
    lr: float = 2e-3
    seed: int = 0
    progress: bool = True
    max_steps: int = -1  # tests: one real optimisation step
    ray_workers: int = 0  # > 0: Ray Train with this many CPU workers
    accelerator: str = "cpu"  # "gpu": Lightning on CUDA (the end-to-end fine-tuning recipe)


def quiet_lightning() -> None:
    """Lightning's notices about GPUs/TPUs we do not have and dataloader workers we do not want."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*isinstance.treespec.*")


def trainer_kwargs(opts: FitOptions) -> dict:
    return {
        "max_epochs": opts.max_epochs,
        "max_steps": opts.max_steps,
        "max_time": timedelta(minutes=opts.max_minutes),
        "accelerator": opts.accelerator,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "gradient_clip_val": 1.0,
        "num_sanity_val_steps": 0,
        "log_every_n_steps": 1,
    }


def mlflow_logger(run_id: str | None, tracking_uri: str | None):
    if run_id is None or tracking_uri is None:
        return False
    from lightning.pytorch.loggers import MLFlowLogger

    return MLFlowLogger(tracking_uri=tracking_uri, run_id=run_id, log_model=False)


def fit(
    module: pl.LightningModule,
    train: DataLoader,
    val: DataLoader | None,
    opts: FitOptions,
    run_id: str | None = None,
    tracking_uri: str | None = None,
) -> dict[str, float]:
    """Train ``module`` in this process; returns the last epoch's logged metrics."""
    quiet_lightning()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    pl.seed_everything(opts.seed, workers=True, verbose=False)
    trainer = pl.Trainer(
        **trainer_kwargs(opts),
        logger=mlflow_logger(run_id, tracking_uri),
        enable_progress_bar=opts.progress,
        devices=1,
    )
    trainer.fit(module, train, val)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["epochs"] = float(trainer.current_epoch)
    metrics["steps"] = float(trainer.global_step)
    return metrics


def hold_out(items: Sequence[T], share: float, seed: int, call_id: Callable[[T], str]) -> tuple[list[T], list[T]]:
    """(train, held back): a ``share`` of the items, chosen by the seed, stable whatever the input order."""
    order = sorted(items, key=call_id)
    random.Random(seed).shuffle(order)
    n_held = max(1, round(len(order) * share)) if len(order) > 1 and share > 0 else 0
    return order[n_held:], order[:n_held]


def repeat_labelled(items: Sequence[T], weight: int, call_id: Callable[[T], str]) -> list[T]:
    """Synthetic calls once, labelled (real) calls ``weight`` times: they are few and they count."""
    return [x for x in items for _ in range(1 if is_synthetic(call_id(x)) else weight)]
