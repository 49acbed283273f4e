"""T(theta)(Z_A): the rendered anchor box against the analytic box of docs/interfaces.md."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tracker.anchor import anchor_box, render_anchor


def _clipped_length(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    return (hi.clamp(-1, 1) - lo.clamp(-1, 1)).clamp(min=0)


def test_rendered_area_equals_the_analytic_box():
    gen = torch.Generator().manual_seed(0)
    theta = torch.cat((torch.rand(64, 2, generator=gen) * 2.4 - 1.2, torch.rand(64, 1, generator=gen) * 0.6 + 0.01), 1)
    gamma = torch.rand(64, generator=gen) * 2.5 + 0.4
    maps = render_anchor(theta.double(), gamma.double(), size=224)
    x0, x1, y0, y1 = anchor_box(theta.double(), gamma.double()).unbind(1)
    # Normalised units: a pixel is 2/224 wide; boxes partly outside the map are clipped.
    want = _clipped_length(x0, x1) * _clipped_length(y0, y1) * (224 / 2) ** 2
    torch.testing.assert_close(maps.sum(dim=(1, 2, 3)), want, rtol=1e-9, atol=1e-9)
    assert maps.min() >= 0 and maps.max() <= 1


def test_rendered_extent_follows_the_convention():
    # theta = (0.25, -0.5, 0.25), gamma = 2 on a 16x16 map: x in [0, 0.5], y in [-1, 0]
    # -> columns 8..11 and rows 0..7 fully inside, nothing else.
    theta = torch.tensor([[0.25, -0.5, 0.25]])
    got = render_anchor(theta, torch.tensor([2.0]), size=16)[0, 0]
    want = torch.zeros(16, 16)
    want[0:8, 8:12] = 1
    assert torch.equal(got, want)
    # An edge halfway through a pixel covers half of it.
    half = render_anchor(torch.tensor([[1 / 16, 0.0, 0.5]]), 1.0, size=16)[0, 0]
    assert half[8, 4].item() == pytest.approx(0.5) and half[8, 12].item() == pytest.approx(0.5)
    assert half[8, 5:12].eq(1).all() and half[8, :4].eq(0).all()


@pytest.mark.parametrize("height, width", [(180, 320), (300, 120)])
def test_box_is_a_square_in_pixels_of_a_non_square_frame(height, width):
    gamma = width / height
    theta = torch.tensor([[0.1, -0.05, 0.3 if width > height else 0.6]])
    # Rendered directly at the frame's size: as many pixels wide as tall, side s * W.
    frame = render_anchor(theta, gamma, size=(height, width))[0, 0]
    side = theta[0, 2].item() * width
    assert frame.sum(dim=1).max().item() == pytest.approx(side, abs=1e-3)  # width in pixels
    assert frame.sum(dim=0).max().item() == pytest.approx(side, abs=1e-3)  # height in pixels
    # On the 224x224 map that stands for the frame, the box maps back to the same square.
    square = render_anchor(theta, gamma, size=224)[0, 0]
    width_px = square.sum(dim=1).max() * width / 224
    height_px = square.sum(dim=0).max() * height / 224
    assert width_px.item() == pytest.approx(side, abs=1e-3)
    assert height_px.item() == pytest.approx(side, abs=1e-3)


def test_gradients_reach_all_three_theta_components():
    theta = torch.tensor([[0.1, -0.2, 0.3], [-0.4, 0.3, 0.2]], requires_grad=True)
    target = torch.zeros(2, 1, 224, 224)
    target[..., 90:150, 120:170] = 1
    loss = ((render_anchor(theta, torch.tensor([1.5, 0.8])) - target) ** 2).mean()
    loss.backward()
    assert torch.all(theta.grad.abs() > 1e-6)
    # Gradient descent on the L2 loss moves the box towards the target.
    with torch.no_grad():
        moved = theta - 20.0 * theta.grad
        after = ((render_anchor(moved, torch.tensor([1.5, 0.8])) - target) ** 2).mean()
    assert after < loss


def test_matches_a_spatial_transformer_on_an_all_ones_anchor():
    """The paper's form: grid_sample of an all-ones anchor; equal away from the box edges."""
    theta = torch.tensor([[0.2, -0.1, 0.35], [-0.5, 0.4, 0.2]])
    gamma = torch.tensor([1.6, 0.7])
    tx, ty, s = theta.unbind(1)
    # affine_grid maps output coordinates to anchor coordinates: u = (x - tx) / s, v = (y - ty) / (s gamma).
    zero = torch.zeros_like(s)
    inverse = torch.stack((torch.stack((1 / s, zero, -tx / s), 1),
                           torch.stack((zero, 1 / (s * gamma), -ty / (s * gamma)), 1)), 1)
    grid = F.affine_grid(inverse, [2, 1, 224, 224], align_corners=False)
    stn = F.grid_sample(torch.ones(2, 1, 256, 256), grid, padding_mode="zeros", align_corners=False)
    ours = render_anchor(theta, gamma)
    interior = (ours == 0) | (ours == 1)
    assert interior.float().mean() > 0.97
    assert torch.equal((stn[interior] > 0.5), ours[interior] > 0.5)
    torch.testing.assert_close(stn.sum(dim=(1, 2, 3)), ours.sum(dim=(1, 2, 3)), rtol=0.03, atol=0)


def test_softness_blurs_the_edges_but_keeps_the_area():
    theta = torch.tensor([[0.0, 0.1, 0.4]])
    sharp = render_anchor(theta, 1.0, softness=1.0)
    soft = render_anchor(theta, 1.0, softness=9.0)
    torch.testing.assert_close(soft.sum(), sharp.sum(), rtol=1e-5, atol=0)
    ramp = lambda m: ((m > 0) & (m < 1)).sum()  # noqa: E731
    assert ramp(soft) > 4 * ramp(sharp)
    with pytest.raises(ValueError, match="softness"):
        render_anchor(theta, 1.0, softness=0)
    with pytest.raises(ValueError, match=r"theta must be \[B, 3\]"):
        render_anchor(torch.zeros(3), 1.0)
