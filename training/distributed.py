"""The same Lightning fit under Ray Train: TorchTrainer, DDP over CPU workers, weights back in the driver.

Locally ``ray.init`` starts a private instance with as many CPUs as workers; on a cluster
(KubeRay, see ``infra/``) set ``RAY_ADDRESS`` and the same call schedules the workers there.
The module and its dataloaders travel to the workers pickled; Lightning gives each rank its
shard (a distributed sampler from Ray's DDP strategy); rank 0 logs epoch metrics into the
driver's MLflow run; the last checkpoint comes back through Ray's result.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from training.fit import FitOptions, mlflow_logger, quiet_lightning, trainer_kwargs


def _train_loop(config: dict[str, Any]) -> None:
    from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment, RayTrainReportCallback, prepare_trainer

    quiet_lightning()
    opts: FitOptions = config["opts"]
    torch.set_num_threads(1)
    pl.seed_everything(opts.seed, workers=True, verbose=False)
    trainer = pl.Trainer(
        **trainer_kwargs(opts),
        devices="auto",
        strategy=RayDDPStrategy(),
        plugins=[RayLightningEnvironment()],
        callbacks=[RayTrainReportCallback()],
        logger=mlflow_logger(config["run_id"], config["tracking_uri"]),
        enable_progress_bar=False,
    )
    trainer = prepare_trainer(trainer)
    trainer.fit(config["module"], config["train"], config["val"])


def fit_ray(
    module: pl.LightningModule,
    train: DataLoader,
    val: DataLoader | None,
    opts: FitOptions,
    run_id: str | None = None,
    tracking_uri: str | None = None,
) -> dict[str, float]:
    """Train ``module`` with ``opts.ray_workers`` Ray workers; its weights are the trained ones afterwards."""
    import ray
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.lightning import RayTrainReportCallback
    from ray.train.torch import TorchTrainer

    workers = max(1, opts.ray_workers)
    started_here = not ray.is_initialized()
    if started_here:
        os.environ.setdefault("RAY_DEDUP_LOGS", "1")
        os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")  # one actor less on 2 cores
        os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")  # no doubled worker lines
        ray.init(
            address=os.environ.get("RAY_ADDRESS"),
            num_cpus=None if os.environ.get("RAY_ADDRESS") else workers,
            include_dashboard=False,
            logging_level="ERROR",
            log_to_driver=opts.progress,
        )
    storage = tempfile.mkdtemp(prefix="callqa-ray-")
    try:
        trainer = TorchTrainer(
            _train_loop,
            train_loop_config={
                "module": module,
                "train": train,
                "val": val,
                "opts": opts,
                "run_id": run_id,
                "tracking_uri": tracking_uri,
            },
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=False, resources_per_worker={"CPU": 1}),
            run_config=RunConfig(storage_path=storage, name="fit", checkpoint_config=CheckpointConfig(num_to_keep=1)),
        )
        result = trainer.fit()
        if result.checkpoint is None:
            raise RuntimeError(f"Ray Train finished without a checkpoint ({result.error})")
        with result.checkpoint.as_directory() as ckpt_dir:
            state = torch.load(
                Path(ckpt_dir) / RayTrainReportCallback.CHECKPOINT_NAME, map_location="cpu", weights_only=False
            )
        module.load_state_dict(state["state_dict"])
        metrics = {k: float(v) for k, v in (result.metrics or {}).items() if isinstance(v, int | float)}
        metrics["ray_workers"] = float(workers)
        return metrics
    finally:
        if started_here:
            ray.shutdown()
