"""The two training loops overfit a tiny fixed batch; the feature cache holds exactly what
the backbone computes; an interrupted loop resumes where it stopped; losses reach the CSV."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from tracker.backbone import VGG16Pool4
from tracker.config import GlobalConfig, get_config
from tracker.global_model import GlobalModel
from tracker.local_model import LocalModel
from tracker.training.curriculum import DilationSchedule
from tracker.training.feature_cache import FeatureCache, build_feature_cache, read_meta
from tracker.training.global_samples import GlobalClipDataset, ground_truth_maps
from tracker.training.global_trainer import GlobalLossConfig, GlobalUnroll, clip_loss, train_global
from tracker.training.hardware import Runtime
from tracker.training.local_trainer import train_local
from tracker.training.loop import LoopConfig, run_loop
from tracker.training.loss_log import LossLog, read_log
from tracker.training.samples import ClipConfig, LocalClipDataset

CPU = Runtime(torch.device("cpu"))


class Square:
    """A noisy frame with a bright square moving by (dx, dy) a frame."""

    def __init__(self, name, frames=12, size=(120, 160), side=24, origin=(30, 40), step=(3, 1), seed=0):
        self.name, self.frames, self.frame_size = name, frames, size
        self.side, self.origin, self.step = side, origin, step
        self.noise = np.random.default_rng(seed).integers(0, 120, size=(*size, 3), dtype=np.uint8)

    def __len__(self):
        return self.frames

    def _corner(self, i):
        return self.origin[0] + self.step[0] * i, self.origin[1] + self.step[1] * i

    def frame(self, i):
        frame = self.noise.copy()
        x, y = self._corner(i)
        frame[y : y + self.side, x : x + self.side] = (250, 200, 60)
        return frame

    def mask(self, i):
        mask = np.zeros(self.frame_size, bool)
        x, y = self._corner(i)
        mask[y : y + self.side, x : x + self.side] = True
        return mask


class Fixed(Dataset):
    """The same items every epoch: a tiny fixed batch to overfit."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def _local_model() -> LocalModel:
    torch.manual_seed(0)
    return LocalModel(get_config("lite").local, backbone=VGG16Pool4(None))


@pytest.mark.slow
def test_local_training_overfits_a_tiny_batch(tmp_path):
    model = _local_model()
    clips = LocalClipDataset([Square("a", seed=1), Square("b", step=(-2, 1), origin=(100, 30), seed=2)],
                             ClipConfig(frames=3), seed=0)
    cache = build_feature_cache(model, clips, progress=False)  # 2 clips, VGG run once
    log = LossLog(tmp_path / "local.csv")
    history = train_local(model, Fixed([cache[0]]), LoopConfig(iterations=30, lr=2e-3, log_every=5), CPU,
                          batch_size=1, log=log, progress=False)
    assert all(np.isfinite(history))
    assert history[-1] < 0.5 * history[0], history
    rows = read_log(tmp_path / "local.csv")
    assert [row["step"] for row in rows] == [5, 10, 15, 20, 25, 30]
    assert rows[-1]["loss"] == pytest.approx(history[-1])
    assert rows[-1]["loss"] == pytest.approx(rows[-1]["data"] + rows[-1]["regulariser"], rel=1e-5)


def test_global_training_overfits_a_tiny_batch():
    torch.manual_seed(0)
    size = 64  # a narrow global model on 64x64 maps keeps this test quick
    model = GlobalModel(GlobalConfig(input_size=size, lstm_channels=(16, 16), fc_channels=64))
    maps = [ground_truth_maps(Square("a"), size)]
    clip = GlobalClipDataset(maps, frames=6, seed=0)[0]
    loss = GlobalLossConfig(warmup=0, first_frame=2, dilation=DilationSchedule(start=1))
    # He init: the first steps already leave the fixed box, so halving the loss takes 60 steps
    # at 1e-3 (30 at 3e-3 stall at 0.58 of the start).
    history = train_global(model, Fixed([clip]), LoopConfig(iterations=60, lr=1e-3, log_every=5), CPU,
                           batch_size=1, loss=loss, progress=False)
    assert history[-1] < 0.5 * history[0], history


def test_a_feature_cache_of_another_models_features_is_rebuilt(tmp_path):
    from stand_ins import TinyBackbone

    torch.manual_seed(0)
    lite = LocalModel(get_config("lite").local, backbone=TinyBackbone())
    skip = LocalModel(get_config("lite+pool3").local, backbone=TinyBackbone())  # pool3 folded in
    clips = LocalClipDataset([Square("a", seed=1), Square("b", seed=2)], ClipConfig(frames=1), seed=4)
    folder = tmp_path / "cache"
    assert build_feature_cache(lite, clips, folder=folder, progress=False).plain.shape[2] == 512
    assert read_meta(folder)["channels"] == 512
    cache = build_feature_cache(skip, clips, folder=folder, progress=False)
    assert cache.plain.shape[2] == cache.masked.shape[1] == 512 + 1024 and read_meta(folder)["channels"] == 1536
    torch.testing.assert_close(cache[0]["plain"][1], skip.features(clips[0]["images"][1:].float())[0].half().float())


@pytest.mark.slow
def test_feature_cache_holds_the_backbones_features(tmp_path):
    model = _local_model()
    clips = LocalClipDataset([Square("a", seed=1), Square("b", seed=2)], ClipConfig(frames=1), seed=4)
    folder = tmp_path / "cache"
    cache = build_feature_cache(model, clips, folder=folder, progress=False)
    assert read_meta(folder)["clips"] == 2 and len(cache) == 2 and cache.frames == 1
    clip = clips[1]
    images, masks = clip["images"].float(), clip["masks"]
    plain0, masked = model.memory_features(images[:1], masks[:1])
    later = model.features(images[1:])
    item = cache[1]
    # float16 storage: relative error ~1e-3.
    scale = plain0.abs().max()
    assert (item["plain"][0] - plain0[0]).abs().max() < 2e-3 * scale
    assert (item["plain"][1] - later[0]).abs().max() < 2e-3 * scale
    assert (item["masked"] - masked[0]).abs().max() < 2e-3 * scale
    assert not torch.allclose(item["masked"], item["plain"][0])  # the mask did something
    assert (item["masks"] - masks).abs().max() <= 0.5 / 255 + 1e-6
    # A complete cache is reused as it is, not recomputed.
    (folder / "plain.npy").touch()
    stamp = (folder / "plain.npy").stat().st_mtime_ns
    again = build_feature_cache(model, clips, folder=folder, progress=False)
    assert (folder / "plain.npy").stat().st_mtime_ns == stamp
    assert torch.equal(again[0]["plain"], FeatureCache.open(folder)[0]["plain"])


def test_a_cache_is_built_aside_and_two_builders_never_share_files(tmp_path):
    import subprocess
    import sys

    from tracker.training.feature_cache import publish

    model = _local_model()
    clips = LocalClipDataset([Square("a", seed=1), Square("b", seed=2)], ClipConfig(frames=1), seed=4)
    folder = tmp_path / "cache"
    # An interrupted build: an incomplete folder, and the private folder of a process now gone.
    folder.mkdir()
    (folder / "plain.npy").write_bytes(b"half written")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".cache.building-{dead.pid}"
    stale.mkdir()
    first = build_feature_cache(model, clips, folder=folder, progress=False)
    assert read_meta(folder)["clips"] == 2 and not stale.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cache"]  # nothing left aside
    # A second builder that finishes after the first keeps the published cache, drops its own.
    late = tmp_path / ".cache.building-1"
    late.mkdir()
    (late / "meta.json").write_text("{}")
    publish(late, folder)
    assert not late.exists()
    assert torch.equal(FeatureCache.open(folder)[0]["plain"], first[0]["plain"])


def test_an_interrupted_loop_resumes_after_its_last_saved_iteration(tmp_path):
    size = 64
    maps = [ground_truth_maps(Square("a"), size)]
    clip = GlobalClipDataset(maps, frames=3, seed=0)[0]
    loss = GlobalLossConfig(warmup=0, first_frame=2)
    resume = tmp_path / "resume.pt"
    config = GlobalConfig(input_size=size, lstm_channels=(8, 8), fc_channels=16)

    torch.manual_seed(0)
    first = GlobalModel(config)
    train_global(first, Fixed([clip]), LoopConfig(iterations=4, lr=1e-3, log_every=2, save_every=2), CPU,
                 batch_size=1, loss=loss, resume_path=resume, progress=False)
    saved = torch.load(resume, weights_only=True)
    assert saved["iteration"] == 4

    # "Interrupted" after 4 of 6 iterations: a fresh model resumes from the saved state.
    torch.manual_seed(1)
    second = GlobalModel(config)
    history = train_global(second, Fixed([clip]), LoopConfig(iterations=6, lr=1e-3, log_every=2, save_every=2),
                           CPU, batch_size=1, loss=loss, resume_path=resume, progress=False)
    assert len(history) == 3  # two windows restored from the file, one new
    assert torch.load(resume, weights_only=True)["iteration"] == 6
    moved = [not torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values())]
    assert any(moved)  # trained on from the first run's weights ...
    torch.manual_seed(1)
    untouched = GlobalModel(config)
    assert not any(torch.equal(a, b) for a, b in zip(second.fc1.parameters(), untouched.fc1.parameters()))


def test_loss_log_appends_and_refuses_other_columns(tmp_path):
    path = tmp_path / "log.csv"
    log = LossLog(path)
    log.log(1, loss=0.5, data=0.4)
    LossLog(path).log(2, loss=0.25, data=0.2)  # a resumed run appends under the same header
    assert read_log(path) == [{"step": 1, "loss": 0.5, "data": 0.4}, {"step": 2, "loss": 0.25, "data": 0.2}]
    with pytest.raises(ValueError, match="columns"):
        log.log(3, loss=0.1)
    assert LossLog(path, enabled=False).tensorboard is False


def test_early_termination_stops_after_patience_and_keeps_the_best_weights(tmp_path):
    size = 64
    clip = GlobalClipDataset([ground_truth_maps(Square("a"), size)], frames=3, seed=0)[0]
    torch.manual_seed(0)
    model = GlobalModel(GlobalConfig(input_size=size, lstm_channels=(8, 8), fc_channels=16))
    scores, snapshots = iter([1.0, 0.5, 0.7, 0.8, 0.9]), []

    def validate():
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scores)

    loss = GlobalLossConfig(warmup=0, first_frame=2)
    unroll = GlobalUnroll(model, 0)

    def forward_loss(batch, iteration):
        return clip_loss(unroll(batch["inputs"][None], batch["aspect"][None]), batch["targets"][None],
                         batch["aspect"][None], loss)

    log = LossLog(tmp_path / "log.csv")
    config = LoopConfig(iterations=20, lr=1e-2, log_every=2, validate_every=2, patience=2)
    run_loop(unroll, forward_loss, lambda epoch: [clip] * 3, config, CPU, log=log, validate=validate, progress=False)
    # Validations at 2 (1.0), 4 (0.5, best), 6 (0.7), 8 (0.8: second without improvement -> stop).
    assert len(snapshots) == 4
    assert [row["validation"] for row in read_log(tmp_path / "log.csv")] == [1.0, 0.5, 0.7, 0.8]
    assert all(torch.equal(v, snapshots[1][k]) for k, v in model.state_dict().items())
    assert not all(torch.equal(v, snapshots[3][k]) for k, v in model.state_dict().items())
