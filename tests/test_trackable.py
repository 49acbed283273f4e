"""Sequences a tracker cannot start on (one frame, an empty first mask) are refused where the
data is loaded, naming the file and line, before any model is built or any sequence tracked;
and `pixtrack track` keeps the IoU it computed when a later frame turns out corrupt."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tracker.cli import main
from tracker.data import (
    DatasetError,
    InMemorySequence,
    check_trackable,
    load_sequence,
    write_davis_sequence,
    write_vot_list,
    write_vot_sequence,
)

H, W = 24, 32


def square_sequence(name: str, frames: int, empty_first: bool = False) -> InMemorySequence:
    """A bright square moving 1 px a frame on a dark noisy background."""
    rng = np.random.default_rng(0)
    images, masks = [], []
    for index in range(frames):
        mask = np.zeros((H, W), dtype=bool)
        if not (empty_first and index == 0):
            mask[6:14, 6 + index : 14 + index] = True
        image = rng.integers(0, 60, (H, W, 3), dtype=np.uint8)
        image[mask] = 230
        images.append(image)
        masks.append(mask)
    return InMemorySequence(name, images, masks)


def test_an_empty_first_vot_mask_names_groundtruth_line_1(tmp_path):
    folder = write_vot_sequence(tmp_path, square_sequence("hidden", 3, empty_first=True))
    with pytest.raises(DatasetError, match="^" + re.escape(f"{folder / 'groundtruth.txt'}:1: ") + ".*first frame's mask is empty"):
        check_trackable(load_sequence(folder))


def test_an_empty_first_davis_mask_names_the_png(tmp_path):
    folder = write_davis_sequence(tmp_path / "davis", square_sequence("hidden", 3, empty_first=True))
    sequence = load_sequence(folder)
    png = sequence.mask_origin(0)[0]
    assert png.suffix == ".png" and png.stem == "00000"
    with pytest.raises(DatasetError, match="^" + re.escape(f"{png}: ") + ".*first frame's mask is empty"):
        check_trackable(sequence)


def test_a_one_frame_sequence_is_named(tmp_path):
    folder = write_vot_sequence(tmp_path, square_sequence("single", 1))
    with pytest.raises(DatasetError, match=re.escape("'single' has 1 frame; tracking needs at least 2")):
        check_trackable(load_sequence(folder))
    assert check_trackable(square_sequence("fine", 2)).name == "fine"


@pytest.mark.parametrize("tracker", ["static", "two-stage"])
def test_track_refuses_an_empty_first_mask_before_building_the_tracker(tmp_path, capsys, monkeypatch, tracker):
    import tracker.registry as registry

    built = []
    monkeypatch.setattr(registry, "build_tracker", lambda *a, **k: built.append(a) or pytest.fail("tracker built"))
    folder = write_vot_sequence(tmp_path, square_sequence("hidden", 3, empty_first=True))
    status = main(["track", "--tracker", tracker, "--sequence", str(folder), "--out", str(tmp_path / "out")])
    assert status == 2 and not built
    assert f"{folder / 'groundtruth.txt'}:1: " in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_track_keeps_the_ious_before_a_corrupt_frame(tmp_path, capsys):
    folder = write_vot_sequence(tmp_path, square_sequence("broken", 6))
    (folder / "color" / "00000004.jpg").write_bytes(b"not a jpeg")  # frame 3
    out = tmp_path / "out"
    status = main(["track", "--tracker", "static", "--sequence", str(folder), "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and "00000004.jpg" in err
    lines = (out / "iou.csv").read_text().splitlines()
    # static repeats the first mask; the square moved 1 px a frame: IoU (8 - k) / (8 + k).
    assert lines[0] == "frame,iou" and [int(line.split(",")[0]) for line in lines[1:]] == [1, 2]
    assert [float(line.split(",")[1]) for line in lines[1:]] == pytest.approx([7 / 9, 6 / 10], abs=1e-6)
    assert "keeps the IoU of frames 1..2" in err


def test_tables_name_a_one_frame_sequence_before_tracking_any(tmp_path, capsys, monkeypatch):
    import evaluation.protocols as protocols
    from evaluation.tables import main as tables

    root = tmp_path / "sequences"
    for sequence in (square_sequence("first", 5), square_sequence("single", 1)):
        write_vot_sequence(root, sequence)
    write_vot_list(root, ["first", "single"])
    monkeypatch.setattr(protocols, "evaluate_lengths", lambda *a, **k: pytest.fail("tracked before checking"))
    status = tables(["--trackers", "static", "--dataset", str(root), "--no-cache", "--out", str(tmp_path / "t"),
                     "--tables", "3", "--lengths", "3", "--no-progress", "--device", "cpu"])
    assert status == 2
    assert f"{root / 'single'}: sequence 'single' has 1 frame" in capsys.readouterr().err
