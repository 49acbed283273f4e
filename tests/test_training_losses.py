"""Eq. 2 and Eq. 4 against hand computations, the dilation curriculum, and what box the
global loss trains theta towards."""

from __future__ import annotations

import math

import pytest
import torch

from tracker import roi
from tracker.anchor import render_anchor
from tracker.training.curriculum import DilationSchedule, dilate
from tracker.training.global_trainer import GlobalLossConfig, clip_loss
from tracker.training.losses import global_loss, local_loss, total_variation, weighted_l2

LN2, LN43 = math.log(2.0), math.log(4.0 / 3.0)


def _eq2_clip() -> tuple[torch.Tensor, torch.Tensor]:
    """One clip, T = 2 frames of 2x2 maps (see the test for the hand computation)."""
    logits = torch.tensor([[[0.0, math.log(3.0)], [-math.log(3.0), 0.0]],  # p = .5 .75 / .25 .5
                           [[0.0, 0.0], [0.0, 0.0]]])                     # p = .5 everywhere
    target = torch.tensor([[[1.0, 1.0], [0.0, 0.0]],
                           [[0.0, 0.0], [0.0, 0.0]]])                     # frame 2: an inserted frame
    return logits[None, :, None], target[None, :, None]  # [1, 2, 1, 2, 2]


def test_total_variation_by_hand():
    maps = torch.tensor([[0.5, 0.75], [0.25, 0.5]])
    # vertical |.25 - .5| + |.5 - .75| = .5; horizontal |.75 - .5| + |.5 - .25| = .5
    assert total_variation(maps).item() == pytest.approx(1.0)
    assert total_variation(torch.ones(3, 4, 4)).tolist() == [0.0, 0.0, 0.0]


def test_eq2_sum_by_hand():
    logits, target = _eq2_clip()
    # Frame 1 BCE: -log .5 - log .75 - log(1 - .25) - log(1 - .5) = 2 ln2 + 2 ln(4/3); V = 1.
    # Frame 2 BCE: 4 ln2; V = 0. L = 6 ln2 + 2 ln(4/3); mean V = 0.5.
    data = 6 * LN2 + 2 * LN43
    parts = local_loss(logits, target, lam=0.1, beta=1000.0, reduction="sum")
    assert parts.data.item() == pytest.approx(data, rel=1e-6)
    assert parts.regulariser.item() == pytest.approx(0.1 * 0.5, rel=1e-6)
    assert parts.total.item() == pytest.approx(data + 0.05, rel=1e-6)
    # beta caps the mean total variation: lambda * min(0.2, 0.5) = 0.02.
    capped = local_loss(logits, target, lam=0.1, beta=0.2, reduction="sum")
    assert capped.total.item() == pytest.approx(data + 0.02, rel=1e-6)


def test_eq2_mean_is_the_sum_over_the_pixel_count():
    logits, target = _eq2_clip()
    parts = local_loss(logits, target, lam=0.1, beta=1000.0)  # default: mean
    # 2 frames x 4 pixels: the whole Eq. 2 divided by 8, lambda keeps its relative weight.
    assert parts.total.item() == pytest.approx((6 * LN2 + 2 * LN43 + 0.05) / 8, rel=1e-6)
    assert parts.regulariser.item() == pytest.approx(0.05 / 8, rel=1e-6)
    # A batch averages its clips: a second clip predicted perfectly (BCE ~0) keeps only its
    # total variation, V = 2 (frame 1: two vertical unit steps) and 0: lambda * 1 / 8.
    perfect = torch.where(target > 0, 30.0, -30.0)
    both = local_loss(torch.cat((logits, perfect)), torch.cat((target, target)), lam=0.1, beta=1000.0)
    assert both.total.item() == pytest.approx((parts.total.item() + 0.1 / 8) / 2, rel=1e-6)


def test_eq2_is_finite_for_extreme_logits():
    logits = torch.tensor([[-1e4, 1e4], [80.0, -80.0]]).reshape(1, 1, 1, 2, 2).requires_grad_()
    target = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).reshape(1, 1, 1, 2, 2)
    parts = local_loss(logits, target)
    parts.total.backward()
    assert torch.isfinite(parts.total) and torch.isfinite(logits.grad).all()
    # The two wrong pixels cost ~1e4 each, the two right ones ~0: mean over 4 pixels.
    assert parts.data.item() == pytest.approx(2e4 / 4, rel=1e-3)


def test_eq4_by_hand():
    # T = 3 frames, loss from frame 2: frames 2 and 3 count (positions 1, 2), 2x2 maps.
    theta = torch.tensor([[[0.0, 0.0, 0.5], [0.3, 0.4, 0.5], [0.3, 0.4, 0.62]]])
    rendered = torch.tensor([[[9.0, 9.0], [9.0, 9.0]],   # frame 1: burn-in, ignored
                             [[1.0, 1.0], [0.0, 0.0]],
                             [[0.0, 0.0], [0.0, 0.0]]])[None, :, None]
    target = torch.tensor([[[0.0, 0.0], [0.0, 0.0]],
                           [[1.0, 0.0], [0.0, 0.0]],
                           [[1.0, 1.0], [0.0, 0.0]]])[None, :, None]
    parts = global_loss(theta, rendered, target, object_weight=3.0, lam=0.1, first_frame=2)
    # Frame 2: one background pixel inside the box, weight 1: 1/4. Frame 3: two object pixels
    # missed, weight 3: 6/4. Mean 0.875. Steps: |(.3, .4, 0)| = .5, |(0, 0, .12)| = .12 ->
    # mean .31, times 0.1.
    assert parts.data.item() == pytest.approx(0.875)
    assert parts.regulariser.item() == pytest.approx(0.031)
    assert parts.total.item() == pytest.approx(0.906)
    assert weighted_l2(rendered[0, 2, 0], target[0, 2, 0], 3.0).item() == pytest.approx(1.5)
    with pytest.raises(ValueError, match="first_frame"):
        global_loss(theta, rendered, target, first_frame=1)


def test_eq4_trains_theta_to_the_objects_square_box():
    # Minimising the pixel term (default object weight) over theta alone (no network) lands
    # on a box that encloses the object and is barely larger than its square box, even for
    # 6:1 bars: what the global model learns to output, and what the tracker doubles into
    # the local ROI.
    height, width = 240, 424
    for name, (x0, x1, y0, y1) in {"wide bar": (150, 270, 110, 130), "tall bar": (300, 318, 40, 150)}.items():
        mask = torch.zeros(height, width)
        mask[y0:y1, x0:x1] = 1
        target = roi.resize_map(mask[None, None])[None]  # [1, 1, 1, 224, 224]
        aspect = torch.tensor([width / height])
        box = roi.box_from_mask(mask)
        theta = (roi.box_to_theta(box, (height, width)) + torch.tensor([0.1, -0.1, 0.05])).reshape(1, 1, 3)
        theta = theta.repeat(1, 2, 1).requires_grad_()
        optimiser = torch.optim.Adam([theta], lr=0.005)
        loss = GlobalLossConfig(lam=0.0, first_frame=2)
        for _ in range(250):
            optimiser.zero_grad()
            clip_loss(theta, target.repeat(1, 2, 1, 1, 1), aspect, loss).total.backward()
            optimiser.step()
        fitted = theta.detach()[0, 1]
        drawn = render_anchor(fitted[None], aspect)[0, 0]
        covered = (drawn * target[0, 0, 0]).sum() / target.sum()
        side = roi.theta_to_box(fitted, (height, width))[2]
        assert covered > 0.98, (name, covered)
        assert 0.98 < side / box[2] < 1.15, (name, side / box[2])


def test_dilation_schedule_shrinks_to_final():
    schedule = DilationSchedule(start=9, step=4, every=10)
    assert [schedule.kernel(i) for i in (0, 9, 10, 19, 20, 1000)] == [9, 9, 5, 5, 1, 1]
    assert DilationSchedule(start=8, step=2, every=1).kernel(0) == 9  # even sides round up to odd
    assert DilationSchedule(start=1).kernel(0) == 1
    with pytest.raises(ValueError):
        DilationSchedule(start=0)


def test_dilate_is_a_max_filter():
    maps = torch.zeros(2, 1, 7, 7)
    maps[0, 0, 3, 3] = 1.0
    maps[1, 0, 0, 6] = 0.5
    grown = dilate(maps, 3)
    assert grown[0, 0].sum().item() == 9 and grown[0, 0, 2:5, 2:5].min().item() == 1
    assert grown[1, 0, :2, 5:].tolist() == [[0.5, 0.5], [0.5, 0.5]] and grown[1, 0].sum().item() == 2.0
    assert torch.equal(dilate(maps, 1), maps)
    with pytest.raises(ValueError):
        dilate(maps, 2)
