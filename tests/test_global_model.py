"""The global attention model: Table 1 shapes, theta bounds and initial box, gradients, history."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tracker.config import GlobalConfig, get_config
from tracker.global_model import GlobalModel

SMALL = GlobalConfig(input_size=64, conv_channels=(4, 4, 6, 8), lstm_channels=(5, 6), fc_channels=16)


def _maps(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    maps = torch.zeros(batch, 1, size, size)
    for n in range(batch):
        y, x = torch.randint(0, size - size // 4, (2,), generator=gen).tolist()
        maps[n, :, y:y + size // 4, x:x + size // 5] = 1
    return maps


def test_paper_configuration_matches_table_1():
    with torch.device("meta"):
        model = GlobalModel(get_config("paper").global_)
        convs = [tuple(m.weight.shape) for m in model.encoder if isinstance(m, nn.Conv2d)]
        assert convs == [(8, 1, 3, 3), (8, 8, 3, 3), (16, 8, 3, 3), (16, 16, 3, 3),
                         (32, 16, 3, 3), (32, 32, 3, 3), (64, 32, 3, 3), (64, 64, 3, 3)]
        assert [type(m) for m in model.encoder].count(nn.MaxPool2d) == 4
        assert all(m.padding == (1, 1) for m in model.encoder if isinstance(m, nn.Conv2d))  # 224 -> 14
        assert [tuple(c.conv.weight.shape) for c in model.lstm.cells] == [(4 * 64, 64 + 64, 3, 3)] * 2
        assert all(c.w_co.shape == (64, 14, 14) for c in model.lstm.cells)
        assert tuple(model.fc1.weight.shape) == (1024, 64 * 14 * 14)  # FC 1024 on the vectorised LSTM output
        assert tuple(model.fc2.weight.shape) == (3, 1025)             # 1024 features + the aspect ratio


def test_parameter_count_matches_table_1_by_hand():
    with torch.device("meta"):
        model = GlobalModel(get_config("paper").global_)
    conv = lambda cin, cout: cin * cout * 9 + cout  # noqa: E731
    encoder = sum(conv(a, b) + conv(b, b) for a, b in [(1, 8), (8, 16), (16, 32), (32, 64)])
    lstm = 2 * (conv(64 + 64, 4 * 64) + 3 * 64 * 14 * 14)
    fc = (64 * 14 * 14 * 1024 + 1024) + (1025 * 3 + 3)
    assert sum(p.numel() for p in model.parameters()) == encoder + lstm + fc == 13_588_222


def test_untrained_model_predicts_a_centred_medium_box():
    torch.manual_seed(0)
    config = get_config("lite").global_
    model = GlobalModel(config)
    state = model.initial_state(4)
    with torch.no_grad():
        for t in range(3):
            theta, state = model.step(_maps(4, 224, seed=t), torch.tensor([16 / 9, 4 / 3, 1.0, 0.5]), state)
    assert theta.shape == (4, 3)
    assert theta[:, :2].abs().max() < 0.05
    assert (theta[:, 2] - config.init_scale).abs().max() < 0.02


def test_theta_is_bounded_smoothly():
    model = GlobalModel(SMALL)
    raw = torch.tensor([[0.0, 0.0, 0.0], [50.0, -50.0, 50.0], [-50.0, 50.0, -50.0], [0.3, -0.2, 1.0]])
    theta = model.bound(raw)
    assert theta[0].tolist() == pytest.approx([0.0, 0.0, SMALL.max_scale / 2])
    assert theta[1].tolist() == pytest.approx([SMALL.max_shift, -SMALL.max_shift, SMALL.max_scale])
    assert theta[2, 2] >= 0 and theta[2, 2] < 1e-6
    expected = [SMALL.max_shift * math.tanh(0.3), SMALL.max_shift * math.tanh(-0.2),
                SMALL.max_scale / (1 + math.exp(-1.0))]
    assert theta[3].tolist() == pytest.approx(expected, rel=1e-6)


def test_gradients_reach_every_trainable_parameter():
    torch.manual_seed(1)
    model = GlobalModel(SMALL)
    state = model.initial_state(2)
    loss = 0.0
    for t in range(3):  # C_{t-1} is zero at the first step: the i/f peepholes learn from the second on
        theta, state = model.step(_maps(2, 64, seed=t), torch.tensor([1.5, 0.75]), state)
        loss = loss + (theta * torch.tensor([1.0, -2.0, 3.0])).sum()
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_aspect_ratio_and_history_change_theta():
    torch.manual_seed(2)
    model = GlobalModel(SMALL)
    with torch.no_grad():
        model.fc2.weight.normal_(0, 0.5)
        now = _maps(1, 64, seed=5)
        wide, _ = model.step(now, torch.tensor([2.0]), model.initial_state(1))
        tall, _ = model.step(now, 0.5, model.initial_state(1))  # a float aspect works too
        _, seen = model.step(_maps(1, 64, seed=9), 0.5, model.initial_state(1))
        after_history, _ = model.step(now, 0.5, seen)
    assert (wide - tall).abs().max() > 1e-3
    assert (after_history - tall).abs().max() > 1e-4


def test_bad_inputs_are_refused():
    model = GlobalModel(SMALL)
    with pytest.raises(ValueError, match=r"\[B, 1, 64, 64\]"):
        model.step(torch.zeros(1, 1, 224, 224), 1.0, model.initial_state(1))
    with pytest.raises(ValueError, match=r"aspect must be \[B\] = \[2\]"):
        model.step(torch.zeros(2, 1, 64, 64), torch.ones(3), model.initial_state(2))


@pytest.mark.parametrize("name", ["paper", "lite"])
def test_an_untrained_model_already_sees_where_the_object_is(name):
    # He-normal init (`he_init`): the features FC2 reads differ between a blob at the top left
    # and one at the bottom right by a large fraction of their size. With PyTorch's default
    # init they differed by ~1e-4 of it (the signal fades through the eight ReLU convs and the
    # biases drown it), and Eq. 4 training sat on the plateau of one fixed box.
    torch.manual_seed(0)
    model = GlobalModel(get_config(name).global_)
    maps = torch.zeros(2, 1, 224, 224)
    maps[0, 0, 40:80, 30:70] = 1
    maps[1, 0, 140:180, 150:190] = 1
    with torch.no_grad():
        hidden, _ = model.lstm(model.encoder(maps), model.initial_state(2))
        features = torch.relu(model.fc1(hidden.flatten(1)))
    difference = (features[0] - features[1]).norm() / features.norm(dim=1).mean()
    assert difference > 0.3, float(difference)
