"""A training run killed after a save point and resumed logs each step once: the loss CSV
drops the rows after the save point, which the resumed run trains and logs again (both
`pixtrack train iterative` and `pixtrack train fcn` log through this loop)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tracker.training.hardware import Runtime
from tracker.training.loop import LoopConfig, run_loop
from tracker.training.loss_log import LossLog, read_log
from tracker.training.losses import LossParts

CPU = Runtime(torch.device("cpu"))


class Killed(Exception):
    """Stands in for kill -9: the run stops between two steps, its files as they were."""


def train(tmp_path, iterations: int, kill_at: int | None = None) -> None:
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    x = torch.ones(4, 2)

    def forward_loss(batch: dict, iteration: int) -> LossParts:
        if iteration == kill_at:
            raise Killed
        data = model(x).pow(2).mean()
        return LossParts(total=data, data=data.detach(), regulariser=torch.zeros(()))

    config = LoopConfig(iterations=iterations, lr=1e-2, log_every=1, save_every=3)
    log = LossLog(tmp_path / "loss.csv")
    run_loop(model, forward_loss, lambda epoch: [{}] * 4, config, CPU, log=log,
             resume_path=tmp_path / "resume.pt", progress=False)


def test_a_resumed_run_logs_each_step_once(tmp_path):
    with pytest.raises(Killed):
        train(tmp_path, iterations=8, kill_at=5)  # steps 1..5 logged, saved at 3
    assert [row["step"] for row in read_log(tmp_path / "loss.csv")] == [1, 2, 3, 4, 5]
    train(tmp_path, iterations=8)  # resumes after step 3
    steps = [row["step"] for row in read_log(tmp_path / "loss.csv")]
    assert steps == [1, 2, 3, 4, 5, 6, 7, 8]


def test_a_run_started_afresh_drops_an_old_log(tmp_path):
    train(tmp_path, iterations=4)
    (tmp_path / "resume.pt").unlink()  # e.g. a finished run whose resume file was removed
    train(tmp_path, iterations=4)
    assert [row["step"] for row in read_log(tmp_path / "loss.csv")] == [1, 2, 3, 4]


def test_resume_at_keeps_the_header_and_earlier_rows(tmp_path):
    log = LossLog(tmp_path / "loss.csv")
    for step in (10, 20, 30):
        log.log(step, loss=step / 10)
    LossLog(tmp_path / "loss.csv").resume_at(20)
    assert read_log(tmp_path / "loss.csv") == [{"step": 10, "loss": 1.0}, {"step": 20, "loss": 2.0}]
