"""The peephole ConvLSTM against Eq. 1 computed by hand with numpy loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tracker.convlstm import ConvLSTM, ConvLSTMCell, detach_state

GATES = ("i", "f", "c", "o")


def _conv_same(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross-correlation with zero 'same' padding by explicit loops: x [Cin,H,W], w [Cout,Cin,k,k]."""
    cout, cin, k, _ = w.shape
    pad = k // 2
    _, height, width = x.shape
    xp = np.zeros((cin, height + 2 * pad, width + 2 * pad))
    xp[:, pad:pad + height, pad:pad + width] = x
    out = np.zeros((cout, height, width))
    for o in range(cout):
        for y in range(height):
            for z in range(width):
                out[o, y, z] = b[o] + np.sum(w[o] * xp[:, y:y + k, z:z + k])
    return out


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def _eq1_step(x, h, c, wx, wh, b, wci, wcf, wco):
    """Eq. 1 of the paper, one sample, each term written out."""
    zero = np.zeros_like(b["i"])
    conv = {g: _conv_same(x, wx[g], b[g]) + _conv_same(h, wh[g], zero) for g in GATES}
    i = _sigmoid(conv["i"] + wci * c)
    f = _sigmoid(conv["f"] + wcf * c)
    c_new = f * c + i * np.tanh(conv["c"])
    o = _sigmoid(conv["o"] + wco * c_new)  # W_co o C_t: the *new* cell state
    return o * np.tanh(c_new), c_new


def test_cell_matches_eq1_by_hand_over_three_steps():
    rng = np.random.default_rng(0)
    cin, ch, height, width, k, batch = 2, 3, 5, 4, 3, 2
    wx = {g: rng.normal(0, 0.4, (ch, cin, k, k)) for g in GATES}
    wh = {g: rng.normal(0, 0.4, (ch, ch, k, k)) for g in GATES}
    b = {g: rng.normal(0, 0.3, ch) for g in GATES}
    wci, wcf, wco = (rng.normal(0, 0.5, (ch, height, width)) for _ in range(3))

    cell = ConvLSTMCell(cin, ch, (height, width), kernel_size=k).double()
    # Documented layout: one conv over concat(X, H); output blocks in gate order (i, f, c, o).
    weight = np.concatenate([np.concatenate([wx[g], wh[g]], axis=1) for g in GATES], axis=0)
    with torch.no_grad():
        cell.conv.weight.copy_(torch.from_numpy(weight))
        cell.conv.bias.copy_(torch.from_numpy(np.concatenate([b[g] for g in GATES])))
        cell.w_ci.copy_(torch.from_numpy(wci))
        cell.w_cf.copy_(torch.from_numpy(wcf))
        cell.w_co.copy_(torch.from_numpy(wco))

    xs = rng.normal(0, 1, (3, batch, cin, height, width))
    h = rng.normal(0, 0.5, (batch, ch, height, width))
    c = rng.normal(0, 1.0, (batch, ch, height, width))
    state = (torch.from_numpy(h), torch.from_numpy(c))
    for x in xs:
        with torch.no_grad():
            state = cell(torch.from_numpy(x), state)
        h, c = zip(*(_eq1_step(x[n], h[n], c[n], wx, wh, b, wci, wcf, wco) for n in range(batch)))
        h, c = np.stack(h), np.stack(c)
        np.testing.assert_allclose(state[0].numpy(), h, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(state[1].numpy(), c, rtol=1e-10, atol=1e-12)


def test_peephole_is_a_per_position_hadamard_product():
    # A W_co that is non-zero at one position only changes H_t at that position only.
    torch.manual_seed(0)
    cell = ConvLSTMCell(2, 3, (5, 6))
    x = torch.randn(1, 2, 5, 6)
    state = (torch.randn(1, 3, 5, 6), torch.randn(1, 3, 5, 6))
    h_plain, c_plain = cell(x, state)
    with torch.no_grad():
        cell.w_co[1, 2, 4] = 3.0
    h_peep, c_peep = cell(x, state)
    changed = (h_peep - h_plain).abs() > 0
    assert changed.sum() == 1 and changed[0, 1, 2, 4]
    assert torch.equal(c_peep, c_plain)  # the output peephole cannot touch C_t
    assert cell.w_ci.shape == cell.w_cf.shape == cell.w_co.shape == (3, 5, 6)


def test_stack_chains_the_cells_and_returns_the_last_hidden_state():
    torch.manual_seed(1)
    stack = ConvLSTM(4, [3, 2], spatial_size=6, kernel_size=3)
    with torch.no_grad():
        for cell in stack.cells:
            for p in (cell.w_ci, cell.w_cf, cell.w_co):
                p.normal_()
    x = torch.randn(2, 4, 6, 6)
    state = tuple((torch.randn(2, c, 6, 6), torch.randn(2, c, 6, 6)) for c in (3, 2))
    out, new_state = stack(x, state)
    h1, c1 = stack.cells[0](x, state[0])
    h2, c2 = stack.cells[1](h1, state[1])
    assert torch.equal(out, h2)
    for got, want in zip((t for pair in new_state for t in pair), (h1, c1, h2, c2)):
        assert torch.equal(got, want)
    assert stack.hidden_channels == (3, 2)


def test_zero_state_and_forget_bias():
    stack = ConvLSTM(4, [3, 2], spatial_size=(5, 7))
    state = stack.zero_state(2, dtype=torch.float64)
    assert [tuple(t.shape) for pair in state for t in pair] == [(2, 3, 5, 7)] * 2 + [(2, 2, 5, 7)] * 2
    assert all(t.dtype == torch.float64 and not t.any() for pair in state for t in pair)
    bias = stack.cells[0].conv.bias.detach()
    assert torch.all(bias[3:6] == 1.0)  # forget-gate block starts open


def test_wrong_spatial_size_and_state_length_are_refused():
    stack = ConvLSTM(2, [3, 3], spatial_size=4)
    with pytest.raises(ValueError, match="built for 4x4"):
        stack(torch.zeros(1, 2, 5, 5), stack.zero_state(1))
    with pytest.raises(ValueError, match="2 layers"):
        stack(torch.zeros(1, 2, 4, 4), stack.zero_state(1)[:1])
    with pytest.raises(ValueError, match="odd"):
        ConvLSTMCell(2, 3, 4, kernel_size=2)


def test_detach_state_cuts_the_graph():
    cell = ConvLSTMCell(1, 2, 3)
    h, c = cell(torch.randn(1, 1, 3, 3), cell.zero_state(1))
    assert h.requires_grad
    (dh, dc), = detach_state(((h, c),))
    assert not dh.requires_grad and not dc.requires_grad and torch.equal(dh, h)
