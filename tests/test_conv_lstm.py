"""ConvLSTMCell, the cell of eq. 1:
h_t, c_t = ConvLSTM(h_{t-1}, c_{t-1}, x_t)."""
import math

import pytest
import torch

from mmstable.models.layers import ConvLSTMCell


def test_shapes_and_initial_state_is_zeros():
    torch.manual_seed(0)
    cell = ConvLSTMCell(3, 5, kernel_size=3)
    x = torch.randn(2, 3, 7, 9)
    h, c = cell(x)
    assert h.shape == c.shape == (2, 5, 7, 9)
    zeros = torch.zeros(2, 5, 7, 9)
    h0, c0 = cell(x, (zeros, zeros))
    assert torch.equal(h, h0) and torch.equal(c, c0)
    h2, c2 = cell(x, (h, c))
    assert h2.shape == (2, 5, 7, 9) and not torch.equal(h2, h)


def test_hand_computed_step():
    # 1x1 kernel, 1 input and 1 hidden channel: gates (i, f, o, g) are
    # w_x * x + w_h * h + b, each picked by hand.
    cell = ConvLSTMCell(1, 1, kernel_size=1)
    with torch.no_grad():
        cell.conv.weight.copy_(
            torch.tensor([[1., 0.], [0., 1.], [2., 0.], [1., -1.]]).view(
                4, 2, 1, 1))
        cell.conv.bias.copy_(torch.tensor([0., 1., 0., 0.5]))
    x, h_prev, c_prev = 0.5, 0.2, -0.4
    h, c = cell(
        torch.full((1, 1, 1, 1), x),
        (torch.full((1, 1, 1, 1), h_prev), torch.full((1, 1, 1, 1), c_prev)))

    def sig(v):
        return 1 / (1 + math.exp(-v))

    i, f, o, g = sig(x), sig(h_prev + 1), sig(2 * x), math.tanh(x - h_prev +
                                                                  0.5)
    c_expected = f * c_prev + i * g
    h_expected = o * math.tanh(c_expected)
    assert c.item() == pytest.approx(c_expected, abs=1e-6)
    assert h.item() == pytest.approx(h_expected, abs=1e-6)


def test_forget_bias_init():
    cell = ConvLSTMCell(2, 3, forget_bias=1.0)
    bias = cell.conv.bias.detach()
    assert torch.equal(bias[3:6], torch.ones(3))
    assert torch.equal(bias[:3], torch.zeros(3))
    assert torch.equal(bias[6:], torch.zeros(6))


def test_even_kernel_is_rejected():
    with pytest.raises(ValueError, match='odd'):
        ConvLSTMCell(1, 1, kernel_size=2)


def test_gradients_reach_previous_state():
    torch.manual_seed(0)
    cell = ConvLSTMCell(2, 4)
    h0 = torch.randn(1, 4, 5, 5, requires_grad=True)
    c0 = torch.randn(1, 4, 5, 5, requires_grad=True)
    h, c = cell(torch.randn(1, 2, 5, 5), (h0, c0))
    (h.sum() + c.sum()).backward()
    assert h0.grad.abs().sum() > 0 and c0.grad.abs().sum() > 0
