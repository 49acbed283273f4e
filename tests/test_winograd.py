"""Winograd F(2x2, 3x3): the same convolution as F.conv2d, used only where it is meant to be."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tracker import winograd
from tracker.winograd import WinogradConv2d, filter_transform, winograd_conv3x3


@pytest.mark.parametrize("batch, c_in, c_out, height, width", [
    (1, 16, 8, 14, 14),   # the local model's map size
    (2, 5, 7, 13, 9),     # odd sizes: the last tile row and column are partial
    (3, 4, 6, 1, 1),
    (1, 3, 2, 2, 7),
])
def test_matches_direct_convolution_in_float64(batch, c_in, c_out, height, width) -> None:
    torch.manual_seed(0)
    x = torch.randn(batch, c_in, height, width, dtype=torch.float64)
    weight = torch.randn(c_out, c_in, 3, 3, dtype=torch.float64)
    bias = torch.randn(c_out, dtype=torch.float64)
    expected = F.conv2d(x, weight, bias, padding=1)
    assert torch.allclose(winograd_conv3x3(x, weight, bias), expected, atol=1e-10)
    assert torch.allclose(winograd_conv3x3(x, weight), F.conv2d(x, weight, padding=1), atol=1e-10)


def test_filter_transform_of_a_centre_tap_is_g_outer_g() -> None:
    """U = G g G^T: a filter with one 1 in the middle gives the outer product of G's middle column."""
    weight = torch.zeros(1, 1, 3, 3)
    weight[0, 0, 1, 1] = 1.0
    middle = torch.tensor([0.0, 0.5, -0.5, 0.0])
    assert torch.allclose(filter_transform(weight).view(4, 4), torch.outer(middle, middle))


def test_module_uses_winograd_only_for_cpu_inference_on_wide_small_maps(monkeypatch) -> None:
    torch.manual_seed(0)
    conv = WinogradConv2d(512, 512, 3, padding=1)
    small = torch.randn(1, 512, 14, 14)
    with torch.no_grad():
        assert winograd.applies(small, conv)
        assert not winograd.applies(torch.randn(1, 512, 56, 56), conv)  # backbone-sized maps
        assert not winograd.applies(small.double(), conv.double())
        assert not winograd.applies(torch.randn(1, 8, 14, 14), WinogradConv2d(8, 8, 3, padding=1))
        assert not winograd.applies(small, WinogradConv2d(512, 512, 3, padding=1, stride=2))
        monkeypatch.setenv(winograd.ENV_SWITCH, "0")
        assert not winograd.applies(small, conv)
    assert not winograd.applies(small, conv)  # autograd on: training keeps the direct kernel


def test_module_output_and_gradients_equal_conv2d() -> None:
    torch.manual_seed(0)
    conv = WinogradConv2d(512, 512, 3, padding=1)
    x = torch.randn(1, 512, 14, 14)
    reference = F.conv2d(x.double(), conv.weight.double(), conv.bias.double(), padding=1)
    with torch.no_grad():
        fast = conv(x)
    assert (fast.double() - reference).abs().max() < 1e-4
    x.requires_grad_(True)
    conv(x).sum().backward()  # the direct path: gradients exist as for nn.Conv2d
    assert x.grad is not None and conv.weight.grad is not None
    assert set(conv.state_dict()) == {"weight", "bias"}


def test_cached_filters_follow_weight_updates() -> None:
    """An optimiser step or load_state_dict changes the weights in place: the cache must notice."""
    torch.manual_seed(0)
    conv = WinogradConv2d(512, 512, 3, padding=1)
    x = torch.randn(1, 512, 14, 14)
    with torch.no_grad():
        before = conv(x)
        conv.weight.mul_(2.0)
        conv.bias.zero_()
        after = conv(x)
        expected = F.conv2d(x, conv.weight, padding=1)
    assert (after - expected).abs().max() < 1e-3
    assert not torch.allclose(before, after)


def test_paper_local_model_maps_are_the_same_with_and_without_winograd(monkeypatch) -> None:
    """The paper-width head (where Winograd runs) gives the direct convolution's maps."""
    from tracker.backbone import VGG16Pool4
    from tracker.config import get_config
    from tracker.local_model import LocalModel

    torch.manual_seed(0)
    model = LocalModel(get_config("paper").local, backbone=VGG16Pool4(None)).eval()
    pool4 = torch.rand(1, 512, 14, 14) * 4
    with torch.no_grad():
        state = model.init_memory_from_features(pool4, pool4 * 0.5)
        fast, fast_state = model.step_from_features(pool4, state)
        monkeypatch.setenv(winograd.ENV_SWITCH, "0")
        direct, direct_state = model.step_from_features(pool4, state)
    assert (fast - direct).abs().max() < 1e-5
    assert (fast_state[-1][1] - direct_state[-1][1]).abs().max() < 1e-5
