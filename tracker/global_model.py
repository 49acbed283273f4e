"""The global attention model (Sec. 4, Table 1): past full-frame maps -> where the object will be.

    x     = previous full-frame map resized to 224x224       [B, 1, 224, 224]
    f     = 4 blocks of (3x3 conv, ReLU) x2 + 2x2 max pool    [B, 64, 14, 14]
    h, st = ConvLSTM x2 (f, st)                               [B, 64, 14, 14]
    v     = ReLU(FC1(flatten(h)))                             [B, 1024]
    theta = bound(FC2(concat(v, gamma)))                      [B, 3] = (tx, ty, s)

The 224x224 input loses the frame's aspect ratio, so gamma = W / H joins the last FC layer.
theta places the anchor square (docs/interfaces.md): box x in [tx - s, tx + s],
y in [ty - s*gamma, ty + s*gamma] in normalised frame coordinates, a square of side s*W pixels.

Bounds (smooth, so gradients never vanish at a hard clip):
    tx, ty = max_shift * tanh(.)     (-1.5, 1.5): the centre may leave the frame a little
    s      = max_scale * sigmoid(.)  (0, 2): up to a box twice the frame width; tall frames
                                     (gamma < 1) need s up to 1/gamma to cover their height
FC2 starts with small weights and a bias giving (0, 0, init_scale): an untrained model
predicts a centred box of side init_scale * W whatever it sees.

The encoder's convs and FC1 start He-normal with zero biases (`he_init`; the paper gives no
initialisation). With PyTorch's default (each ReLU conv keeps about a third of its input's
variance, biases of the same order) a sparse map's signal fades through the eight convs until
the biases drown it: FC2 then sees features that hardly depend on where the object is, and
training sits on the plateau of one fixed box (fold 0: 1200 Eq. 4 iterations at ratio 1.00,
docs/training.md). He-normal keeps the variance through ReLU layers, so position reaches FC2
from the first iteration.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tracker.config import GlobalConfig
from tracker.convlstm import ConvLSTM, LSTMState

GlobalState = LSTMState
"""One (h, c) pair a ConvLSTM layer, each [B, C, 14, 14]; tensors only."""

FC2_INIT_BOUND = 2e-3
"""FC2 weights start in U(-b, b): small enough for the initial box, non-zero so gradients flow."""


def he_init(module: nn.Module) -> None:
    """He-normal weights (fan in, ReLU gain) and zero biases for every conv and linear layer of `module`."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class GlobalModel(nn.Module):
    """theta_t = tau(Z_{0:t-1}): one step a frame, the ConvLSTM carrying the motion history."""

    def __init__(self, config: GlobalConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or GlobalConfig()
        k = config.conv_kernel
        layers: list[nn.Module] = []
        channels = 1
        for width in config.conv_channels:
            for _ in range(config.convs_per_block):
                layers += [nn.Conv2d(channels, width, k, padding=k // 2), nn.ReLU(inplace=True)]
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.encoder = nn.Sequential(*layers)
        he_init(self.encoder)
        # Channels-last weights make oneDNN run the whole encoder channels-last: on a CPU the
        # narrow 224x224 convolutions and poolings take 40% less time that way (issue 8).
        self.encoder.to(memory_format=torch.channels_last)
        self.lstm = ConvLSTM(channels, config.lstm_channels, config.feature_size, config.conv_kernel)
        self.fc1 = nn.Linear(config.lstm_channels[-1] * config.feature_size ** 2, config.fc_channels)
        self.fc2 = nn.Linear(config.fc_channels + 1, 3)
        he_init(self.fc1)
        with torch.no_grad():
            self.fc2.weight.uniform_(-FC2_INIT_BOUND, FC2_INIT_BOUND)
            ratio = config.init_scale / config.max_scale
            self.fc2.bias.copy_(torch.tensor([0.0, 0.0, math.log(ratio / (1.0 - ratio))]))

    def initial_state(self, batch: int, device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None) -> GlobalState:
        """Zero memory: the model has seen nothing yet."""
        return self.lstm.zero_state(batch, device, dtype)

    def step_raw(self, prev_map: Tensor, aspect: Tensor | float, state: GlobalState) -> tuple[Tensor, GlobalState]:
        """Like `step`, but returns FC2's unbounded output (for losses or analysis)."""
        size = self.config.input_size
        if prev_map.dim() != 4 or tuple(prev_map.shape[1:]) != (1, size, size):
            raise ValueError(f"GlobalModel expects the previous map resized to [B, 1, {size}, {size}], "
                             f"got {tuple(prev_map.shape)}")
        batch = prev_map.shape[0]
        if isinstance(aspect, Tensor):
            if aspect.shape not in ((batch,), (batch, 1), ()):
                raise ValueError(
                    f"GlobalModel aspect must be [B] = [{batch}] (W / H per frame), got {tuple(aspect.shape)}"
                )
            gamma = aspect.to(prev_map.dtype).reshape(-1, 1).expand(batch, 1)
        else:
            gamma = torch.full((batch, 1), float(aspect), dtype=prev_map.dtype, device=prev_map.device)
        hidden, state = self.lstm(self.encoder(prev_map), state)
        features = torch.relu(self.fc1(hidden.flatten(1)))
        return self.fc2(torch.cat((features, gamma), dim=1)), state

    def step(self, prev_map: Tensor, aspect: Tensor | float, state: GlobalState) -> tuple[Tensor, GlobalState]:
        """prev_map [B, 1, 224, 224] in [0, 1], aspect [B] = W / H -> (theta [B, 3], new state)."""
        raw, state = self.step_raw(prev_map, aspect, state)
        return self.bound(raw.float()), state  # fp32 theta even under bf16 / fp16 autocast

    def bound(self, raw: Tensor) -> Tensor:
        """FC2 output [B, 3] -> theta (tx, ty, s) within the configured bounds."""
        shift = self.config.max_shift * torch.tanh(raw[:, :2])
        scale = self.config.max_scale * torch.sigmoid(raw[:, 2:])
        return torch.cat((shift, scale), dim=1)
