"""Hooks of the trainable example space ``conf/experiment/digits_cnn.yaml``: a small CNN whose
depth, widths and activations are genes, trained on the bundled digits.

Every hook gets the architecture as a dict ``{gene name: choice}`` (numbers stay numbers).
"""

from __future__ import annotations

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def layers(arch: dict) -> list[tuple[int, str]]:
    """(width, activation) of each layer the network uses (the first ``depth``)."""
    return [(arch[f"width{i}"], arch[f"act{i}"]) for i in range(1, arch["depth"] + 1)]


def valid(arch: dict) -> bool:
    """Widths never shrink from one used layer to the next."""
    widths = [w for w, _ in layers(arch)]
    return all(a <= b for a, b in zip(widths, widths[1:]))


def canonical(arch: dict) -> dict:
    """Genes of the layers past ``depth`` do not change the network: set them to their first
    choice, so that ``loop.dedup=isomorphic`` trains each network once."""
    out = dict(arch)
    for i in range(arch["depth"] + 1, 4):
        out[f"width{i}"], out[f"act{i}"] = 8, "relu"
    return out


class DigitsCNN(nn.Module):
    """``depth`` blocks of conv 3x3 -> BatchNorm -> activation, global pooling, a linear classifier.

    The blocks are an ``nn.ModuleList``, so weight inheritance (``evaluator.inherit_weights``)
    copies a block from the parent exactly when the block is the same.
    """

    def __init__(self, arch: dict, in_channels: int, num_classes: int) -> None:
        super().__init__()
        blocks, c = [], in_channels
        for width, act in layers(arch):
            blocks.append(nn.Sequential(nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                        ACTIVATIONS[act]()))
            c = width
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.classifier(self.pool(x).flatten(1))


def build(arch: dict, in_channels: int, num_classes: int) -> nn.Module:
    return DigitsCNN(arch, in_channels, num_classes)
