"""What every plugin declares: name, namespace, version, typed attributes with ranges, tolerances."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NAMESPACE = "spotrt"


@dataclass(frozen=True)
class IntAttribute:
    """An integer attribute valid in [low, high]."""

    name: str
    low: int
    high: int
    doc: str

    def check(self, value) -> int:
        """`value` as an int, or ValueError naming the attribute, what was found and what was expected."""
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"attribute {self.name}: found {value!r} ({type(value).__name__}), expected an int in [{self.low}, {self.high}]")
        if not self.low <= int(value) <= self.high:
            raise ValueError(f"attribute {self.name}: found {int(value)}, expected an int in [{self.low}, {self.high}]")
        return int(value)


@dataclass(frozen=True)
class PluginSpec:
    """A custom op as TensorRT (name, namespace, version) and ONNX (op type, domain) see it."""

    name: str
    version: str
    attributes: tuple[IntAttribute, ...]
    tolerances: Mapping[str, float]          # dtype name -> absolute tolerance against the reference
    kernel: Path
    namespace: str = NAMESPACE
    inputs: tuple[str, ...] = field(default=())
    outputs: tuple[str, ...] = field(default=())

    def validate(self, attrs: Mapping) -> dict[str, int]:
        """Check a full set of attributes; returns them as plain ints. Raises ValueError naming the bad one."""
        expected = [a.name for a in self.attributes]
        unknown = sorted(set(attrs) - set(expected))
        if unknown:
            raise ValueError(f"{self.name} attributes: found unknown {unknown}, expected only {expected}")
        missing = [n for n in expected if n not in attrs]
        if missing:
            raise ValueError(f"{self.name} attributes: {missing} missing, expected all of {expected}")
        return {a.name: a.check(attrs[a.name]) for a in self.attributes}

    def tolerance(self, dtype) -> float:
        """Absolute tolerance for outputs of `dtype` ('float32', 'float16' or a NumPy dtype)."""
        key = np.dtype(dtype).name
        if key not in self.tolerances:
            raise ValueError(f"{self.name} tolerance: found dtype {key}, expected one of {sorted(self.tolerances)}")
        return self.tolerances[key]

    def kernel_source(self) -> str:
        """The CUDA source of the op's kernel."""
        return self.kernel.read_text(encoding="utf-8")
