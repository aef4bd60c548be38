from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

State = Tuple[Tensor, Tensor]  # (h, c)


class ConvLSTMCell(nn.Module):
    """One step of a convolutional LSTM (Shi et al., NeurIPS 2015), the cell of
    the paper's eq. 1 ``h_t, c_t = ConvLSTM(h_{t-1}, c_{t-1}, x_t)``.

    The four gates come from a single convolution over ``cat(x_t, h_{t-1})``::

        i, f, o, g = split(conv(cat(x_t, h_{t-1})))
        c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
        h_t = σ(o) ⊙ tanh(c_t)

    No peephole connections. The forget-gate bias starts at
    ``forget_bias`` (1 by default) so that early in training the cell keeps
    its memory rather than forgetting it every frame.

    Args:
        in_channels (int): channels of ``x_t``.
        hidden_channels (int): channels of ``h`` and ``c``.
        kernel_size (int): size of the gate convolution (odd; 'same'
            padding keeps the spatial size).
        forget_bias (float): initial bias of the forget gate.
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: int,
                 kernel_size: int = 3,
                 forget_bias: float = 1.0):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f'ConvLSTMCell: kernel_size must be odd to keep '
                             f'the spatial size, got {kernel_size}')
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.conv = nn.Conv2d(
            in_channels + hidden_channels,
            4 * hidden_channels,
            kernel_size,
            padding=kernel_size // 2)
        with torch.no_grad():
            self.conv.bias.zero_()
            self.conv.bias[hidden_channels:2 * hidden_channels] = forget_bias

    def forward(self, x: Tensor, state: Optional[State] = None) -> State:
        """
        Args:
            x (Tensor): input ``x_t``, shape (N, C_in, H, W).
            state (tuple[Tensor, Tensor], optional): ``(h_{t-1}, c_{t-1})``,
                each (N, C_hidden, H, W). ``None`` is the initial state
                (zeros).

        Returns:
            tuple[Tensor, Tensor]: ``(h_t, c_t)``, each (N, C_hidden, H, W).
        """
        if state is None:
            n, _, height, width = x.shape
            h = c = x.new_zeros(n, self.hidden_channels, height, width)
        else:
            h, c = state
        i, f, o, g = self.conv(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, '
                f'hidden_channels={self.hidden_channels}, '
                f'kernel_size={self.conv.kernel_size[0]}')


class TiedGroupConvLSTMCell(nn.Module):
    """A ConvLSTM applied to G independent groups of channels with one set of
    weights shared by all groups — e.g. one small cell per landmark heatmap.

    Equivalent to running one :class:`ConvLSTMCell` (``in_channels``,
    ``hidden_channels``) on each group as a separate sample, computed as a
    single convolution over the N·G samples ``cat(x_g, h_g)``, so its cost
    grows with G·hidden. The forget-gate
    bias starts at ``forget_bias``.

    Args:
        groups (int): G, e.g. the number of landmarks K.
        in_channels (int): input channels per group.
        hidden_channels (int): channels of ``h`` and ``c`` per group.
        kernel_size (int): odd size of the gate convolution.
        forget_bias (float): initial bias of the forget gate.
        init (str): ``'kaiming'`` (as ``nn.Conv2d``) or ``'ema'``: gates
            start input-independent and the candidate is ``tanh(x/2)`` of
            the input's centre pixel, so every cell state starts as a leaky
            running sum ``c_t = σ(f)·c_{t-1} + ½·tanh(x_t/2)`` of its group's
            input (an unnormalised moving average, decay
            ``sigmoid(forget_bias)``) — a temporal smoother that training
            only has to tune, which it does in a few hundred iterations.
        recurrent_kernel_size (int, optional): kernel of the path from
            ``h_{t-1}`` to the gates (odd, <= ``kernel_size``); ``None`` =
            ``kernel_size``. 1 makes the recurrence per pixel.
    """

    def __init__(self,
                 groups: int,
                 in_channels: int = 1,
                 hidden_channels: int = 2,
                 kernel_size: int = 3,
                 forget_bias: float = 1.0,
                 init: str = 'kaiming',
                 recurrent_kernel_size: Optional[int] = None):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError('TiedGroupConvLSTMCell: kernel_size must be odd '
                             f'to keep the spatial size, got {kernel_size}')
        self.groups = groups
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(
            torch.empty(4 * hidden_channels, in_channels + hidden_channels,
                        kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(4 * hidden_channels))
        hid, mid = hidden_channels, kernel_size // 2
        rk = kernel_size if recurrent_kernel_size is None else \
            recurrent_kernel_size
        if rk % 2 != 1 or rk > kernel_size:
            raise ValueError('TiedGroupConvLSTMCell: recurrent_kernel_size '
                             f'must be odd and <= kernel_size={kernel_size}, '
                             f'got {recurrent_kernel_size}')
        self.recurrent_kernel_size = rk
        # h_{t-1} reaches the gates through the central rk x rk taps only:
        # with rk = 1 the recurrence is per pixel, so the memory cannot
        # diffuse (spread and drift) over long videos
        mask = torch.ones(1, in_channels + hid, kernel_size, kernel_size)
        lo = mid - rk // 2
        mask[:, in_channels:] = 0.
        mask[:, in_channels:, lo:lo + rk, lo:lo + rk] = 1.
        self.register_buffer('recurrent_mask', mask, persistent=False)
        with torch.no_grad():
            self.bias[hid:2 * hid] = forget_bias
            if init == 'kaiming':
                nn.init.kaiming_uniform_(self.weight, a=5**0.5)
            elif init == 'ema':
                self.weight.zero_()
                self.weight[3 * hid:, :in_channels, mid, mid] = 0.5
                self.bias[2 * hid:3 * hid] = 3.  # output gate ~open
            else:
                raise ValueError(f"TiedGroupConvLSTMCell: init must be "
                                 f"'kaiming' or 'ema', got {init!r}")

    def forward(self, x: Tensor, state: Optional[State] = None) -> State:
        """
        Args:
            x (Tensor): (N, G·C_in, H, W), group-major channels.
            state (tuple[Tensor, Tensor], optional): ``(h, c)``, each
                (N, G·C_hidden, H, W); ``None`` is zeros.

        Returns:
            tuple[Tensor, Tensor]: ``(h_t, c_t)``, each (N, G·C_hidden, H, W).
        """
        n, _, height, width = x.shape
        g, hid = self.groups, self.hidden_channels
        if state is None:
            h = c = x.new_zeros(n, g * hid, height, width)
        else:
            h, c = state
        # the G groups as N·G samples of one small convolution: on CPU much
        # faster than a grouped convolution (which oneDNN runs slowly for
        # few channels per group)
        xh = torch.cat([
            x.view(n, g, self.in_channels, height, width),
            h.view(n, g, hid, height, width)
        ], 2).view(n * g, -1, height, width)
        weight = self.weight if self.recurrent_kernel_size == \
            self.kernel_size else self.weight * self.recurrent_mask
        gates = F.conv2d(
            xh, weight, self.bias,
            padding=self.kernel_size // 2).view(n, g, 4, hid, height, width)
        i, f, o = torch.sigmoid(gates[:, :, :3]).unbind(2)
        c = f * c.view(n, g, hid, height, width) + i * torch.tanh(gates[:, :,
                                                                        3])
        h = o * torch.tanh(c)
        return h.reshape(n, g * hid, height, width), \
            c.reshape(n, g * hid, height, width)

    def extra_repr(self) -> str:
        return (f'groups={self.groups}, in_channels={self.in_channels}, '
                f'hidden_channels={self.hidden_channels}, '
                f'kernel_size={self.kernel_size}, recurrent_kernel_size='
                f'{self.recurrent_kernel_size}')


class TiedGroupConv1x1(nn.Module):
    """A 1×1 convolution applied to G channel groups with shared weights:
    (N, G·C_in, H, W) → (N, G·C_out, H, W). Zero-initialised (used as the
    refiner's output layer, so an untrained refiner is the identity)."""

    def __init__(self, groups: int, in_channels: int, out_channels: int):
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(
            torch.zeros(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        n, _, height, width = x.shape
        # a weighted sum of each group's channels (a 1x1 convolution with
        # few channels is slow in oneDNN)
        out = torch.einsum('ngchw,oc->ngohw',
                           x.view(n, self.groups, -1, height, width),
                           self.weight[:, :, 0, 0])
        return (out + self.bias[:, None, None]).view(n, -1, height, width)
