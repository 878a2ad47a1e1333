"""What a training run is: its settings, their defaults and their checks, in one place (no torch).

`spotrt train` takes its defaults from `TrainConfig` and calls `TrainConfig.check`; the API's `train`
calls it too, so a bad setting is the same one line either way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import SpotrtError


def parse_curriculum(text: str, what: str = "curriculum") -> list[tuple[int, int]]:
    """'0:0,300:1,1200:2' -> [(0,0),(300,1),(1200,2)]: from step s on, levels up to L are used."""
    out = []
    try:
        for part in text.split(","):
            step, level = part.split(":")
            out.append((int(step), int(level)))
    except ValueError:
        raise ValueError(f"{what}: found {text!r}, expected 'step:level,...' like '0:0,300:1,1200:2'") from None
    out.sort()
    if not out or out[0][0] != 0 or any(lv not in (0, 1, 2) for _, lv in out):
        raise ValueError(f"{what}: found {text!r}, expected to start at step 0 with levels in 0..2")
    return out


def parse_levels(text: str) -> tuple[tuple[float, ...], ...]:
    """'110,176/280,448' -> ((110, 176), (280, 448)): anchor heights of the stride-16, 32, ... levels."""
    try:
        levels = tuple(tuple(float(h) for h in lv.split(",")) for lv in text.split("/"))
    except ValueError:
        raise SpotrtError(f"train --levels: found {text!r}, expected heights like '110,176/280,448'") from None
    if any(h <= 0 for lv in levels for h in lv):
        raise SpotrtError(f"train --levels: found {text!r}, expected positive heights like '110,176/280,448'")
    return levels


# SpotterConfig fields `--arch` may set: the widths and depths of the network (new or --init models).
ARCH_FIELDS = ("feat_channels", "rec_channels", "roi_height", "roi_max_width", "encoder_hidden", "encoder_convs",
               "encoder_channels", "decoder_hidden", "embed_dim", "attn_dim", "max_proposals")


def parse_arch(text: str) -> dict:
    """'encoder_channels=128,decoder_hidden=192' -> {...}: SpotterConfig sizes (integers >= 1; convs >= 0)."""
    out = {}
    for item in (t.strip() for t in text.split(",")):
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in ARCH_FIELDS or not value.strip().isdigit():
            raise SpotrtError(f"train --arch: found {item!r}, expected NAME=INTEGER with NAME one of "
                              f"{', '.join(ARCH_FIELDS)}")
        out[key] = int(value)
        if out[key] < (0 if key == "encoder_convs" else 1):
            raise SpotrtError(f"train --arch: found {item!r}, expected a positive size")
    return out


@dataclass
class TrainConfig:
    out: str
    steps: int = 2400
    batch: int = 6               # scenes per step (synthetic, and `real_scenes` of them real)
    mosaics: int = 1             # word-crop mosaics per step (recognition only)
    height: int = 256
    width: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    curriculum: str = "0:0,250:1,800:2"
    mosaic_curriculum: str | None = None  # levels of the recognizer's word crops (default: curriculum)
    seed: int = 0
    checkpoint_every: int = 100
    device: str = "auto"
    real_crops: str | None = None
    real_fraction: float = 0.3
    augment: bool = True         # training-only variety: SynthGenerator augment + degrade_crop on real crops
    small_text: float = 0.0      # with augment: share of level-2 scene words drawn 8-24 px tall
    rec_per_image: int = 8       # recognition samples per scene
    rec_per_mosaic: int = 32     # recognition samples per word-crop mosaic
    init: str | None = None      # start from these weights (fine-tuning)
    continue_from: str | None = None  # a weights-only checkpoint of this run: go on from its step
    workers: int = 1
    real_scenes: int = 0         # of the `batch` scenes per step, how many are real (ICDAR 2015 training crops)
    scene_root: str | None = None  # ICDAR 2015 training scenes (images/ and gt/); its validation split is never used
    open_text: bool = False      # open vocabulary + random strings instead of the legacy word list
    paste_share: float = 0.0     # share of real scenes that also get synthetic words pasted where no text is
    punctuation: float = 0.0     # with open_text: share of synthetic words shown with unlabelled symbols ("#black")
    label_smoothing: float = 0.0  # of the decoder's cross-entropy
    backgrounds: str | None = None  # folder of photographs behind synthetic words
    bf16: bool = False           # torch.autocast bfloat16 (CPU with AVX-512 BF16 / AMX; CUDA)
    qat: bool = False            # quantization-aware: the INT8 layers train with their rounding (train/qat.py)
    model: dict = field(default_factory=dict)  # SpotterConfig overrides

    def check(self, resume: bool = False) -> "TrainConfig":
        """One SpotrtError line (named by the CLI flag) for the first bad setting; else self."""
        def fail(flag: str, found, expected: str):
            raise SpotrtError(f"train --{flag}: found {found}, expected {expected}")

        for name, least in (("steps", 1), ("batch", 0), ("mosaics", 0), ("rec_per_mosaic", 1),
                            ("rec_per_image", 1), ("checkpoint_every", 1), ("warmup", 0), ("workers", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < least:
                fail(name.replace("_", "-"), value, f"an integer >= {least}")
        if self.batch + self.mosaics == 0:
            raise SpotrtError("train --batch/--mosaics: found 0 and 0, expected at least one scene or mosaic per step")
        if not self.lr > 0:
            fail("lr", self.lr, "a positive learning rate")
        for name in ("real_fraction", "small_text", "punctuation"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                fail(name.replace("_", "-"), getattr(self, name), "a fraction in [0, 1]")
        for name in ("paste_share", "label_smoothing"):
            if not 0.0 <= getattr(self, name) < 1.0:
                fail(name.replace("_", "-"), getattr(self, name), "a fraction in [0, 1)")
        if self.small_text and not self.augment:
            fail("small-text", f"{self.small_text} with --no-augment", "--augment (it is augmentation)")
        if self.punctuation and not self.open_text:
            fail("punctuation", f"{self.punctuation} without --open-text", "--open-text (it decorates that text source)")
        for name in ("height", "width"):
            value = getattr(self, name)
            if value < 32 or value % 32:
                fail("size", f"{self.height}x{self.width}", "HEIGHTxWIDTH with both positive multiples of 32")
        if self.continue_from and (self.init or resume):
            fail("continue-from", "it with --init or --resume", "it alone")
        if not 0 <= self.real_scenes <= self.batch:
            fail("real-scenes", self.real_scenes, f"0..--batch ({self.batch})")
        if self.real_scenes and not self.scene_root:
            fail("real-scenes", "no --scene-root", "the ICDAR 2015 training folder")
        for name in ("scene_root", "backgrounds", "real_crops"):
            path = getattr(self, name)
            if path and not Path(path).is_dir():
                raise SpotrtError(f"train --{name.replace('_', '-')} {path}: found no such folder, expected a directory")
        for name in ("init", "continue_from"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise SpotrtError(f"train --{name.replace('_', '-')} {path}: found no such file, "
                                  "expected a weights file (.safetensors)")
        try:
            parse_curriculum(self.curriculum)
            if self.mosaic_curriculum:
                parse_curriculum(self.mosaic_curriculum, "mosaic-curriculum")
        except ValueError as exc:
            raise SpotrtError(f"train --{exc}") from None
        return self


# Settings that say where a run is and where it started, not how it trains: never taken from a stored run.
_PLACE = ("out", "init", "continue_from")
# The command-line flags that set a TrainConfig field, where they are not the field's own name.
_FLAGS_OF = {"height": ("size",), "width": ("size",),
             "model": ("backbone", "charset", "max_word_len", "encoder_convs", "encoder_bidirectional", "levels",
                       "arch")}


def checkpoint_extra(path) -> dict:
    """What a training checkpoint stores beside its weights (the `extra` metadata: step, run settings);
    {} for weights without it."""
    from ..formats.weights import read_metadata

    extra = read_metadata(path).get("extra")
    return json.loads(extra) if extra else {}


def stored_settings(out: str, resume: bool, continue_from: str | None) -> tuple[dict, str] | None:
    """The settings a run was started with, and where they were read: `out`/state.json for --resume, the
    metadata of a weights-only checkpoint for --continue-from (checkpoints that store them; older ones
    do not). None when there are none (a new run, or an older checkpoint): then the flags are the settings."""
    if resume:
        state = Path(out) / "state.json"
        if state.is_file():
            try:
                train = json.loads(state.read_text())["train"]
                if not isinstance(train, dict):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                raise SpotrtError(f"train --resume: {state}: found no run settings in it, expected the state.json "
                                  "that spotrt train writes") from None
            return train, str(state)
    if continue_from and Path(continue_from).is_file():
        try:
            train = checkpoint_extra(continue_from).get("train")
        except (ValueError, AttributeError):
            train = None
        if isinstance(train, dict):
            return train, continue_from
    return None


def going_on(stored: dict, flagged: TrainConfig, given: set[str]) -> TrainConfig:
    """A run that goes on (--resume, --continue-from): its stored settings, except the fields whose flags
    were given on this command line (`given`: argparse dests), which come from `flagged`. Where the run
    is (out, init, continue_from) always comes from `flagged`. Keys the stored run lacks (older runs)
    take the defaults; keys this version does not know are ignored."""
    names = {f.name for f in fields(TrainConfig)}
    merged = {k: v for k, v in stored.items() if k in names}
    for name in names:
        if name in _PLACE or given & set(_FLAGS_OF.get(name, (name,))):
            merged[name] = getattr(flagged, name)
    return TrainConfig(**merged)


def changed_settings(stored: dict, tc: TrainConfig) -> list[str]:
    """'--steps 2400 (the run had 6000)' for each setting of `tc` that is not what the run stored."""
    out, default = [], TrainConfig(out="")
    now = asdict(tc)
    for name, value in now.items():
        if name in _PLACE or name == "width":
            continue
        before = stored.get(name, getattr(default, name))
        if name == "height":  # one flag, --size HxW
            value = f"{tc.height}x{tc.width}"
            before = f"{before}x{stored.get('width', default.width)}"
        if before != value:
            flag = "/".join(f"--{f.replace('_', '-')}" for f in _FLAGS_OF.get(name, (name,)))
            out.append(f"{flag} {value!r} (the run had {before!r})" if name == "model"
                       else f"{flag} {value} (the run had {before})")
    return out
