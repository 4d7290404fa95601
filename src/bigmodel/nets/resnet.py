"""ResNet-18/34/50 from torchvision's residual blocks, adapted for small images.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (https://arxiv.org/abs/1512.03385).
The block layout and parameter names are torchvision's (``conv1``, ``bn1``, ``layer1``..``layer4``, ``fc``);
for 28x28 or 32x32 inputs the ImageNet stem (7x7 stride-2 conv + max-pool, a 4x downsampling) is
replaced by one 3x3 stride-1 conv, as is usual for CIFAR. ``width`` scales every stage, so a narrow
ResNet trains on a CPU (``width=64`` is the standard network).
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

ARCHS: dict[str, tuple[type[BasicBlock | Bottleneck], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}


class ResNet(nn.Module):
    """A torchvision-style ResNet for ``(B, C, H, W)`` images; returns logits ``(B, num_classes)``.

    Args:
        in_channels: input channels (1 for MNIST, 3 for RGB).
        num_classes: output logits.
        arch: ``resnet18``, ``resnet34`` or ``resnet50``.
        width: channels of the first stage (64 in the paper); stages have width x (1, 2, 4, 8)
            (x4 more at the output of a ``resnet50`` bottleneck).
        small_input: 3x3 stride-1 stem without max-pool (for images of about 32x32); ``false`` keeps
            the ImageNet stem (7x7 stride 2 + 3x3 max-pool) for images of about 224x224.
        zero_init_residual: start each residual branch's last BatchNorm at zero, so every block
            starts as the identity (Goyal et al. 2017); trains faster in short runs.

    Raises:
        ValueError: an unknown ``arch`` or a non-positive ``width``.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        arch: str = "resnet18",
        width: int = 64,
        small_input: bool = True,
        zero_init_residual: bool = True,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"arch={arch!r} is not one of {sorted(ARCHS)}.")
        if width < 1:
            raise ValueError(f"width={width} must be >= 1.")
        block, layers = ARCHS[arch]
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.inplanes = width
        for i, n_blocks in enumerate(layers):
            setattr(
                self, f"layer{i + 1}", self._stage(block, width * 2**i, n_blocks, stride=1 if i == 0 else 2)
            )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for m in self.modules():
                last_bn = getattr(m, "bn3", None) if isinstance(m, Bottleneck) else getattr(m, "bn2", None)
                if isinstance(m, BasicBlock | Bottleneck) and last_bn is not None:
                    nn.init.zeros_(last_bn.weight)

    def _stage(
        self, block: type[BasicBlock | Bottleneck], planes: int, n_blocks: int, stride: int
    ) -> nn.Sequential:
        out = planes * block.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            # projection shortcut when the shape changes (option B of the paper)
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )
        blocks = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = out
        blocks += [block(out, planes) for _ in range(n_blocks - 1)]
        return nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))
