"""VOT2016-style per-frame PNG masks beside a VOT sequence's frames (`masks/%08d.png`, or
`%08d.png` next to legacy `%08d.jpg` frames); they take precedence over groundtruth.txt."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tracker.data import DatasetError, load_sequence

H, W = 24, 32


def masks() -> list[np.ndarray]:
    result = []
    for index in range(3):
        mask = np.zeros((H, W), bool)
        mask[4 + index : 12 + index, 6 : 20 - index] = True
        result.append(mask)
    result[1][:] = False  # fully occluded
    return result


def write_frames(folder, pattern: str, count: int = 3) -> None:
    rng = np.random.default_rng(3)
    for index in range(count):
        path = folder / (pattern % (index + 1))
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(path)


def test_masks_folder_beside_color_frames_with_0_1_and_0_255_values(tmp_path):
    folder = tmp_path / "seq"
    write_frames(folder, "color/%08d.jpg")
    (folder / "masks").mkdir()
    expected = masks()
    Image.fromarray(expected[0].astype(np.uint8)).save(folder / "masks" / "00000001.png")  # 0/1
    Image.fromarray(expected[1].astype(np.uint8) * 255).save(folder / "masks" / "00000002.png")
    Image.fromarray(expected[2].astype(np.uint8) * 255).convert("RGB").save(folder / "masks" / "00000003.png")
    # A groundtruth.txt with boxes, as VOT2016 ships: the PNG masks win.
    (folder / "groundtruth.txt").write_text("0,0,5,5\n" * 3)
    sequence = load_sequence(folder)
    assert len(sequence) == 3
    for index in range(3):
        assert np.array_equal(sequence.mask(index), expected[index]), index


def test_pngs_beside_legacy_frames(tmp_path):
    folder = tmp_path / "legacy"
    write_frames(folder, "%08d.jpg")
    for index, mask in enumerate(masks()):
        Image.fromarray(mask.astype(np.uint8) * 255).save(folder / f"{index + 1:08d}.png")
    sequence = load_sequence(folder)
    assert [np.array_equal(sequence.mask(i), m) for i, m in enumerate(masks())] == [True] * 3
    assert sequence.frame(2).shape == (H, W, 3)


def test_missing_png_mask_is_named(tmp_path):
    folder = tmp_path / "seq"
    write_frames(folder, "color/%08d.jpg")
    (folder / "masks").mkdir()
    for index in (0, 2):
        Image.fromarray(masks()[index].astype(np.uint8)).save(folder / "masks" / f"{index + 1:08d}.png")
    with pytest.raises(DatasetError, match=r"masks/00000002\.png: mask for frame 00000002\.jpg is missing"):
        load_sequence(folder)


def test_png_mask_of_another_size_fails_at_load_time(tmp_path):
    folder = tmp_path / "seq"
    write_frames(folder, "color/%08d.jpg")
    (folder / "masks").mkdir()
    for index, mask in enumerate(masks()):
        if index == 2:
            mask = np.zeros((H + 1, W), bool)
        Image.fromarray(mask.astype(np.uint8)).save(folder / "masks" / f"{index + 1:08d}.png")
    with pytest.raises(DatasetError, match=rf"00000003\.png: mask is {W}x{H + 1} but its frame is {W}x{H}"):
        load_sequence(folder)


def test_convert_vot2016_puts_the_png_masks_into_groundtruth(tmp_path, capsys):
    """`pixtrack convert vot2016`: the toolkit then reads the masks, not VOT2016's polygons."""
    from tracker.cli import main

    src, dst = tmp_path / "vot2016", tmp_path / "sequences"
    folder = src / "legacy"
    write_frames(folder, "%08d.jpg")
    for index, mask in enumerate(masks()):
        Image.fromarray(mask.astype(np.uint8) * 255).save(folder / f"{index + 1:08d}.png")
    (folder / "groundtruth.txt").write_text("1,1,9,1,9,9,1,9\n" * 3)  # polygons, as shipped
    (src / "list.txt").write_text("legacy\n")
    assert main(["convert", "vot2016", str(src), str(dst)]) == 0
    assert "wrote 1 sequences (3 frames)" in capsys.readouterr().err
    converted = load_sequence(dst / "legacy")
    assert [np.array_equal(converted.mask(i), m) for i, m in enumerate(masks())] == [True] * 3

    from vot.dataset import load_dataset as vot_load_dataset

    theirs = vot_load_dataset(str(dst))["legacy"]
    for index, mask in enumerate(masks()):
        assert np.array_equal(theirs.groundtruth(index).rasterize((0, 0, W - 1, H - 1)).astype(bool), mask)
    assert main(["convert", "vot2016", str(dst), str(dst)]) != 0
    assert "same folder" in capsys.readouterr().err
