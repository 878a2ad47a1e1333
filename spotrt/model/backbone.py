"""Convolutional backbones. Both end at stride 8 with `feat_channels` channels, and both expose
their stride-4 features (`layers[:split]`) for the recognizer's finer feature map.

`light` is the shipped default: small enough for interactive speed on a 2-core CPU and on the
smallest Jetson. `vgg16` follows the paper (VGG16 conv1_1..conv4_3, stride 8) and is trained from
scratch here, since no pretrained weights can be downloaded.
"""

from __future__ import annotations

from torch import nn


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class LightBackbone(nn.Sequential):
    split, c4_channels = 2, 32  # layers[:2] end at stride 4 with 32 channels

    def __init__(self, out_channels: int = 128) -> None:
        super().__init__(
            conv_bn(3, 16, stride=2),            # /2
            conv_bn(16, 32, stride=2),           # /4
            conv_bn(32, 64, stride=2),           # /8
            conv_bn(64, 96),
            conv_bn(96, 96, dilation=2),         # wider receptive field for word-long anchors
            conv_bn(96, out_channels, dilation=3),
        )


class VGG16Backbone(nn.Sequential):
    split, c4_channels = 6, 128  # conv1_1..conv2_2 and two pools: stride 4, 128 channels

    def __init__(self, out_channels: int = 128) -> None:
        layers: list[nn.Module] = []
        cin = 3
        for i, (cout, reps) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3))):
            for _ in range(reps):
                layers.append(conv_bn(cin, cout))
                cin = cout
            if i < 3:
                layers.append(nn.MaxPool2d(2, 2))
        layers.append(conv_bn(512, out_channels, k=1))
        super().__init__(*layers)


def build_backbone(name: str, out_channels: int) -> nn.Module:
    if name == "light":
        return LightBackbone(out_channels)
    if name == "vgg16":
        return VGG16Backbone(out_channels)
    raise ValueError(f"backbone: found {name!r}, expected 'light' or 'vgg16'")


class RecognitionFeatures(nn.Module):
    """Stride-4 features for reading: stride-8 features upsampled onto the stride-4 ones (an FPN
    top-down step). Small text spans too few stride-8 columns to be read."""

    def __init__(self, c4_channels: int, c8_channels: int, out_channels: int) -> None:
        super().__init__()
        self.lateral = nn.Conv2d(c4_channels, out_channels, 1)
        self.top = nn.Conv2d(c8_channels, out_channels, 1)
        self.smooth = conv_bn(out_channels, out_channels)

    def forward(self, c4, c8):
        up = nn.functional.interpolate(self.top(c8), size=c4.shape[2:], mode="nearest")
        return self.smooth(self.lateral(c4) + up)
