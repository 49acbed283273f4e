"""Peephole convolutional LSTM exactly as the paper's Eq. 1.

    i_t = sigma(W_xi * X_t + W_hi * H_{t-1} + W_ci o C_{t-1} + b_i)
    f_t = sigma(W_xf * X_t + W_hf * H_{t-1} + W_cf o C_{t-1} + b_f)
    C_t = f_t o C_{t-1} + i_t o tanh(W_xc * X_t + W_hc * H_{t-1} + b_c)
    o_t = sigma(W_xo * X_t + W_ho * H_{t-1} + W_co o C_t + b_o)
    H_t = o_t o tanh(C_t)

`*` is a 'same' convolution, `o` the Hadamard product. The peephole weights W_c* have one
value per channel and position ([C, H, W]): the paper credits them with long-term memory and
notes they make the cell position-dependent, so a cell is built for one spatial size.

Layout (tests and converters rely on it): the eight convolutions are one conv over
concat(X, H) -> 4*C channels; output blocks in gate order (i, f, c, o), input channels X then H.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from tracker.winograd import WinogradConv2d

CellState = tuple[Tensor, Tensor]
"""(H, C) of one layer, each [B, C, H, W]."""
LSTMState = tuple[CellState, ...]
"""One (H, C) pair a layer, first layer first: tensors only, so it moves and detaches freely."""


class ConvLSTMCell(nn.Module):
    """One peephole ConvLSTM layer (Eq. 1) for inputs of a fixed spatial size."""

    def __init__(
        self,
        input_channels: int,
        hidden_channels: int,
        spatial_size: int | tuple[int, int],
        kernel_size: int = 3,
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"ConvLSTM kernel_size = {kernel_size}: must be odd ('same' padding)")
        height, width = (spatial_size, spatial_size) if isinstance(spatial_size, int) else spatial_size
        self.input_channels = input_channels
        self.hidden_channels = hidden_channels
        self.spatial_size = (int(height), int(width))
        self.conv = WinogradConv2d(input_channels + hidden_channels, 4 * hidden_channels, kernel_size,
                                   padding=kernel_size // 2)
        # Peepholes start at zero (a plain ConvLSTM) and are learnt; forget bias 1 keeps memory
        # early in training (Jozefowicz et al. 2015).
        self.w_ci = nn.Parameter(torch.zeros(hidden_channels, height, width))
        self.w_cf = nn.Parameter(torch.zeros(hidden_channels, height, width))
        self.w_co = nn.Parameter(torch.zeros(hidden_channels, height, width))
        with torch.no_grad():
            self.conv.bias[hidden_channels:2 * hidden_channels].fill_(forget_bias)

    def zero_state(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> CellState:
        """H = C = 0, the paper's "arbitrary" initialisation (the M-CNN replaces it)."""
        dtype = dtype or self.conv.weight.dtype
        device = device if device is not None else self.conv.weight.device
        h = torch.zeros(batch, self.hidden_channels, *self.spatial_size, device=device, dtype=dtype)
        return h, torch.zeros_like(h)

    def forward(self, x: Tensor, state: CellState) -> CellState:
        """One time step: X_t [B, C_in, H, W] and (H_{t-1}, C_{t-1}) -> (H_t, C_t)."""
        if x.shape[-2:] != self.spatial_size:
            raise ValueError(
                f"ConvLSTMCell built for {self.spatial_size[0]}x{self.spatial_size[1]} inputs "
                f"(its peephole weights are per position), got {tuple(x.shape[-2:])}"
            )
        h_prev, c_prev = state
        gates = self.conv(torch.cat((x, h_prev), dim=1))
        g_i, g_f, g_c, g_o = gates.chunk(4, dim=1)
        i = torch.sigmoid(g_i + self.w_ci * c_prev)
        f = torch.sigmoid(g_f + self.w_cf * c_prev)
        c = f * c_prev + i * torch.tanh(g_c)
        o = torch.sigmoid(g_o + self.w_co * c)
        return o * torch.tanh(c), c


class ConvLSTM(nn.Module):
    """Stacked ConvLSTM cells: layer k's H is layer k+1's X; returns the last layer's H."""

    def __init__(
        self,
        input_channels: int,
        hidden_channels: Sequence[int],
        spatial_size: int | tuple[int, int],
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        if not hidden_channels:
            raise ValueError("ConvLSTM needs at least one layer (hidden_channels is empty)")
        widths = [input_channels, *hidden_channels]
        self.cells = nn.ModuleList(
            ConvLSTMCell(widths[k], widths[k + 1], spatial_size, kernel_size) for k in range(len(hidden_channels))
        )

    @property
    def hidden_channels(self) -> tuple[int, ...]:
        return tuple(cell.hidden_channels for cell in self.cells)

    def zero_state(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> LSTMState:
        return tuple(cell.zero_state(batch, device, dtype) for cell in self.cells)

    def forward(self, x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        """One time step through every layer -> (H of the last layer, new state)."""
        if len(state) != len(self.cells):
            raise ValueError(f"ConvLSTM state has {len(state)} (h, c) pairs; the module has {len(self.cells)} layers")
        new_state = []
        for cell, layer_state in zip(self.cells, state):
            x, c = cell(x, layer_state)
            new_state.append((x, c))
        return x, tuple(new_state)


def detach_state(state: LSTMState) -> LSTMState:
    """The same state cut from the graph (truncated back-propagation through time)."""
    return tuple((h.detach(), c.detach()) for h, c in state)
