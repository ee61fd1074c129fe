"""Operation tables: op name -> module constructor ``(channels, stride) -> nn.Module``.

Layouts follow the released RENASNet code (github yukang2017/RENAS, eval/nasnet_utils.py and
eval/symbol_renasnet.py) for the RENAS cell and AutoDL-Projects' NAS-Bench-201 ops for the
NAS-Bench-201 cell. Every op maps C channels to C channels.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv -> BatchNorm (the building block of both spaces)."""

    def __init__(self, c_in: int, c_out: int, kernel, stride=1, padding=0) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


class SepConv(nn.Sequential):
    """Stacked separable convolution: twice (ReLU, depthwise k x k, pointwise 1x1, BN).

    Only the first depthwise convolution has the stride, as in NASNet and the RENAS code.
    """

    def __init__(self, c: int, kernel: int, stride: int) -> None:
        pad = kernel // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, stride=stride, padding=pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, stride=1, padding=pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
        )


class Conv1x7x7x1(nn.Sequential):
    """ReLU, 1x7 conv (strided), BN, ReLU, 7x1 conv, BN."""

    def __init__(self, c: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, (1, 7), stride=stride, padding=(0, 3), bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, (7, 1), stride=1, padding=(3, 0), bias=False),
            nn.BatchNorm2d(c),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset strided 1x1 convolutions (NASNet)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv1(x), self.conv2(shifted)], dim=1))


class Zero(nn.Module):
    """The ``none`` op: outputs zeros of the right shape."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


OpFactory = Callable[[int, int], nn.Module]

#: RENAS cell ops, in the index order of the RENAS genotype encoding (op index 0..7).
RENAS_OPS: dict[str, OpFactory] = {
    "sep_conv_3x3": lambda c, s: SepConv(c, 3, s),
    "sep_conv_5x5": lambda c, s: SepConv(c, 5, s),
    "sep_conv_7x7": lambda c, s: SepConv(c, 7, s),
    "avg_pool_3x3": lambda c, s: nn.AvgPool2d(3, stride=s, padding=1, count_include_pad=False),
    "max_pool_3x3": lambda c, s: nn.MaxPool2d(3, stride=s, padding=1),
    "conv_3x3": lambda c, s: ReLUConvBN(c, c, 3, stride=s, padding=1),
    "conv_1x7_7x1": lambda c, s: Conv1x7x7x1(c, s),
    # identity at stride 2 is a 3x3 max pool, as in the released RENASNet code
    "identity": lambda c, s: nn.Identity() if s == 1 else nn.MaxPool2d(3, stride=s, padding=1),
}

#: NAS-Bench-201 ops, in the index order of the benchmark's ``op_codes`` (0..4).
NB201_OPS: dict[str, OpFactory] = {
    "none": lambda c, s: Zero(s),
    "skip_connect": lambda c, s: nn.Identity() if s == 1 else FactorizedReduce(c, c),
    "nor_conv_1x1": lambda c, s: ReLUConvBN(c, c, 1, stride=s, padding=0),
    "nor_conv_3x3": lambda c, s: ReLUConvBN(c, c, 3, stride=s, padding=1),
    "avg_pool_3x3": lambda c, s: nn.AvgPool2d(3, stride=s, padding=1, count_include_pad=False),
}
