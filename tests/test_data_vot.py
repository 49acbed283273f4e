"""VOT sequences: written with the toolkit's region I/O, read back exactly, loaded by the toolkit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tracker.data import (
    DatasetError,
    InMemorySequence,
    load_dataset,
    load_sequence,
    write_vot_dataset,
    write_vot_list,
    write_vot_sequence,
)
from tracker.data.vot import anchor_values

H, W = 36, 52


def tricky_masks() -> list[np.ndarray]:
    """Masks that break naive writers: empty, one column (also at x=0 and at the right edge),
    one row, one pixel in a corner, full frame, random speckle, a blob."""
    rng = np.random.default_rng(0)
    masks = [np.zeros((H, W), dtype=bool) for _ in range(10)]
    masks[1][5:20, 0] = True  # one column at x = 0
    masks[2][3:9, 17] = True  # one column inside
    masks[3][10, 4:40] = True  # one row
    masks[4][0, 0] = True  # one pixel in the corner
    masks[5][H - 1, W - 1] = True
    masks[6][:] = True
    masks[7] = rng.random((H, W)) > 0.5
    masks[8][8:30, 10:45] = True
    masks[8][15:20, 20:30] = False
    masks[9][2:H, W - 1] = True  # one column at the right edge
    return masks


def textured_frames(count: int, seed: int = 1) -> list[np.ndarray]:
    """Smooth frames (JPEG-friendly), different each time."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W]
    frames = []
    for _ in range(count):
        a, b, c = rng.uniform(0.05, 0.3, 3)
        frame = np.stack([128 + 100 * np.sin(a * x + b * y), 128 + 100 * np.cos(b * x), 128 + 100 * np.sin(c * y)], -1)
        frames.append(frame.astype(np.uint8))
    return frames


def toolkit_masks(folder) -> list[np.ndarray]:
    """The ground truth as the VOT toolkit itself loads it (its default sequence loader)."""
    from vot.dataset import load_sequence as vot_load_sequence

    sequence = vot_load_sequence(str(folder))
    assert (sequence.width, sequence.height) == (W, H)
    return [sequence.groundtruth(i).rasterize((0, 0, W - 1, H - 1)).astype(bool) for i in range(len(sequence))]


def test_masks_round_trip_exactly_through_our_reader_and_the_toolkit(tmp_path):
    masks = tricky_masks()
    sequence = InMemorySequence("tricky", textured_frames(len(masks)), masks)
    folder = write_vot_sequence(tmp_path, sequence)
    loaded = load_sequence(folder)
    assert loaded.name == "tricky" and len(loaded) == len(masks) and loaded.frame_size == (H, W)
    for index, mask in enumerate(masks):
        assert np.array_equal(loaded.mask(index), mask), index
    for index, (mask, theirs) in enumerate(zip(masks, toolkit_masks(folder))):
        assert np.array_equal(theirs, mask), index


def test_written_layout_and_frames(tmp_path):
    frames = textured_frames(3)
    masks = tricky_masks()[:3]
    folder = write_vot_sequence(tmp_path, InMemorySequence("seq", frames, masks, metadata={"source": "test"}))
    assert folder == tmp_path / "seq"
    assert (folder / "sequence").read_text().splitlines() == [
        "channels.color=color/%08d.jpg", "format=default", "fps=30", "name=seq",
        f"width={W}", f"height={H}", "length=3", "source=test",
    ]
    assert sorted(p.name for p in (folder / "color").iterdir()) == ["00000001.jpg", "00000002.jpg", "00000003.jpg"]
    lines = (folder / "groundtruth.txt").read_text().splitlines()
    assert lines[0] == "m0,0,0,0,0" and all(line.startswith("m") for line in lines)
    loaded = load_sequence(folder)
    assert loaded.metadata == {"source": "test"}
    for index, frame in enumerate(frames):  # JPEG at quality 95: close, not equal
        decoded = loaded.frame(index)
        assert decoded.dtype == np.uint8 and decoded.shape == (H, W, 3)
        assert np.abs(decoded.astype(int) - frame).mean() < 2.0
    pairs = list(loaded)
    assert len(pairs) == 3 and np.array_equal(pairs[1][1], masks[1])
    assert not list(tmp_path.glob(".*partial"))  # the temporary folder was renamed into place


def test_jpeg_source_frames_are_copied_byte_for_byte_unless_a_quality_is_given(tmp_path):
    masks = tricky_masks()[:2]
    first = write_vot_sequence(tmp_path / "a", InMemorySequence("seq", textured_frames(2), masks))
    copied = write_vot_sequence(tmp_path / "b", load_sequence(first))
    for name in ("00000001.jpg", "00000002.jpg"):
        assert (copied / "color" / name).read_bytes() == (first / "color" / name).read_bytes()
    recoded = write_vot_sequence(tmp_path / "c", load_sequence(first), quality=40)
    assert (recoded / "color" / "00000001.jpg").read_bytes() != (first / "color" / "00000001.jpg").read_bytes()
    assert np.array_equal(load_sequence(recoded).mask(1), masks[1])


def test_tags_anchors_and_metadata(tmp_path):
    masks = [np.zeros((H, W), bool)] * 2 + [np.ones((H, W), bool)] * 120
    frames = [np.zeros((H, W, 3), np.uint8)] * len(masks)
    tags = {"occlusion": [1, 1, 0], "camera_motion": np.ones(len(masks), bool)}
    folder = write_vot_sequence(tmp_path, InMemorySequence("long", frames, masks, tags=tags))
    anchors = [int(line) for line in (folder / "anchor.value").read_text().split()]
    assert [i for i, a in enumerate(anchors) if a] == [2, 52, 102]  # first visible frame, then every 50
    loaded = load_sequence(folder)
    assert loaded.tags["occlusion"].tolist() == [True, True] + [False] * 120
    assert loaded.tags["camera_motion"].all()

    from vot.dataset import load_sequence as vot_load_sequence

    theirs = vot_load_sequence(str(folder))
    assert theirs.values(52)["anchor"] == 1.0 and theirs.values(50)["anchor"] == 0.0
    assert "occlusion" in theirs.tags(0) and "occlusion" not in theirs.tags(2)


def test_anchor_rule():
    assert anchor_values([True] * 5, interval=2) == [1, 0, 1, 0, 1]
    assert anchor_values([False, False, True, True, True, False, True], interval=3) == [0, 0, 1, 0, 0, 0, 1]
    assert anchor_values([True, False, False, False, True], interval=2) == [1, 0, 0, 0, 1]
    assert anchor_values([False] * 4) == [0, 0, 0, 0]


def test_rectangles_and_polygons_become_filled_masks(tmp_path):
    folder = tmp_path / "boxes"
    (folder / "color").mkdir(parents=True)
    for index in range(4):
        Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(folder / "color" / f"{index + 1:08d}.jpg")
    (folder / "groundtruth.txt").write_text(
        "2,3,5,4\n"  # rectangle x, y, w, h
        "1,1,6,1,6,5,1,5\n"  # axis-aligned polygon
        "nan,nan,nan,nan\n"  # no object
        "-5,-5,8,7\n"  # rectangle partly outside the frame: clipped
    )
    sequence = load_sequence(folder)
    expected = np.zeros((4, 20, 30), bool)
    expected[0, 3:7, 2:7] = True
    expected[1, 1:6, 1:7] = True
    expected[3, 0:2, 0:3] = True
    for index in range(4):
        assert np.array_equal(sequence.mask(index), expected[index]), index


def test_legacy_layout_without_sequence_file(tmp_path):
    folder = tmp_path / "legacy"
    folder.mkdir()
    frames = textured_frames(3)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{index + 1:08d}.jpg", quality=98)
    masks = tricky_masks()[6:9]
    from tracker.data.regions import write_groundtruth

    write_groundtruth(folder / "groundtruth.txt", masks)
    sequence = load_sequence(folder)
    assert len(sequence) == 3 and sequence.frame_size == (H, W)
    assert sequence.frame_path(0) == folder / "00000001.jpg"
    assert all(np.array_equal(sequence.mask(i), masks[i]) for i in range(3))


def test_dataset_lists_names_and_splits(tmp_path):
    masks = tricky_masks()[:2]
    for name in ("a", "b", "c"):
        write_vot_sequence(tmp_path, InMemorySequence(name, textured_frames(2), masks))
    write_vot_list(tmp_path, ["c", "a"])
    assert [s.name for s in load_dataset(tmp_path)] == ["c", "a"]
    assert [s.name for s in load_dataset(tmp_path, ["b"])] == ["b"]
    (tmp_path / "val.txt").write_text("b\n\nc\n")
    assert [s.name for s in load_dataset(tmp_path, "val")] == ["b", "c"]


def test_write_dataset_extends_list_and_refuses_to_overwrite(tmp_path):
    masks = tricky_masks()[:2]
    write_vot_dataset(tmp_path, [InMemorySequence("a", textured_frames(2), masks)])
    write_vot_dataset(tmp_path, [InMemorySequence("b", textured_frames(2), masks)])
    assert (tmp_path / "list.txt").read_text() == "a\nb\n"
    with pytest.raises(DatasetError, match="already exists"):
        write_vot_dataset(tmp_path, [InMemorySequence("b", textured_frames(2), masks)])
    replaced = InMemorySequence("b", textured_frames(2), masks[::-1])
    write_vot_dataset(tmp_path, [replaced], overwrite=True)
    assert np.array_equal(load_sequence(tmp_path / "b").mask(0), masks[1])
    assert (tmp_path / "list.txt").read_text() == "a\nb\n"


def test_bad_sequence_names_and_quality_are_refused_before_writing(tmp_path):
    masks = tricky_masks()[:1]
    with pytest.raises(ValueError, match="folder name"):
        write_vot_sequence(tmp_path, InMemorySequence("a/b", textured_frames(1), masks))
    with pytest.raises(ValueError, match="quality"):
        write_vot_sequence(tmp_path, InMemorySequence("ok", textured_frames(1), masks), quality=0)
    assert list(tmp_path.iterdir()) == []
