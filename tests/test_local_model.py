"""The local segmentation model: Table 1 shapes, memory initialisation, gradients, frozen backbone."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from tracker.backbone import VGG16Pool4
from tracker.config import ConfigError, LocalConfig, ModelConfig, get_config
from tracker.local_model import LocalModel, dilate_mask

TINY = LocalConfig(roi_size=32, fcnn_channels=8, mcnn_channels=8, lstm_channels=(4, 6),
                   deconv_channels=(5, 4, 3, 1), mask_dilation=2)


@pytest.fixture(scope="module")
def tiny() -> LocalModel:
    torch.manual_seed(0)
    return LocalModel(TINY, backbone=VGG16Pool4(None))


def _inputs(batch: int = 2, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, size, size, generator=gen) * 255
    masks = torch.zeros(batch, 1, size, size)
    masks[..., size // 4:size // 2, size // 3:size // 2 + 4] = 1
    return images, masks


def test_paper_configuration_matches_table_1():
    with torch.device("meta"):
        model = LocalModel(get_config("paper").local, backbone=VGG16Pool4(None))
        convs = {name: tuple(m.weight.shape) for name, m in model.named_modules()
                 if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))}
        assert convs == {
            "fcnn.0": (512, 512, 3, 3), "fcnn.2": (512, 512, 3, 3),           # F-CNN x2, 3x3, 512
            "mcnn.0": (1024, 1024, 3, 3), "mcnn.2": (1024, 1024, 3, 3),       # M-CNN x2, 3x3, 1024
            "lstm.cells.0.conv": (4 * 256, 512 + 256, 3, 3),                   # ConvLSTM x2, 3x3, 256
            "lstm.cells.1.conv": (4 * 256, 256 + 256, 3, 3),
            "decoder.0": (256, 128, 5, 5), "decoder.2": (128, 64, 5, 5),      # Deconv 5x5/2: 128, 64, 32, 1
            "decoder.4": (64, 32, 5, 5), "decoder.6": (32, 1, 5, 5),
        }
        for cell in model.lstm.cells:
            assert cell.w_ci.shape == cell.w_cf.shape == cell.w_co.shape == (256, 14, 14)
    sizes, size = [], 14
    for m in model.decoder:
        if isinstance(m, nn.ConvTranspose2d):  # torch's transposed-conv output size, layer by layer
            assert m.stride == (2, 2)
            size = (size - 1) * m.stride[0] - 2 * m.padding[0] + m.kernel_size[0] + m.output_padding[0]
            sizes.append(size)
    assert sizes == [28, 56, 112, 224]
    # Activations of Table 1: ReLU then tanh in F-CNN and M-CNN, leaky ReLU inside the decoder.
    # (WinogradConv2d is an nn.Conv2d that computes the same convolution faster.)
    kinds = [nn.Conv2d, nn.ReLU, nn.Conv2d, nn.Tanh]
    assert all(isinstance(m, kind) for m, kind in zip(model.fcnn, kinds, strict=True))
    assert all(isinstance(m, kind) for m, kind in zip(model.mcnn, kinds, strict=True))
    assert [type(m) for m in model.decoder][1::2] == [nn.LeakyReLU] * 3
    assert isinstance(model.decoder[-1], nn.ConvTranspose2d)  # sigmoid applied by step()


def test_backbone_stays_out_of_parameters_and_checkpoints(tiny):
    names = [name for name, _ in tiny.named_parameters()]
    assert names and not any(name.startswith("backbone") for name in names)
    keys = tiny.state_dict().keys()
    assert not any(key.startswith("backbone") for key in keys)
    fresh = LocalModel(TINY, backbone=VGG16Pool4(None))
    fresh.load_state_dict(tiny.state_dict(), strict=True)  # a checkpoint round-trips without the backbone
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, tiny.state_dict()[key])
    tiny.train()
    assert tiny.training and not tiny.backbone.training


def test_gradients_reach_every_trainable_parameter_and_never_the_backbone(tiny):
    images, masks = _inputs()
    tiny.zero_grad(set_to_none=True)
    state = tiny.init_memory(images, masks)
    loss = 0.0
    for t in range(2):  # two steps so every peephole sees a non-zero C_{t-1}
        logits, state = tiny.step_logits(images.roll(t, dims=-1), state)
        loss = loss + nn.functional.binary_cross_entropy_with_logits(logits, masks)
    loss.backward()
    for name, parameter in tiny.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    for name, buffer in tiny.backbone.named_buffers():
        assert buffer.grad is None and not buffer.requires_grad, name


def test_memory_initialisation_uses_the_dilated_mask(tiny):
    images, masks = _inputs()
    with torch.no_grad():
        state = tiny.init_memory(images, masks)
        other = torch.zeros_like(masks)
        other[..., 20:28, 4:10] = 1
        changed = tiny.init_memory(images, other)
        # The batched 2B backbone call equals two separate calls, the mask dilated by mask_dilation.
        plain = tiny.features(images)
        masked = tiny.features(images, dilate_mask(masks, TINY.mask_dilation))
        separate = tiny.init_memory_from_features(plain, masked)
        undilated = tiny.init_memory_from_features(plain, tiny.features(images, masks))
    assert [tuple(t.shape) for pair in state for t in pair] == [(2, 4, 2, 2)] * 2 + [(2, 6, 2, 2)] * 2
    for (h, c), (h2, c2) in zip(state, changed):
        assert (h - h2).abs().max() > 1e-3 and (c - c2).abs().max() > 1e-3
    for got, want in zip(state, separate):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert any((a - b).abs().max() > 1e-4 for pair, other_pair in zip(state, undilated)
               for a, b in zip(pair, other_pair))
    assert all(t.abs().max() <= 1 for pair in state for t in pair)  # M-CNN ends in tanh


def test_memory_channels_split_in_h1_c1_h2_c2_order(tiny):
    pool4 = torch.randn(1, 512, 2, 2)
    memory = tiny.mcnn(torch.cat((pool4, pool4 * 0.5), dim=1))
    (h1, c1), (h2, c2) = tiny.init_memory_from_features(pool4, pool4 * 0.5)
    torch.testing.assert_close(torch.cat((h1, c1, h2, c2), dim=1), memory)


def test_step_probabilities_are_the_sigmoid_of_the_logits(tiny):
    images, masks = _inputs(batch=1)
    with torch.no_grad():
        state = tiny.zero_state(1)
        prob, next_state = tiny.step(images, state)
        logits, same_state = tiny.step_logits(images, state)
        from_features, _ = tiny.step_from_features(tiny.features(images), state)
    assert prob.shape == (1, 1, 32, 32)
    torch.testing.assert_close(prob, torch.sigmoid(logits))
    torch.testing.assert_close(from_features, prob)
    assert 0 <= prob.min() and prob.max() <= 1 and prob.std() > 0
    for a, b in zip(next_state, same_state):
        torch.testing.assert_close(a, b)
    for (h, c), width in zip(next_state, TINY.lstm_channels):
        assert h.shape == c.shape == (1, width, 2, 2) and c.abs().sum() > 0


def test_dilation_grows_a_pixel_into_a_square():
    mask = torch.zeros(1, 1, 15, 15)
    mask[..., 7, 7] = 1
    dilated = dilate_mask(mask, 3)
    want = torch.zeros_like(mask)
    want[..., 4:11, 4:11] = 1
    assert torch.equal(dilated, want)
    assert torch.equal(dilate_mask(mask, 0), mask)


def test_bad_shapes_are_refused_with_the_expected_shape(tiny):
    with pytest.raises(ValueError, match=r"ROI images \[B, 3, 32, 32\]"):
        tiny.step(torch.zeros(1, 3, 64, 64), tiny.zero_state(1))
    with pytest.raises(ValueError, match=r"mask must be \[1, 1, 32, 32\]"):
        tiny.init_memory(torch.zeros(1, 3, 32, 32), torch.zeros(1, 32, 32))
    with pytest.raises(ValueError, match=r"pool4 features \[B, 512, 2, 2\]"):
        tiny.step_from_features(torch.zeros(1, 256, 2, 2), tiny.zero_state(1))


def test_parameter_counts_match_table_1_by_hand():
    with torch.device("meta"):
        paper = LocalModel(get_config("paper").local, backbone=VGG16Pool4(None))
        lite = LocalModel(get_config("lite").local, backbone=VGG16Pool4(None))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    peepholes = 3 * 256 * 14 * 14
    want = (2 * conv(512, 512, 3) + conv(1024, 1024, 3) * 2                    # F-CNN, M-CNN
            + conv(512 + 256, 4 * 256, 3) + conv(256 + 256, 4 * 256, 3) + 2 * peepholes  # ConvLSTM x2
            + conv(256, 128, 5) + conv(128, 64, 5) + conv(64, 32, 5) + conv(32, 1, 5))  # decoder
    assert count(paper) == want == 36_771_841
    assert count(lite) < count(paper) / 20


def test_configuration_round_trips_and_refuses_bad_values():
    for name in ("paper", "lite"):
        config = get_config(name)
        data = json.loads(json.dumps(config.to_dict()))  # as stored in a checkpoint
        assert ModelConfig.from_dict(data) == config
        assert data["name"] == name and set(data) == {"name", "local", "global"}
    paper = get_config("paper")
    assert paper.local.memory_channels == 1024 and paper.local.feature_size == 14
    assert paper.global_.feature_size == 14
    with pytest.raises(ConfigError, match=r"unknown keys in model configuration 'local': \['widths'\]"):
        ModelConfig.from_dict({"local": {"widths": 3}})
    with pytest.raises(ConfigError, match=r"local.roi_size = 200"):
        LocalConfig(roi_size=200)
    with pytest.raises(ConfigError, match=r"local.deconv_channels"):
        LocalConfig(deconv_channels=(128, 64, 1))
    with pytest.raises(ConfigError, match=r"local.backbone = 'imagenet'"):
        LocalConfig(backbone="imagenet")
    with pytest.raises(ConfigError, match=r"unknown model configuration 'huge'; known: lite, .*paper, plus"):
        get_config("huge")
