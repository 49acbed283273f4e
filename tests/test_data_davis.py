"""DAVIS: the reader on every mask flavour that occurs, splits, and `pixtrack convert davis`
(masks read back from the written VOT ground truth equal the PNGs, frames copied unchanged)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tracker.cli import main
from tracker.data import DatasetError, load_dataset, load_sequence

H, W = 30, 40
REAL_DAVIS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis2016-train"


def png_truth(path: Path) -> np.ndarray:
    """A DAVIS mask read independently of the reader under test: non-zero first channel."""
    array = np.asarray(Image.open(path))
    return (array[..., 0] if array.ndim == 3 else array) != 0


def save_mask(path: Path, mask: np.ndarray, flavour: str) -> None:
    if flavour == "grey255":
        Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    elif flavour == "palette":  # index 1 = object, coloured red by the palette
        image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.astype(np.uint8).tobytes())
        image.putpalette([0, 0, 0, 128, 0, 0])
        image.save(path)
    elif flavour == "two-channel":  # grey + alpha, as bear/00077.png was
        grey = mask.astype(np.uint8) * 255
        image = Image.fromarray(np.stack([grey, np.full_like(grey, 255)], -1))
        assert image.mode == "LA"
        image.save(path)
    else:
        raise AssertionError(flavour)


def make_davis(root: Path, sequences: dict[str, int]) -> dict[str, list[np.ndarray]]:
    """A small DAVIS root; each sequence cycles through the mask flavours and has one empty mask."""
    flavours = ("grey255", "palette", "two-channel")
    truth = {}
    rng = np.random.default_rng(11)
    for name, length in sequences.items():
        (root / "JPEGImages" / "480p" / name).mkdir(parents=True)
        (root / "Annotations" / "480p" / name).mkdir(parents=True)
        truth[name] = []
        for index in range(length):
            frame = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
            Image.fromarray(frame).save(root / "JPEGImages" / "480p" / name / f"{index:05d}.jpg", quality=75)
            mask = np.zeros((H, W), bool)
            if index != 1:
                mask[3 + index : 15 + index, 5 : 12 + 2 * index] = True
            save_mask(root / "Annotations" / "480p" / name / f"{index:05d}.png", mask, flavours[index % 3])
            truth[name].append(mask)
    return truth


def test_reader_handles_grey_palette_two_channel_and_empty_masks(tmp_path):
    truth = make_davis(tmp_path, {"dog": 4})
    (sequence,) = load_dataset(tmp_path)
    assert sequence.name == "dog" and len(sequence) == 4 and sequence.frame_size == (H, W)
    for index, mask in enumerate(truth["dog"]):
        assert np.array_equal(sequence.mask(index), mask), index
    jpeg = tmp_path / "JPEGImages" / "480p" / "dog" / "00002.jpg"
    assert np.array_equal(sequence.frame(2), np.asarray(Image.open(jpeg).convert("RGB")))
    assert sequence.frame_path(2) == jpeg
    for folder in ("JPEGImages", "Annotations"):
        same = load_sequence(tmp_path / folder / "480p" / "dog")
        assert np.array_equal(same.mask(3), truth["dog"][3])


def test_splits_from_root_list_davis2016_and_davis2017_imagesets(tmp_path):
    make_davis(tmp_path, {"a": 2, "b": 2, "c": 2})
    assert [s.name for s in load_dataset(tmp_path)] == ["a", "b", "c"]
    assert [s.name for s in load_dataset(tmp_path, ["c", "a"])] == ["c", "a"]
    (tmp_path / "train.txt").write_text("b\nc\n")
    assert [s.name for s in load_dataset(tmp_path, "train")] == ["b", "c"]
    (tmp_path / "ImageSets" / "480p").mkdir(parents=True)
    (tmp_path / "ImageSets" / "480p" / "val.txt").write_text(
        "/JPEGImages/480p/c/00000.jpg /Annotations/480p/c/00000.png\n"
        "/JPEGImages/480p/c/00001.jpg /Annotations/480p/c/00001.png\n"
        "/JPEGImages/480p/a/00000.jpg /Annotations/480p/a/00000.png\n"
    )
    assert [s.name for s in load_dataset(tmp_path, "val")] == ["c", "a"]
    (tmp_path / "ImageSets" / "2017").mkdir()
    (tmp_path / "ImageSets" / "2017" / "test.txt").write_text("a\n")
    assert [s.name for s in load_dataset(tmp_path, "test")] == ["a"]
    with pytest.raises(DatasetError, match="no list for split 'nope'"):
        load_dataset(tmp_path, "nope")


def test_convert_davis_round_trips_masks_and_copies_frames(tmp_path, capsys):
    src, dst = tmp_path / "davis", tmp_path / "vot"
    truth = make_davis(src, {"dog": 4, "cat": 3})
    assert main(["convert", "davis", str(src), str(dst)]) == 0
    assert (dst / "list.txt").read_text() == "cat\ndog\n"
    for name, masks in truth.items():
        sequence = load_sequence(dst / name)
        assert len(sequence) == len(masks)
        for index, mask in enumerate(masks):
            assert np.array_equal(sequence.mask(index), mask), (name, index)
            source = src / "JPEGImages" / "480p" / name / f"{index:05d}.jpg"
            assert (dst / name / "color" / f"{index + 1:08d}.jpg").read_bytes() == source.read_bytes()
    assert "wrote 2 sequences (7 frames)" in capsys.readouterr().err

    from vot.dataset import load_dataset as vot_load_dataset

    theirs = vot_load_dataset(str(dst))
    assert sorted(theirs.keys()) == ["cat", "dog"]
    dog = theirs["dog"]
    for index, mask in enumerate(truth["dog"]):
        assert np.array_equal(dog.groundtruth(index).rasterize((0, 0, W - 1, H - 1)).astype(bool), mask)


def test_convert_subset_with_quality_and_force(tmp_path, capsys):
    src, dst = tmp_path / "davis", tmp_path / "vot"
    truth = make_davis(src, {"dog": 3, "cat": 3})
    assert main(["convert", "davis", str(src), str(dst), "--sequences", "dog", "--quality", "60"]) == 0
    assert (dst / "list.txt").read_text() == "dog\n"
    frame = dst / "dog" / "color" / "00000001.jpg"
    assert frame.read_bytes() != (src / "JPEGImages" / "480p" / "dog" / "00000.jpg").read_bytes()
    assert np.array_equal(load_sequence(dst / "dog").mask(2), truth["dog"][2])
    capsys.readouterr()
    assert main(["convert", "davis", str(src), str(dst), "--sequences", "dog"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["convert", "davis", str(src), str(dst), "--sequences", "dog", "--force"]) == 0
    assert frame.read_bytes() == (src / "JPEGImages" / "480p" / "dog" / "00000.jpg").read_bytes()
    assert main(["convert", "davis", str(src), str(dst), "--sequences", "dog,bird"]) == 2
    assert "sequence 'bird' does not exist" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not REAL_DAVIS.is_dir(), reason=f"real DAVIS data not found at {REAL_DAVIS}")
def test_real_davis2016_train_round_trips_pixel_for_pixel(tmp_path):
    """Every mask of every frame of the 30 sequences, read back from the written ground truth,
    equals its PNG; frames are copied byte for byte; the toolkit reads the empty masks too."""
    dst = tmp_path / "vot"
    assert main(["convert", "davis", str(REAL_DAVIS), str(dst), "--split", "train"]) == 0
    names = (REAL_DAVIS / "train.txt").read_text().split()
    assert (dst / "list.txt").read_text().split() == names and len(names) == 30
    frames = empty = 0
    for name in names:
        sequence = load_sequence(dst / name)
        pngs = sorted((REAL_DAVIS / "Annotations" / "480p" / name).glob("*.png"))
        assert len(sequence) == len(pngs) and sequence.frame_size == (480, 854)
        for index, png in enumerate(pngs):
            truth = png_truth(png)
            assert np.array_equal(sequence.mask(index), truth), (name, png.name)
            frames += 1
            empty += not truth.any()
        jpeg = REAL_DAVIS / "JPEGImages" / "480p" / name / "00000.jpg"
        assert (dst / name / "color" / "00000001.jpg").read_bytes() == jpeg.read_bytes()
    assert frames == 2079 and empty == 15

    from vot.dataset import load_sequence as vot_load_sequence

    theirs = vot_load_sequence(str(dst / "bmx-bumps"))
    pngs = sorted((REAL_DAVIS / "Annotations" / "480p" / "bmx-bumps").glob("*.png"))
    for index, png in enumerate(pngs):
        assert np.array_equal(theirs.groundtruth(index).rasterize((0, 0, 853, 479)).astype(bool), png_truth(png))
