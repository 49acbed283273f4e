"""Bad input: each error names the file (and line) at fault, raised at load time where it can
be known without decoding images, and when the image is read otherwise."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tracker.cli import main
from tracker.data import DatasetError, InMemorySequence, load_dataset, load_sequence, write_vot_sequence

H, W = 20, 28


def vot_sequence(root: Path, name: str = "seq", length: int = 3) -> Path:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (H, W, 3), dtype=np.uint8) for _ in range(length)]
    masks = [np.zeros((H, W), bool) for _ in range(length)]
    for mask in masks:
        mask[2:9, 3:12] = True
    return write_vot_sequence(root, InMemorySequence(name, frames, masks))


def davis_sequence(root: Path, name: str = "dog", length: int = 3) -> None:
    for index in range(length):
        for folder, suffix in (("JPEGImages", "jpg"), ("Annotations", "png")):
            path = root / folder / "480p" / name / f"{index:05d}.{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            array = np.zeros((H, W, 3) if suffix == "jpg" else (H, W), np.uint8)
            Image.fromarray(array).save(path)


def raises(path: Path, pattern: str, line: int | None = None):
    """pytest.raises for a DatasetError whose message starts with `path[:line]: `."""
    where = f"{path}:{line}" if line is not None else str(path)
    return pytest.raises(DatasetError, match="^" + re.escape(where) + ": " + pattern)


# --- a missing frame -----------------------------------------------------------------------------


def test_missing_frame_named_by_the_sequence_file_length(tmp_path):
    folder = vot_sequence(tmp_path)
    (folder / "color" / "00000002.jpg").unlink()
    with raises(folder / "color" / "00000002.jpg", "frame 2 of 3 is missing"):
        load_sequence(folder)


def test_missing_frame_without_length_shows_as_groundtruth_count(tmp_path):
    folder = vot_sequence(tmp_path)
    (folder / "sequence").unlink()
    (folder / "color" / "00000002.jpg").unlink()
    missing = folder / "color" / "00000002.jpg"
    with raises(folder / "groundtruth.txt", re.escape(f"3 regions for 1 frames; frame file {missing} is missing")):
        load_sequence(folder)


def test_missing_davis_frame_and_mask(tmp_path):
    davis_sequence(tmp_path)
    frame = tmp_path / "JPEGImages" / "480p" / "dog" / "00001.jpg"
    frame.unlink()
    with raises(frame, "frame is missing"):
        load_dataset(tmp_path)
    davis_sequence(tmp_path)
    last_frame = tmp_path / "JPEGImages" / "480p" / "dog" / "00002.jpg"
    last_frame.unlink()
    with raises(last_frame, "frame is missing \\(its mask"):
        load_dataset(tmp_path)
    davis_sequence(tmp_path)
    mask = tmp_path / "Annotations" / "480p" / "dog" / "00002.png"
    mask.unlink()
    with raises(mask, "mask for frame 00002.jpg is missing"):
        load_dataset(tmp_path)


# --- a corrupt or truncated image ----------------------------------------------------------------


def test_corrupt_and_truncated_frames_fail_when_read_naming_the_file(tmp_path):
    folder = vot_sequence(tmp_path)
    corrupt, truncated = folder / "color" / "00000002.jpg", folder / "color" / "00000003.jpg"
    corrupt.write_bytes(b"this is not a JPEG" * 10)
    truncated.write_bytes(truncated.read_bytes()[:200])
    sequence = load_sequence(folder)  # headers of later frames are not read up front
    assert sequence.frame(0).shape == (H, W, 3)
    with raises(corrupt, "corrupt or truncated image"):
        sequence.frame(1)
    with raises(truncated, "corrupt or truncated image"):
        sequence.frame(2)
    with raises(corrupt, "corrupt or truncated image"):
        list(sequence)


def test_corrupt_first_frame_fails_at_load_time(tmp_path):
    folder = vot_sequence(tmp_path)
    (folder / "color" / "00000001.jpg").write_bytes(b"\x00" * 50)
    with raises(folder / "color" / "00000001.jpg", "not a readable image"):
        load_sequence(folder)


def test_corrupt_davis_mask_fails_when_read(tmp_path):
    davis_sequence(tmp_path)
    mask = tmp_path / "Annotations" / "480p" / "dog" / "00001.png"
    mask.write_bytes(mask.read_bytes()[:40])
    with pytest.raises(DatasetError, match=re.escape(str(mask))):
        load_dataset(tmp_path)[0].mask(1)


# --- a mask whose size differs from its frame ----------------------------------------------------


def test_davis_mask_of_another_size_fails_at_load_time(tmp_path):
    davis_sequence(tmp_path)
    mask = tmp_path / "Annotations" / "480p" / "dog" / "00002.png"
    Image.fromarray(np.zeros((H, W + 4), np.uint8)).save(mask)
    with raises(mask, f"mask is {W + 4}x{H} but its frame is {W}x{H}"):
        load_dataset(tmp_path)


def test_vot_mask_reaching_outside_the_frame_fails_at_load_time(tmp_path):
    folder = vot_sequence(tmp_path)
    lines = (folder / "groundtruth.txt").read_text().splitlines()
    lines[1] = f"m{W - 2},0,4,1,0,4"  # 4 pixels from x = W - 2: two outside
    (folder / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    with raises(folder / "groundtruth.txt", f"mask pixels lie outside the {W}x{H} frame", line=2):
        load_sequence(folder)


def test_frame_of_another_size(tmp_path):
    folder = vot_sequence(tmp_path)
    Image.fromarray(np.zeros((H, W + 2, 3), np.uint8)).save(folder / "color" / "00000003.jpg")
    sequence = load_sequence(folder)
    with raises(folder / "color" / "00000003.jpg", f"frame is {W + 2}x{H}, the sequence's frames are {W}x{H}"):
        sequence.frame(2)
    Image.fromarray(np.zeros((H, W + 2, 3), np.uint8)).save(folder / "color" / "00000001.jpg")
    declared = re.escape(f"frame is {W + 2}x{H} but {folder / 'sequence'} says {W}x{H}")
    with raises(folder / "color" / "00000001.jpg", declared):
        load_sequence(folder)


def test_in_memory_mask_of_another_size():
    with pytest.raises(ValueError, match=r"sequence 'x', frame 1: mask shape \(20, 27\) differs"):
        InMemorySequence("x", [np.zeros((H, W, 3), np.uint8)] * 2, [np.zeros((H, W)), np.zeros((H, W - 1))])


# --- a sequence with no frames -------------------------------------------------------------------


def test_sequences_with_no_frames(tmp_path):
    folder = tmp_path / "empty"
    (folder / "color").mkdir(parents=True)
    (folder / "groundtruth.txt").write_text("")
    with raises(folder, "sequence has no frames"):
        load_sequence(folder)
    (folder / "sequence").write_text("channels.color=color/%08d.jpg\nlength=0\n")
    with raises(folder / "sequence", "length=0 must be positive"):
        load_sequence(folder)
    (tmp_path / "davis" / "JPEGImages" / "480p" / "dog").mkdir(parents=True)
    (tmp_path / "davis" / "Annotations" / "480p" / "dog").mkdir(parents=True)
    with raises(tmp_path / "davis" / "JPEGImages" / "480p" / "dog", "sequence has no frames"):
        load_dataset(tmp_path / "davis")
    with pytest.raises(ValueError, match="sequence 'none' has no frames"):
        InMemorySequence("none", [], [])


# --- an unreadable ground-truth line -------------------------------------------------------------


@pytest.mark.parametrize(
    "line, problem",
    [
        ("m1,2,x,4", "unreadable mask \\(mask values must be integers\\)"),
        ("m0,0,2,2,1,9", "unreadable mask \\(run lengths add up to 10, more than the 2x2 patch\\)"),
        ("m0,0,-2,2", "unreadable mask \\(negative mask size"),
        ("m0,0", "unreadable mask \\(a mask needs"),
        ("1,2,3", "not a rectangle, polygon or mask"),
        ("4,5", "not a rectangle, polygon or mask"),
        ("hello", "unreadable region 'hello'"),
        ("", "empty ground-truth line"),
    ],
)
def test_unreadable_groundtruth_line_names_file_and_line(tmp_path, line, problem):
    folder = vot_sequence(tmp_path)
    lines = (folder / "groundtruth.txt").read_text().splitlines()
    lines[1] = line
    (folder / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    with raises(folder / "groundtruth.txt", problem, line=2):
        load_sequence(folder)


def test_groundtruth_with_fewer_lines_than_frames(tmp_path):
    folder = vot_sequence(tmp_path)
    lines = (folder / "groundtruth.txt").read_text().splitlines()
    (folder / "groundtruth.txt").write_text("\n".join(lines[:2]) + "\n\n\n")  # trailing blank lines are fine
    with raises(folder / "groundtruth.txt", "2 regions for 3 frames"):
        load_sequence(folder)


def test_bad_sequence_file_and_tag_file_lines(tmp_path):
    folder = vot_sequence(tmp_path)
    text = (folder / "sequence").read_text()
    (folder / "sequence").write_text(text + "this line has no equals sign\n")
    with raises(folder / "sequence", "expected key=value", line=8):
        load_sequence(folder)
    (folder / "sequence").write_text(text)
    (folder / "occlusion.tag").write_text("0\n1\nyes\n")
    with raises(folder / "occlusion.tag", "expected 0 or 1, got 'yes'", line=3):
        load_sequence(folder)


# --- a list naming a missing sequence ------------------------------------------------------------


def test_list_naming_a_missing_sequence(tmp_path):
    vot_sequence(tmp_path, "here")
    (tmp_path / "list.txt").write_text("here\n\nnot-here\n")
    with raises(tmp_path / "list.txt", "names sequence 'not-here', but .* does not exist", line=3):
        load_dataset(tmp_path)
    with raises(tmp_path / "gone", "sequence 'gone' does not exist"):
        load_dataset(tmp_path, ["here", "gone"])
    davis_sequence(tmp_path / "davis")
    (tmp_path / "davis" / "train.txt").write_text("dog\ncat\n")
    with raises(tmp_path / "davis" / "train.txt", "names sequence 'cat'", line=2):
        load_dataset(tmp_path / "davis", "train")


def test_not_a_dataset_at_all(tmp_path):
    with raises(tmp_path, "neither a VOT sequences folder"):
        load_dataset(tmp_path)
    with raises(tmp_path / "nowhere", "dataset folder is missing"):
        load_dataset(tmp_path / "nowhere")
    with raises(tmp_path / "nowhere", "sequence folder is missing"):
        load_sequence(tmp_path / "nowhere")


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    davis_sequence(tmp_path / "davis")
    mask = tmp_path / "davis" / "Annotations" / "480p" / "dog" / "00001.png"
    Image.fromarray(np.zeros((H + 1, W), np.uint8)).save(mask)
    assert main(["convert", "davis", str(tmp_path / "davis"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"pixtrack convert: error: {mask}: mask is {W}x{H + 1} but its frame is {W}x{H}"
    assert not (tmp_path / "out").exists()  # checked before anything was written
