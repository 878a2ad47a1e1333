"""Quantization-aware fine-tuning (`spotrt train --qat`): the layers `spotrt calibrate` quantizes see
their INT8 rounding while they train, so the INT8 graph reads what the float graph reads.

Why: a quantized graph changes the reading of crops the model is unsure of. With stage 12, one INT8
layer alone (the first convolution) changes 2.8 % of 400 synthetic crops, all 14 layers 9.8 %
(`benchmarks/int8_read_parity.py`; calibration/README.md); keeping more layers in float cannot reach
issue 17's 99 %. Fine-tuning with the rounding in the forward pass (straight-through gradients) moves
the weights to where it does not matter.

What is simulated is what calibration/qdq.py inserts, layer for layer (a test keeps the two lists
equal): every Conv2d except the proposal heads, and the Linear layers of the region encoder; weights
per output channel (symmetric int8, the range of each channel), each layer's input per tensor, and
each convolution's output per tensor. A BatchNorm after a convolution is folded into it in the
exported graph, so the weight that is rounded is the folded one (W * gamma / sqrt(var + eps)); those
BatchNorms are frozen (running statistics, eval mode) while QAT is on, as in the deployed graph.
Activation ranges follow an exponential average of each batch's absolute maximum (momentum 0.99): a
little wider than the 99.999th percentile `spotrt calibrate` chooses later, so training sees at least
the rounding the engine will.

The layer rule and INT8_MAX repeat calibration/qdq.py's because train/ may not import calibration/
(tests/test_import_rules.py); tests/test_qat.py checks both against an exported graph.

Nothing of this is in the weights file: the hooks live on the model in memory, checkpoints hold plain
float weights that export and calibrate as before.
"""

from __future__ import annotations

import re
import types

import torch
import torch.nn.functional as F

INT8_MAX = 127  # symmetric, zero point 0 (calibration/qdq.py)
KEEP_FLOAT = re.compile(r"^tpn\.(cls|reg|level_cls\.\d+|level_reg\.\d+)$")  # proposal heads (qdq.KEEP_FLOAT_CONV)
QUANT_LINEAR = re.compile(r"^encoder\.")  # region encoder (qdq.QUANT_MATMUL)
MOMENTUM = 0.99


def quantized_layers(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The (name, module) pairs that INT8 calibration quantizes, in model order."""
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Conv2d) and not KEEP_FLOAT.match(name):
            out.append((name, mod))
        elif isinstance(mod, torch.nn.Linear) and QUANT_LINEAR.match(name):
            out.append((name, mod))
    return out


def _following_batchnorm(model: torch.nn.Module, name: str) -> torch.nn.BatchNorm2d | None:
    """The BatchNorm2d right after `name` in its Sequential (what export folds into it), else None."""
    parent_name, _, index = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if isinstance(parent, torch.nn.Sequential) and index.isdigit() and int(index) + 1 < len(parent):
        nxt = parent[int(index) + 1]
        if isinstance(nxt, torch.nn.BatchNorm2d):
            return nxt
    return None


def fake_quant_weight(weight: torch.Tensor, fold: torch.Tensor | None = None) -> torch.Tensor:
    """`weight` rounded as calibration rounds it: per output channel, symmetric int8 over the channel's
    range. With `fold` (per output channel, the BatchNorm's gamma / sqrt(var + eps)) the folded weight
    weight * fold is rounded and divided back, so conv + BatchNorm computes the rounded folded conv."""
    w = weight.float()
    shape = (-1,) + (1,) * (w.dim() - 1)
    if fold is not None:
        w = w * fold.reshape(shape)
    amax = w.detach().abs().amax(dim=tuple(range(1, w.dim())))
    scale = torch.where(amax > 0, amax / INT8_MAX, torch.ones_like(amax))
    q = torch.fake_quantize_per_channel_affine(w, scale, torch.zeros_like(scale, dtype=torch.int32), 0,
                                                -INT8_MAX, INT8_MAX)
    return q / fold.reshape(shape) if fold is not None else q


class _Range:
    """One activation's clipping range: the running average of batch absolute maxima."""

    def __init__(self) -> None:
        self.amax: float | None = None

    def __call__(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        if training or self.amax is None:
            m = float(x.detach().abs().max())
            self.amax = m if self.amax is None else MOMENTUM * self.amax + (1 - MOMENTUM) * m
        if self.amax <= 0:
            return x
        y = torch.fake_quantize_per_tensor_affine(x.float(), self.amax / INT8_MAX, 0, -INT8_MAX, INT8_MAX)
        return y.to(x.dtype)


class QAT:
    """The hooks of quantization-aware training on one model; `attach` puts them on, `detach` takes
    them off (the model is then the plain float model again)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.layers = quantized_layers(model)
        self.ranges: dict[str, _Range] = {}
        self._handles: list = []
        self._frozen: list[torch.nn.BatchNorm2d] = []

    def attach(self) -> "QAT":
        for name, mod in self.layers:
            bn = _following_batchnorm(self.model, name)
            inp = self.ranges.setdefault(name + ":in", _Range())
            self._handles.append(mod.register_forward_pre_hook(
                lambda m, args, r=inp: (r(args[0], m.training),) + tuple(args[1:])))
            if isinstance(mod, torch.nn.Conv2d):
                # the Conv's output is quantized too (after its folded BatchNorm), as qdq.py does
                out = self.ranges.setdefault(name + ":out", _Range())
                self._handles.append((bn if bn is not None else mod).register_forward_hook(
                    lambda m, args, y, r=out, owner=mod: r(y, owner.training)))
                mod.forward = types.MethodType(_conv_forward(bn), mod)
            else:
                mod.forward = types.MethodType(_linear_forward, mod)
            if bn is not None:
                bn.eval()
                bn.train = types.MethodType(lambda self, mode=True: self, bn)  # stays frozen under model.train()
                self._frozen.append(bn)
        return self

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        for _, mod in self.layers:
            mod.__dict__.pop("forward", None)
        for bn in self._frozen:
            bn.__dict__.pop("train", None)
        self._frozen.clear()


def _conv_forward(bn: torch.nn.BatchNorm2d | None):
    def forward(self, x):
        fold = None
        if bn is not None:
            fold = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
        return self._conv_forward(x, fake_quant_weight(self.weight, fold).to(self.weight.dtype), self.bias)
    return forward


def _linear_forward(self, x):
    return F.linear(x, fake_quant_weight(self.weight).to(self.weight.dtype), self.bias)
