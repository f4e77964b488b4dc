"""MobileNetV2 with torchvision's ImageNet weights, built in plain torch (no torchvision import).

The module tree mirrors torchvision's (``features.0`` ... ``features.18``, ``classifier``) so hook paths and the
state dict keys match the shipped checkpoint exactly.
"""

from __future__ import annotations

import torch
from torch import nn

# (expansion, output channels, repeats, first stride) per stage, as in the MobileNetV2 paper.
_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _conv_bn_relu6(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = [] if expand == 1 else [_conv_bn_relu6(c_in, hidden, 1)]
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_skip else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        blocks: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, 2)]
        channels = 32
        for expand, c_out, repeats, stride in _STAGES:
            for i in range(repeats):
                blocks.append(InvertedResidual(channels, c_out, stride if i == 0 else 1, expand))
                channels = c_out
        blocks.append(_conv_bn_relu6(channels, 1280, 1))
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(pixel_values).mean(dim=(2, 3)))

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The pooled 1280-d penultimate features."""
        return self.features(pixel_values).mean(dim=(2, 3))
