"""ROI geometry: conventions of docs/interfaces.md, crops and pastes checked against hand
computations and against each other.

"Exact" cases below allow 1e-4 on values in [0, 1]: grid_sample works in float32 normalised
coordinates, so a sample meant to fall on a pixel centre lands up to ~W * 1.2e-7 pixels off
(5e-5 pixels at W = 400), which moves a bilinear sample of a [0, 1] image by as much.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tracker import roi


def _boxes(*rows: tuple[float, float, float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# --- theta <-> box ------------------------------------------------------------------------


def test_theta_to_box_by_hand():
    # Frame 100 high, 300 wide (gamma = 3): theta (0.5, -0.5, 0.1) has its centre 3/4 across
    # and 1/4 down, and side 0.1 * W = 30 pixels.
    box = roi.theta_to_box(torch.tensor([0.5, -0.5, 0.1]), (100, 300))
    assert torch.allclose(box, torch.tensor([225.0, 25.0, 30.0]))


def test_theta_box_round_trip_batched():
    generator = torch.Generator().manual_seed(0)
    theta = torch.rand(5, 7, 3, generator=generator) * 2 - 1
    for frame_size in [(64, 64), (480, 854), (2160, 3840), (500, 37)]:
        box = roi.theta_to_box(theta, frame_size)
        assert torch.allclose(roi.box_to_theta(box, frame_size), theta, atol=1e-4)
        assert torch.allclose(roi.theta_to_box(roi.box_to_theta(box, frame_size), frame_size), box, atol=1e-3)


def test_theta_box_is_square_in_pixels_on_non_square_frames():
    """The anchor box of interfaces.md (x in [tx - s, tx + s], y in [ty - s*gamma, ty + s*gamma])
    rendered on an H x W frame covers as many rows as columns, and matches side = s * W."""
    for height, width in [(120, 360), (300, 100)]:
        gamma = width / height
        theta = torch.tensor([[0.1, -0.2, 0.26]])
        tx, ty, s = theta[0].tolist()
        # Pixel centres in normalised coordinates, align_corners=False.
        x = (2 * torch.arange(width) + 1) / width - 1
        y = (2 * torch.arange(height) + 1) / height - 1
        columns = ((x >= tx - s) & (x <= tx + s)).sum().item()
        rows = ((y >= ty - s * gamma) & (y <= ty + s * gamma)).sum().item()
        side = roi.theta_to_box(theta, (height, width))[0, 2].item()
        assert columns == rows == pytest.approx(side, abs=1)
        # The same box pasted as an all-ones map covers the same pixels.
        pasted = roi.paste(torch.ones(1, 1, 224, 224), roi.theta_to_box(theta, (height, width)), (height, width))[0, 0]
        assert (pasted > 0).any(dim=0).sum().item() == columns
        assert (pasted > 0).any(dim=1).sum().item() == rows


# --- boxes from masks -----------------------------------------------------------------------


def test_box_from_mask_by_hand():
    mask = torch.zeros(2, 40, 60, dtype=torch.bool)
    mask[0, 10:20, 5:35] = True  # 10 rows, 30 columns: side 30, centre (20, 15)
    mask[1, 7, 9] = True  # one pixel: spans [9, 10] x [7, 8]
    boxes = roi.box_from_mask(mask)
    assert torch.equal(boxes, _boxes((20.0, 15.0, 30.0), (9.5, 7.5, 1.0)))


def test_box_from_empty_mask_is_zero_sized_at_the_centre():
    assert torch.equal(roi.box_from_mask(torch.zeros(30, 50, dtype=torch.bool)), torch.tensor([25.0, 15.0, 0.0]))


def test_roi_from_object_box_doubles_and_clips():
    boxes = _boxes((10.0, 20.0, 100.0), (5.0, 5.0, 1.0), (0.0, 0.0, 1000.0))
    assert torch.equal(roi.roi_from_object_box(boxes), _boxes((10.0, 20.0, 200.0), (5.0, 5.0, 56.0), (0.0, 0.0, 672.0)))


def test_keep_in_frame_clamps_centres_only():
    boxes = _boxes((-50.0, 30.0, 80.0), (500.0, 900.0, 60.0), (10.0, 20.0, 30.0))
    kept = roi.keep_in_frame(boxes, (100, 200))
    assert torch.equal(kept, _boxes((0.0, 30.0, 80.0), (200.0, 100.0, 60.0), (10.0, 20.0, 30.0)))


# --- crop -----------------------------------------------------------------------------------


def test_crop_of_an_aligned_224_box_is_the_slice_itself():
    """Side 224 on integer pixel edges: crop pixel j samples exactly frame pixel centre j."""
    frames = torch.rand(2, 3, 300, 400, generator=torch.Generator().manual_seed(1))
    boxes = _boxes((50.0 + 112, 20.0 + 112, 224.0), (-30.0 + 112, 100.0 + 112, 224.0))
    crops = roi.crop(frames, boxes)
    assert crops.shape == (2, 3, 224, 224)
    assert torch.allclose(crops[0], frames[0, :, 20:244, 50:274], atol=1e-4)
    # The second box starts 30 columns left of the frame and ends 24 rows below it: zeros there.
    assert torch.allclose(crops[1, :, :200, 30:], frames[1, :, 100:300, 0:194], atol=1e-4)
    assert crops[1, :, :, :30].abs().max() < 1e-4
    assert crops[1, :, 200:, :].abs().max() < 1e-4


def test_crop_at_half_scale_averages_2x2_blocks():
    """Side 448 -> 224: crop pixel j samples pixel coordinate 2j + 1, the corner shared by four
    frame pixels, so bilinear sampling is their mean."""
    frame = torch.rand(1, 1, 448, 448, generator=torch.Generator().manual_seed(2))
    crops = roi.crop(frame, _boxes((224.0, 224.0, 448.0)))
    assert torch.allclose(crops, F.avg_pool2d(frame, 2), atol=1e-4)


def test_crop_accepts_uint8_frames():
    frame = torch.full((1, 3, 250, 250), 200, dtype=torch.uint8)
    crops = roi.crop(frame, _boxes((125.0, 125.0, 224.0)))
    assert crops.dtype == torch.float32 and torch.all(crops == 200.0)


def test_crop_of_mask_gives_coverage():
    """A mask edge half-way between two crop samples reads 0.5 (bilinear coverage)."""
    mask = torch.zeros(1, 1, 448, 448)
    mask[..., :, :225] = 1  # columns 0..224; crop column 112 samples x = 225.0 = between 224 and 225
    crops = roi.crop(mask, _boxes((224.0, 224.0, 448.0)))
    assert torch.allclose(crops[..., :112], torch.ones(224, 112), atol=1e-4)
    assert torch.allclose(crops[..., 112], torch.full((224,), 0.5), atol=1e-4)
    assert crops[..., 113:].abs().max() < 1e-4
    nearest = roi.crop(mask, _boxes((224.0, 224.0, 448.0)), mode="nearest")
    assert set(nearest.unique().tolist()) <= {0.0, 1.0}


def _reference_grid(boxes: torch.Tensor, count: int, frame_size: tuple[int, int]) -> torch.Tensor:
    """affine_grid of the crop in normalised coordinates: [[s, 0, tx], [0, s * gamma, ty]]."""
    theta = roi.box_to_theta(boxes, frame_size)
    height, width = frame_size
    tx, ty, s = theta.unbind(-1)
    zero = torch.zeros_like(s)
    matrices = torch.stack((torch.stack((s, zero, tx), -1), torch.stack((zero, s * width / height, ty), -1)), 1)
    return F.affine_grid(matrices, [boxes.shape[0], 1, count, count], align_corners=False)


def _random_boxes(generator: torch.Generator, count: int, height: int, width: int) -> torch.Tensor:
    side = torch.empty(count).uniform_(10, 1.5 * max(height, width), generator=generator)
    cx = torch.empty(count).uniform_(-0.3, 1.3, generator=generator) * width
    cy = torch.empty(count).uniform_(-0.3, 1.3, generator=generator) * height
    return torch.stack((cx, cy, side), dim=-1)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_crop_equals_grid_sample_with_the_anchor_transform(mode):
    """The gather-based crop is grid_sample(zeros padding) of the anchor transform T(theta) of
    interfaces.md, for random boxes, partly outside the frame included, on non-square frames."""
    generator = torch.Generator().manual_seed(7)
    for height, width in [(90, 160), (240, 100), (64, 64)]:
        images = torch.rand(6, 2, height, width, generator=generator)
        boxes = _random_boxes(generator, 6, height, width)
        expected = F.grid_sample(images, _reference_grid(boxes, 224, (height, width)), mode=mode,
                                 padding_mode="zeros", align_corners=False)
        got = roi.crop(images, boxes, mode=mode)
        if mode == "bilinear":
            assert torch.allclose(got, expected, atol=1e-4)
        else:  # a sample within float error of a pixel edge may pick either neighbour
            assert (got - expected).abs().gt(1e-6).float().mean() < 1e-3


def test_crop_of_uint8_equals_crop_of_float():
    generator = torch.Generator().manual_seed(8)
    frames = torch.randint(0, 256, (2, 3, 70, 120), generator=generator, dtype=torch.uint8)
    boxes = _random_boxes(generator, 2, 70, 120)
    assert torch.allclose(roi.crop(frames, boxes), roi.crop(frames.float(), boxes), atol=1e-3)
    # A channels-last view (how the tracker hands a decoded HxWx3 frame over) works too.
    view = frames.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert torch.equal(roi.crop(view, boxes), roi.crop(frames, boxes))


def test_paste_equals_grid_sample_inside_the_box():
    """paste = grid_sample(border padding) of the inverse transform, times the box's indicator."""
    generator = torch.Generator().manual_seed(9)
    for height, width in [(90, 160), (240, 100)]:
        maps = torch.rand(5, 1, 224, 224, generator=generator)
        boxes = _random_boxes(generator, 5, height, width)
        cx, cy, side = boxes.unbind(-1)
        x = torch.arange(width) + 0.5
        y = torch.arange(height) + 0.5
        u = (x[None, :] - cx[:, None]) / (side[:, None] / 2)
        v = (y[None, :] - cy[:, None]) / (side[:, None] / 2)
        grid = torch.stack((u[:, None, :].expand(-1, height, -1), v[:, :, None].expand(-1, -1, width)), dim=-1)
        inside = ((v.abs() <= 1)[:, :, None] & (u.abs() <= 1)[:, None, :])[:, None]
        expected = F.grid_sample(maps, grid, padding_mode="border", align_corners=False) * inside
        assert torch.allclose(roi.paste(maps, boxes, (height, width)), expected, atol=1e-4)


# --- paste ------------------------------------------------------------------------------------


def test_paste_of_an_aligned_224_box_is_exact_and_zero_outside():
    maps = torch.rand(1, 1, 224, 224, generator=torch.Generator().manual_seed(3))
    frame = roi.paste(maps, _boxes((-10.0 + 112, 40.0 + 112, 224.0)), (300, 260))
    assert frame.shape == (1, 1, 300, 260)
    assert torch.allclose(frame[0, 0, 40:264, 0:214], maps[0, 0, :, 10:], atol=1e-4)
    outside = torch.ones(300, 260, dtype=torch.bool)
    outside[40:264, 0:214] = False
    assert torch.count_nonzero(frame[0, 0][outside]) == 0


def test_paste_is_zero_for_a_box_entirely_outside_the_frame():
    frame = roi.paste(torch.ones(1, 1, 224, 224), _boxes((-200.0, 50.0, 100.0)), (100, 100))
    assert torch.count_nonzero(frame) == 0


def _linear_image(height: int, width: int, a: float, b: float, c: float) -> torch.Tensor:
    """f(x, y) = a * x + b * y + c at pixel centres, with x, y in pixel coordinates."""
    y = torch.arange(height, dtype=torch.float64)[:, None] + 0.5
    x = torch.arange(width, dtype=torch.float64)[None, :] + 0.5
    return (a * x + b * y + c).float()


def test_crop_then_paste_returns_the_input_inside_the_roi():
    """Random boxes (partly outside the frame too), frame sizes and aspect ratios.

    Tolerance reasoning: bilinear interpolation reproduces an affine function exactly, so
    crop-then-paste of f(x, y) = a x + b y + c is exact (up to float32 rounding, ~1e-5 for
    values of order 1) wherever both resamplings only interpolate, i.e. at frame pixels
    (a) at least one crop pixel (side / 224) plus one frame pixel inside the ROI's edge
    (beyond that the paste extends the crop's edge value instead of interpolating), and
    (b) at least that far from the frame's edge (beyond it the crop mixed in zero padding).
    Everything outside the ROI must be exactly 0.
    """
    generator = torch.Generator().manual_seed(4)
    checked = 0
    for trial in range(24):
        height = int(torch.randint(40, 400, (1,), generator=generator))
        width = int(torch.randint(40, 400, (1,), generator=generator))
        side = float(torch.empty(1).uniform_(20, 600, generator=generator))
        # Centres anywhere from a half side outside the frame to a half side beyond it.
        cx = float(torch.empty(1).uniform_(-side / 3, width + side / 3, generator=generator))
        cy = float(torch.empty(1).uniform_(-side / 3, height + side / 3, generator=generator))
        a, b = (float(v) for v in torch.empty(2).uniform_(-1, 1, generator=generator) / max(height, width))
        image = _linear_image(height, width, a, b, 0.5)[None, None]
        box = _boxes((cx, cy, side))
        pasted = roi.paste(roi.crop(image, box), box, (height, width))[0, 0]

        x = torch.arange(width, dtype=torch.float64) + 0.5
        y = torch.arange(height, dtype=torch.float64) + 0.5
        margin = side / 224 + 1
        inner_x = ((x - cx).abs() <= side / 2 - margin) & (x >= margin) & (x <= width - margin)
        inner_y = ((y - cy).abs() <= side / 2 - margin) & (y >= margin) & (y <= height - margin)
        inner = inner_y[:, None] & inner_x[None, :]
        inside_x = (x - cx).abs() <= side / 2
        inside_y = (y - cy).abs() <= side / 2
        outside = ~(inside_y[:, None] & inside_x[None, :])
        assert torch.count_nonzero(pasted[outside]) == 0, f"trial {trial}: nonzero outside the ROI"
        if inner.any():
            error = (pasted[inner] - image[0, 0][inner]).abs().max().item()
            assert error < 1e-4, f"trial {trial}: frame {height}x{width}, box {box.tolist()}: error {error}"
            checked += 1
    assert checked >= 15  # most random boxes leave an interior to check


def test_crop_then_paste_of_a_constant_fills_the_roi_inside_the_frame():
    """Exact case: a constant frame comes back as the constant at every pixel whose centre is
    inside the ROI and more than a crop pixel from the frame's edge."""
    image = torch.full((1, 1, 90, 160), 0.75)
    box = _boxes((150.0, 10.0, 120.0))  # crosses the right and the top edges
    pasted = roi.paste(roi.crop(image, box), box, (90, 160))[0, 0]
    assert torch.allclose(pasted[2:70, 92:158], torch.full((68, 66), 0.75))
    assert torch.count_nonzero(pasted[70:, :]) == 0 and torch.count_nonzero(pasted[:, :90]) == 0


def test_crop_and_paste_batch_elements_are_independent():
    generator = torch.Generator().manual_seed(5)
    images = torch.rand(3, 2, 120, 90, generator=generator)
    boxes = _boxes((45.0, 60.0, 80.0), (0.0, 0.0, 200.0), (80.0, 110.0, 30.0))
    crops = roi.crop(images, boxes)
    pasted = roi.paste(crops, boxes, (120, 90))
    for i in range(3):
        assert torch.allclose(crops[i : i + 1], roi.crop(images[i : i + 1], boxes[i : i + 1]))
        assert torch.allclose(pasted[i : i + 1], roi.paste(crops[i : i + 1], boxes[i : i + 1], (120, 90)))


def test_crop_and_paste_refuse_mismatched_boxes():
    with pytest.raises(ValueError, match=r"boxes must be \[B, 3\] with B = 2"):
        roi.crop(torch.zeros(2, 1, 10, 10), _boxes((5.0, 5.0, 4.0)))
    with pytest.raises(ValueError, match="maps must be"):
        roi.paste(torch.zeros(224, 224), _boxes((5.0, 5.0, 4.0)), (10, 10))
    with pytest.raises(ValueError, match="frame_size"):
        roi.paste(torch.zeros(1, 1, 224, 224), _boxes((5.0, 5.0, 4.0)), (0, 10))


# --- global model input ------------------------------------------------------------------------


def test_resize_map_keeps_constants_mass_and_centroid():
    """Full frame -> 224 x 224 for the global model: constants stay constant; an object keeps
    its share of the frame's area and its centroid in normalised coordinates."""
    for height, width in [(480, 854), (64, 64), (150, 600)]:
        assert torch.allclose(roi.resize_map(torch.full((1, 1, height, width), 0.3)), torch.full((1, 1, 224, 224), 0.3))
        full = torch.zeros(1, 1, height, width)
        top, left = height // 3, width // 4
        full[..., top : top + height // 4, left : left + width // 5] = 1
        small = roi.resize_map(full)
        assert small.shape == (1, 1, 224, 224)
        assert small.min() >= 0 and small.max() <= 1 + 1e-6
        assert small.mean().item() == pytest.approx(full.mean().item(), rel=0.05)

        def centroid(m: torch.Tensor) -> tuple[float, float]:
            h, w = m.shape[-2:]
            y = (2 * torch.arange(h) + 1) / h - 1
            x = (2 * torch.arange(w) + 1) / w - 1
            total = m.sum()
            return (m[0, 0].sum(0) * x).sum().item() / total.item(), (m[0, 0].sum(1) * y).sum().item() / total.item()

        for got, want in zip(centroid(small), centroid(full)):
            assert got == pytest.approx(want, abs=2 / 224)


def test_resize_map_halving_is_a_triangle_filter():
    """448 -> 224 with antialiasing: each output pixel is a (1, 3, 3, 1) / 8 weighted mean of
    4 input pixels along each axis (triangle of half-width 2 input pixels)."""
    full = torch.rand(1, 1, 448, 448, generator=torch.Generator().manual_seed(6))
    weights = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8
    kernel = (weights[:, None] * weights[None, :])[None, None]
    expected = F.conv2d(full, kernel, stride=2, padding=1)  # interior output pixels
    got = roi.resize_map(full)
    assert torch.allclose(got[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1], atol=1e-5)
    assert math.isclose(got.mean().item(), full.mean().item(), rel_tol=0.01)


# --- device agnosticism ------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_geometry_runs_on_cuda_and_matches_cpu():
    image = _linear_image(200, 300, 0.001, 0.002, 0.1)[None, None]
    box = _boxes((100.0, 50.0, 150.0))
    cpu = roi.paste(roi.crop(image, box), box, (200, 300))
    cuda = roi.paste(roi.crop(image.cuda(), box.cuda()), box.cuda(), (200, 300))
    assert cuda.device.type == "cuda"
    assert torch.allclose(cuda.cpu(), cpu, atol=1e-5)
