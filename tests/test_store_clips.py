"""Training clips from the stores (`tracker.training.store_clips`): frame 0's pair is the memory
features of the crop the tracker's init makes, frames 1..T are cut from the frame store at the
plan's ROIs (an inserted frame from its donor, its mask empty), masks are cropped as the
image-based clips crop them, and every epoch draws new clips; then the whole engine on generated
data (synthesis, both stores, a few training iterations) in seconds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from stand_ins import TinyBackbone

from tracker.config import get_config
from tracker.data.synth import generate_sequence
from tracker.data.video_synthesis import SynthesisConfig, synthesize_sequences
from tracker.local_model import LocalModel
from tracker.training.frame_features import FrameFeatureStore
from tracker.training.samples import NO_INSERT, ClipConfig, LocalClipDataset, _roi_boxes, crop_roi, object_boxes
from tracker.training.store_clips import ClipStartStore, StoreClipDataset

CLIP = ClipConfig(frames=4, insert_noise=True)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """Three small generated sequences, a lite local model on a stand-in backbone, both stores."""
    root = tmp_path_factory.mktemp("store-clips")
    sequences = [generate_sequence(300 + i, 10, 128, 96, name=f"seq{i}", speed=0.03) for i in range(3)]
    torch.manual_seed(0)
    model = LocalModel(get_config("lite").local, backbone=TinyBackbone())
    frames = FrameFeatureStore.build(root / "frames", sequences, model.backbone, progress=False)
    starts = ClipStartStore.build(root / "starts", sequences, model, progress=False)
    return root, sequences, model, frames, starts


def test_frame_zero_is_the_memory_pair_of_the_crop_the_tracker_starts_from(engine):
    _, sequences, model, _, starts = engine
    sequence = sequences[1]
    table = object_boxes(sequence)
    for start in (0, 4):
        image, mask = crop_roi(sequence, start, _roi_boxes(table.boxes[start][None])[0])
        expected = model.memory_features(image[None].float(), mask[None])
        stored = starts.get(sequence.name, start)
        for got, want in zip(stored, expected):
            torch.testing.assert_close(got, want[0].half().float())
    with pytest.raises(KeyError, match="no start 99"):
        starts.get(sequence.name, 99)


def test_a_store_of_another_mask_dilation_is_refused(engine):
    root, sequences, model, _, _ = engine
    other = LocalModel(dataclasses.replace(get_config("lite").local, mask_dilation=0), backbone=model.backbone)
    with pytest.raises(ValueError, match="another mask dilation"):
        ClipStartStore.build(root / "starts", sequences, other, progress=False)
    with pytest.raises(ValueError, match="another least object size"):
        ClipStartStore.build(root / "starts", sequences, model, min_object_pixels=10, progress=False)


def test_items_are_cut_at_the_plans_rois_and_new_every_epoch(engine):
    _, sequences, _, frames, starts = engine
    clips = LocalClipDataset(sequences, CLIP, seed=3, clips_per_sequence=2)
    data = StoreClipDataset(clips, frames, starts)
    assert len(data) == len(clips) == 6
    seen_insert = False
    for index in range(len(data)):
        item, plan = data[index], clips.plan(index)
        sequence = sequences[plan.sequence]
        assert item["plain"].shape == (CLIP.frames + 1, 512, 14, 14) and item["masked"].shape == (512, 14, 14)
        start = int(plan.frames[0])
        torch.testing.assert_close(item["plain"][0], starts.get(sequence.name, start)[0])
        # Frame 0 at the start's own ROI (what init crops), the others where the plan puts them.
        assert np.allclose(item["placement"][0].numpy(), _roi_boxes(object_boxes(sequence).boxes[start][None])[0])
        assert np.allclose(item["placement"][1:].numpy(), plan.boxes[1:])
        for k in range(1, CLIP.frames + 1):
            if k == plan.inserted:
                seen_insert = True
                donor = sequences[plan.insert_sequence].name
                torch.testing.assert_close(item["plain"][k], frames.cut(donor, plan.insert_frame, plan.insert_box[None])[0])
                assert not item["masks"][k].any()
            else:
                frame = int(plan.frames[k])
                torch.testing.assert_close(item["plain"][k], frames.cut(sequence.name, frame, plan.boxes[k][None])[0])
                torch.testing.assert_close(item["masks"][k], crop_roi(sequence, frame, plan.boxes[k])[1])
        assert int(item["inserted"]) == plan.inserted != NO_INSERT
    assert seen_insert
    first = data[0]["plain"]
    data.set_epoch(1)
    assert not torch.equal(data[0]["plain"], first)  # another epoch, other clips


def test_the_engine_end_to_end_synthesis_stores_and_training(tmp_path):
    """Synthesised clips join the real ones, both stores are built over them, and a local model
    trains from store-fed clips: the loss falls on the clips it trains on."""
    from tracker.training.hardware import Runtime
    from tracker.training.local_trainer import evaluate_local, train_local
    from tracker.training.loop import LoopConfig

    real = [generate_sequence(400 + i, 12, 128, 96, name=f"real{i}", speed=0.03) for i in range(2)]
    synthesised = synthesize_sequences(real, 2, SynthesisConfig(frames=8), seed=0)
    sequences = [*real, *synthesised]
    torch.manual_seed(0)
    model = LocalModel(get_config("lite").local, backbone=TinyBackbone())
    frames = FrameFeatureStore.build(tmp_path / "frames", sequences, model.backbone, progress=False)
    starts = ClipStartStore.build(tmp_path / "starts", sequences, model, progress=False)
    data = StoreClipDataset(LocalClipDataset(sequences, CLIP, seed=0, clips_per_sequence=2), frames, starts)
    runtime = Runtime(torch.device("cpu"))
    before = evaluate_local(model, data, runtime, batch_size=4)
    train_local(model, data, LoopConfig(iterations=12, lr=1e-3, log_every=4, save_every=100), runtime,
                batch_size=4, progress=False)
    data.set_epoch(0)
    assert evaluate_local(model, data, runtime, batch_size=4) < before
    # The stores were reused, not rebuilt, when asked again.
    assert ClipStartStore.build(tmp_path / "starts", sequences, model, progress=False).starts.keys() == starts.starts.keys()


def test_a_training_run_with_a_feature_store_builds_it_once_and_trains_from_it(tmp_path):
    """`pixtrack train local --feature-store DIR` (IterativeRun's `local` stage): the stores are
    built under DIR/<frames id> and a second run on the same sequences reuses them."""
    import dataclasses as dc

    from tracker.training.hardware import Runtime
    from tracker.training.iterative import IterativeRun, IterativeSettings
    from tracker.training.loop import LoopConfig

    sequences = [generate_sequence(500 + i, 10, 128, 96, name=f"run{i}", speed=0.03) for i in range(2)]
    settings = dc.replace(IterativeSettings(), clip=CLIP, local_clips_per_sequence=1,
                          local_loop=LoopConfig(iterations=2, lr=1e-4), local_batch=2)
    store = tmp_path / "store"
    stamps = []
    for run in ("first", "second"):
        job = IterativeRun(tmp_path / run, sequences, settings, Runtime(torch.device("cpu")), workers=0,
                           backbone=TinyBackbone(), progress=False, feature_store=store)
        job.run_stages(["local"], "run-local")
        assert job.output("local").is_file() and not (tmp_path / run / "cache").exists()
        stamps.append({path: path.stat().st_mtime_ns for path in store.rglob("*.npy")})
    assert stamps[0] and stamps[0] == stamps[1]


def test_feature_store_stages_pre_train_on_cut_features_and_finish_on_true_crops(tmp_path):
    """`--feature-store-stages local-1 local-2`: those stages read clips cut from the store,
    step 5 (local-final) the cached passes over true crops; a stage name that is not a local
    stage, or stages without a store, are refused."""
    import dataclasses as dc

    from tracker.training.feature_cache import FeatureCache
    from tracker.training.hardware import Runtime
    from tracker.training.iterative import IterativeRun, IterativeSettings
    from tracker.training.samples import LocalClipDataset

    sequences = [generate_sequence(600 + i, 10, 128, 96, name=f"stage{i}", speed=0.03) for i in range(2)]
    settings = dc.replace(IterativeSettings(), clip=CLIP, local_clips_per_sequence=1, local_batch=2)
    runtime = Runtime(torch.device("cpu"))
    job = IterativeRun(tmp_path / "run", sequences, settings, runtime, workers=0, backbone=TinyBackbone(),
                       progress=False, feature_store=tmp_path / "store", feature_store_stages=["local-1", "local-2"])
    model = job.local_model()
    clips = LocalClipDataset(sequences, CLIP, seed=0, clips_per_sequence=1)
    assert isinstance(job._cached("local-1", "local-1", model, clips, 1), StoreClipDataset)
    assert isinstance(job._cached("local-1", "local-1-validation", model, clips, 1), StoreClipDataset)
    assert isinstance(job._cached("local-final", "local-final-validation", model, clips, 1), FeatureCache)
    assert (tmp_path / "run" / "cache" / "local-final-validation").is_dir()
    with pytest.raises(ValueError, match="no local stage global-gt"):
        IterativeRun(tmp_path / "bad", sequences, settings, runtime, feature_store=tmp_path / "store",
                     feature_store_stages=["local-1", "global-gt"])
    with pytest.raises(ValueError, match="give feature_store"):
        IterativeRun(tmp_path / "bad", sequences, settings, runtime, feature_store_stages=["local-1"])


def test_a_store_fed_stage_computes_the_stores_of_the_sequences_it_reads_alone(tmp_path):
    """Step 1's second-half model fed from the stores (`--feature-store-stages local-2`) reads
    half the training sequences, so the stores hold those; a stage that reads the others adds
    them, and the sequences already there are not recomputed."""
    import dataclasses as dc

    from tracker.training.hardware import Runtime
    from tracker.training.iterative import IterativeRun, IterativeSettings

    sequences = [generate_sequence(700 + i, 10, 128, 96, name=f"half{i}", speed=0.03) for i in range(4)]
    settings = dc.replace(IterativeSettings(), clip=CLIP, local_clips_per_sequence=1, local_batch=2)
    store = tmp_path / "store"
    job = IterativeRun(tmp_path / "run", sequences, settings, Runtime(torch.device("cpu")), workers=0,
                       backbone=TinyBackbone(), progress=False, feature_store=store, feature_store_stages=["local-2"])
    model = job.local_model()

    def stored(kind: str, marker: str) -> list[str]:
        return sorted(path.parent.name.rsplit("-", 1)[0] for path in store.glob(f"{kind}/*/*/{marker}"))

    second = job._cached("local-2", "local-2", model, LocalClipDataset(sequences[2:], CLIP, seed=0), 1)
    assert stored("frames", "levels.json") == stored("starts", "masked.npy") == ["half2", "half3"]
    assert [s.name for s in second.clips.sequences] == ["half2", "half3"]
    assert second[0]["plain"].shape[0] == CLIP.frames + 1
    stamps = {path: path.stat().st_mtime_ns for path in store.rglob("*.npy")}
    job._cached("local-2", "local-2", model, LocalClipDataset(sequences[1:], CLIP, seed=0), 1)
    assert stored("frames", "levels.json") == stored("starts", "masked.npy") == ["half1", "half2", "half3"]
    assert all(path.stat().st_mtime_ns == stamp for path, stamp in stamps.items())
