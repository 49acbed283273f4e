"""The optimisation loop both trainers share: Adam, mixed precision, gradient clipping,
logging, resumable progress, and optional early termination.

A trainer supplies `forward_loss(batch, iteration) -> LossParts` (the model call and the
loss, under autocast) and `batches(epoch)` (an iterable, e.g. a DataLoader); the loop runs
`iterations` optimiser steps over as many epochs as that takes.

Resuming: every `save_every` iterations (and at the end) the model, optimiser, scaler and
iteration count go to `resume_path` (torch.save of tensors and numbers; read back with
`weights_only=True`). A rerun with that file continues after the last saved iteration, with
a fresh epoch of data; the loss log drops the rows it had logged after that iteration.

Early termination (Sec. 5.1 step 1, "with early termination"): with a `validate` callable
(lower is better), it is evaluated every `validate_every` iterations and logged in the
`validation` column; after `patience` evaluations without improvement training stops, and
the best weights seen are restored.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from tracker.training.hardware import Runtime, unwrap
from tracker.training.loss_log import LossLog
from tracker.training.losses import LossParts


@dataclass(frozen=True)
class LoopConfig:
    """Optimiser and bookkeeping settings of one training stage."""

    iterations: int = 1000
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 10.0
    """Largest gradient norm (0: no clipping); recurrent models need it early on."""
    log_every: int = 10
    save_every: int = 200
    validate_every: int = 0
    """Iterations between validations (0: never; needs a `validate` callable)."""
    patience: int = 0
    """Stop after this many validations without improvement (0: never stop early)."""

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        if self.lr <= 0:
            raise ValueError(f"learning rate must be positive, got {self.lr}")
        if self.log_every < 1 or self.save_every < 1:
            raise ValueError("log_every and save_every must be >= 1")
        if self.validate_every % self.log_every:
            raise ValueError(f"validate_every ({self.validate_every}) must be a multiple of log_every ({self.log_every})")


def _save(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)  # another process of the run may have tidied it away
    partial = path.with_name(path.name + ".tmp")
    torch.save(payload, partial)
    os.replace(partial, path)


def run_loop(
    model: nn.Module,
    forward_loss: Callable[[dict, int], LossParts],
    batches: Callable[[int], Iterable[dict]],
    config: LoopConfig,
    runtime: Runtime,
    *,
    log: LossLog | None = None,
    resume_path: str | os.PathLike | None = None,
    validate: Callable[[], float] | None = None,
    description: str = "train",
    progress: bool = True,
) -> list[float]:
    """Train `model` (possibly DDP-wrapped: its parameters are what Adam updates) in place.

    Returns the mean total loss of each logged window of `log_every` iterations.
    """
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    scaler = runtime.grad_scaler()
    iteration, epoch, history = 0, 0, []
    best_score, best_state, stale = math.inf, None, 0
    resume_path = Path(resume_path) if resume_path is not None else None
    if resume_path is not None and resume_path.is_file():
        saved = torch.load(resume_path, map_location=runtime.device, weights_only=True)
        unwrap(model).load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scaler.load_state_dict(saved["scaler"])
        iteration, epoch, history = int(saved["iteration"]), int(saved["epoch"]) + 1, list(saved["history"])
        best_score, stale = float(saved["best_score"]), int(saved["stale"])
        best_state = saved.get("best_state")
    if log is not None:  # steps after the save point are trained (and logged) again
        log.resume_at(iteration)

    def checkpoint() -> None:
        if resume_path is not None and runtime.is_main:
            _save(resume_path, {
                "model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(), "iteration": iteration, "epoch": epoch,
                "history": history, "best_score": best_score, "stale": stale, "best_state": best_state,
            })

    model.train()
    bar = tqdm(total=config.iterations, initial=iteration, desc=description, unit="it",
               disable=not (progress and runtime.is_main))
    window = {"total": 0.0, "data": 0.0, "regulariser": 0.0}
    window_sums = None
    in_window = 0
    stop = iteration >= config.iterations
    while not stop:
        seen = 0
        for batch in batches(epoch):
            seen += 1
            parts = forward_loss(batch, iteration)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(parts.total).backward()
            if config.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            iteration += 1
            # Sums stay on the device: one host sync a logged window, not one a step.
            step_sums = torch.stack((parts.total.detach().float(), parts.data.float(), parts.regulariser.float()))
            window_sums = step_sums if window_sums is None else window_sums + step_sums
            in_window += 1
            bar.update(1)
            if iteration % config.log_every == 0 or iteration == config.iterations:
                means = runtime.average(window_sums / in_window).tolist()
                window = dict(zip(window, means))
                history.append(window["total"])
                score = float("nan")
                if validate is not None and config.validate_every and iteration % config.validate_every == 0:
                    model.eval()
                    score = float(validate())
                    model.train()
                    if score < best_score:
                        best_score, stale = score, 0
                        best_state = {k: v.detach().cpu().clone() for k, v in unwrap(model).state_dict().items()}
                    else:
                        stale += 1
                        stop = bool(config.patience) and stale >= config.patience
                if log is not None:
                    log.log(iteration, loss=window["total"], data=window["data"],
                            regulariser=window["regulariser"], validation=score)
                bar.set_postfix(loss=f"{window['total']:.4g}")
                window_sums, in_window = None, 0
            if iteration % config.save_every == 0:
                checkpoint()
            if stop or iteration >= config.iterations:
                stop = True
                break
        if seen == 0:
            raise ValueError(f"{description}: the training data yields no batches")
        epoch += 1
    bar.close()
    if best_state is not None:
        unwrap(model).load_state_dict(best_state)
    checkpoint()
    model.eval()
    return history
