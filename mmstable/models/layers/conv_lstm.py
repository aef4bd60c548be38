from typing import Optional, Tuple

import torch
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
