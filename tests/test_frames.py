"""Frame and mask conversion at the trackers' door."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.frames import as_mask, as_rgb


def test_rgb_passes_through_unchanged():
    frame = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = as_rgb(frame)
    assert out.dtype == np.uint8 and np.array_equal(out, frame)


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1)])
def test_grayscale_is_replicated_to_three_channels(shape):
    gray = np.arange(35, dtype=np.uint8).reshape(shape)
    out = as_rgb(gray)
    assert out.shape == (5, 7, 3)
    for channel in range(3):
        assert np.array_equal(out[:, :, channel], gray.reshape(5, 7))


def test_rgba_loses_alpha():
    rgba = np.random.default_rng(1).integers(0, 256, (4, 6, 4), dtype=np.uint8)
    out = as_rgb(rgba)
    assert out.shape == (4, 6, 3) and out.flags.c_contiguous
    assert np.array_equal(out, rgba[:, :, :3])


@pytest.mark.parametrize(
    "frame, message",
    [
        (np.zeros((5, 7, 3), dtype=np.float32), r"uint8.*shape \(5, 7, 3\), dtype float32"),
        (np.zeros((5, 7, 2), dtype=np.uint8), r"shape \(5, 7, 2\), dtype uint8"),
        (np.zeros((2, 5, 7, 3), dtype=np.uint8), r"shape \(2, 5, 7, 3\)"),
        (np.zeros((7,), dtype=np.uint8), r"shape \(7,\)"),
        (np.zeros((0, 7, 3), dtype=np.uint8), "empty"),
    ],
)
def test_bad_frames_name_their_shape_and_dtype(frame, message):
    with pytest.raises(ValueError, match=message):
        as_rgb(frame)


def test_masks_of_each_accepted_kind():
    expected = np.zeros((3, 4), dtype=bool)
    expected[1, 2] = True
    assert np.array_equal(as_mask(expected), expected)
    assert np.array_equal(as_mask(expected.astype(np.uint8) * 255), expected)
    assert np.array_equal(as_mask(expected.astype(np.float32)), expected)
    assert np.array_equal(as_mask(expected[:, :, None]), expected)
    assert as_mask(expected.astype(np.int64), frame_size=(3, 4)).dtype == np.bool_


def test_bad_masks_are_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"only 0 and 1"):
        as_mask(np.full((3, 4), 0.5, dtype=np.float32))
    with pytest.raises(ValueError, match=r"HxW.*shape \(3, 4, 2\)"):
        as_mask(np.zeros((3, 4, 2), dtype=bool))
    with pytest.raises(ValueError, match=r"mask is 3x4 but the frame is 5x4"):
        as_mask(np.zeros((3, 4), dtype=bool), frame_size=(5, 4))
    with pytest.raises(ValueError, match=r"dtype <U1"):
        as_mask(np.array([["a"]]))
