"""Training batches: synthetic scenes plus a mosaic of word crops for the recognizer.

A batch is a pure function of (seed, step, level schedule), so training is reproducible and a
resumed run sees the same data it would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..data.charset import normalize_text
from ..data.readers import read_word_crops
from ..data.scenes import SceneSampler, read_scene_set, split_scenes, validation_crops
from ..data.synth import SynthGenerator, cached_image
from .config import parse_curriculum  # noqa: F401  (re-exported for the loop and tests)


def level_at(curriculum: list[tuple[int, int]], step: int) -> int:
    level = 0
    for s, lv in curriculum:
        if step >= s:
            level = lv
    return level


@dataclass
class Batch:
    images: torch.Tensor            # (B+M, 3, H, W): B scenes then M mosaics
    boxes: list[torch.Tensor]       # per image (n,4) word boxes
    texts: list[list[str]]          # per image labels ('' = not readable: detection only)
    num_scenes: int
    ignore: list[torch.Tensor] | None = None  # per image (m,4) regions no loss uses (don't care, cut words)

    def ignore_of(self, i: int) -> torch.Tensor | None:
        return self.ignore[i] if self.ignore is not None else None


def degrade_crop(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Training-only variety for a real word crop: low resolution, blur, contrast, noise.

    ICDAR 2015's words are often 10-20 px tall and blurred by motion; the training crops are
    pasted at 20-44 px rows, so without this the recognizer mostly sees them sharper than the
    words it has to read. Each change is drawn independently; the crop keeps its size.
    """
    h, w = img.shape[:2]
    out = img
    if rng.random() < 0.5:  # resolution: down to 8-20 px tall and back up
        th = int(rng.integers(8, 21))
        if th < h:
            small = cv2.resize(out, (max(2, round(w * th / h)), th), interpolation=cv2.INTER_AREA)
            out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.25:  # horizontal motion blur, 3-7 px
        k = int(rng.integers(3, 8))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        out = cv2.filter2D(out, -1, kernel)
    if rng.random() < 0.5:  # contrast and brightness
        alpha = float(rng.uniform(0.6, 1.3))
        beta = float(rng.uniform(-30, 30))
        out = cv2.convertScaleAbs(out, alpha=alpha, beta=beta + (1 - alpha) * 128)
    if rng.random() < 0.3:  # sensor noise
        noise = rng.normal(0, float(rng.uniform(3, 12)), out.shape)
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return out


def quad_to_box(quad: np.ndarray) -> list[float]:
    return [float(quad[:, 0].min()), float(quad[:, 1].min()), float(quad[:, 0].max()), float(quad[:, 1].max())]


class BatchMaker:
    """Builds batch `step` of a run; picklable, so a DataLoader worker can run it."""

    def __init__(self, cfg, seed: int, batch: int, mosaics: int, height: int, width: int,
                 curriculum, real_crops_root: str | None, real_fraction: float, max_len: int, charset: str,
                 mosaic_curriculum=None, augment: bool = False, small_text: float = 0.0,
                 real_scenes: int = 0, scene_root: str | None = None, open_text: bool = False,
                 backgrounds_root: str | None = None, paste_share: float = 0.0, punctuation: float = 0.0):
        self.cfg = cfg
        self.seed, self.batch, self.mosaics = seed, batch, mosaics
        self.height, self.width = height, width
        self.curriculum = curriculum
        self.mosaic_curriculum = mosaic_curriculum or curriculum
        self.real_crops_root = real_crops_root
        self.real_fraction = real_fraction
        self.max_len, self.charset = max_len, charset
        self.augment = augment
        self.small_text = small_text
        self.real_scenes = int(real_scenes)
        self.scene_root = scene_root
        self.open_text = open_text
        self.backgrounds_root = backgrounds_root
        if not 0.0 <= paste_share <= 1.0:
            raise ValueError(f"paste share: found {paste_share}, expected a fraction in [0, 1]")
        self.paste_share = paste_share
        self.punctuation = punctuation
        self._scenes: SceneSampler | None = None
        self._gen = None
        self._real: list[tuple[str, str]] | None = None
        self._real_cache: dict[str, np.ndarray] = {}

    def _setup(self):
        if self._gen is None:
            real = []
            records = read_scene_set(self.scene_root) if self.scene_root else []
            crops = read_word_crops(self.real_crops_root) if self.real_crops_root else []
            if crops and records:  # never the words of the held-out validation scenes
                held = validation_crops(records, crops)
                crops = [c for c in crops if c[0] not in held]
            if crops:
                for path, text in crops:
                    label = normalize_text(text, self.charset)
                    # only crops whose transcription is the label up to case and punctuation
                    if text != "###" and 1 <= len(label) < self.max_len and len(label) >= len(text.strip()) - 1:
                        real.append((path, label))
            self._real = real
            text_source, fonts = None, None
            if self.open_text:  # open vocabulary in every font family but the held-out ones
                from ..data.fonts import balanced, find_fonts
                from ..data.words import TextSource

                text_source = TextSource(self.charset, self.max_len, punctuation=self.punctuation)
                fonts = balanced(find_fonts("train"))
            backgrounds = None
            if self.backgrounds_root:
                backgrounds = sorted(str(p) for p in Path(self.backgrounds_root).iterdir()
                                     if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
            self._gen = SynthGenerator(fonts=fonts, real_crops=crops if real else None,
                                       charset=self.charset, augment=self.augment,
                                       small_text=self.small_text if self.augment else 0.0,
                                       text_source=text_source, backgrounds=backgrounds,
                                       big_text=0.25 if (self.augment and self.open_text) else 0.0)
            if self.real_scenes and records:
                train_records, _ = split_scenes(records)
                self._scenes = SceneSampler(train_records, self.charset, self.max_len)

    def _real_crop(self, rng) -> tuple[np.ndarray, str] | None:
        if not self._real:
            return None
        path, label = self._real[int(rng.integers(len(self._real)))]
        img = cached_image(self._real_cache, path)
        return None if img is None else (img, label)

    def mosaic(self, step: int, index: int, level: int):
        """Rows of word crops on a flat canvas -> (image, boxes, texts)."""
        rng = np.random.default_rng([self.seed, step, 1000 + index])
        canvas = np.full((self.height, self.width, 3), rng.integers(0, 256, 3), dtype=np.uint8)
        boxes, texts = [], []
        y = int(rng.integers(0, 6))
        while True:
            row_h = int(rng.integers(20, 44))
            if y + row_h > self.height:
                break
            x = int(rng.integers(0, 12))
            while True:
                crop = None
                if rng.random() < self.real_fraction:
                    crop = self._real_crop(rng)
                    if crop is not None and self.augment:
                        crop = (degrade_crop(crop[0], rng), crop[1])
                if crop is None:
                    crop = self._gen.word_crop(int(rng.integers(2**31)), level, height=row_h, max_width=self.width // 2)
                img, label = crop
                scale = row_h / img.shape[0]
                w = max(4, int(round(img.shape[1] * scale)))
                if x + w > self.width:
                    break
                canvas[y : y + row_h, x : x + w] = cv2.resize(img, (w, row_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
                boxes.append([x, y, x + w, y + row_h])
                texts.append(label)
                x += w + int(rng.integers(2, 24))
            y += row_h + int(rng.integers(2, 10))
        return canvas, boxes, texts

    def __call__(self, step: int):
        self._setup()
        top = level_at(self.curriculum, step)
        rng = np.random.default_rng([self.seed, step])
        images, boxes, texts, ignore = [], [], [], []
        for i in range(self.batch):
            if self._scenes is not None and i < self.real_scenes:
                srng = np.random.default_rng([self.seed, step, 2000 + i])
                sample = self._scenes.sample(srng, self.height, self.width)
                image, b, t = sample.image, sample.boxes.tolist(), list(sample.texts)
                if self.paste_share and srng.random() < self.paste_share:  # synthetic words on the real scene
                    taken = np.concatenate([sample.boxes, sample.ignore]) if len(sample.ignore) else sample.boxes
                    image, pasted = self._gen.paste_words(image, taken, int(srng.integers(2**31)),
                                                          int(srng.integers(1, 5)))
                    b += [quad_to_box(w.quad) for w in pasted]
                    t += [w.text for w in pasted]
                images.append(image)
                boxes.append(b)
                texts.append(t)
                ignore.append(sample.ignore)
                continue
            ignore.append(np.zeros((0, 4), np.float32))
            level = top if (top == 0 or rng.random() < 0.6) else int(rng.integers(0, top))
            scene = self._gen.scene(int(rng.integers(2**31)), level, self.height, self.width)
            images.append(scene.image)
            boxes.append([quad_to_box(w.quad) for w in scene.words])
            texts.append([w.text for w in scene.words])
        mosaic_top = level_at(self.mosaic_curriculum, step)
        for m in range(self.mosaics):
            img, b, t = self.mosaic(step, m, int(rng.integers(0, mosaic_top + 1)))
            images.append(img)
            boxes.append(b)
            texts.append(t)
            ignore.append(np.zeros((0, 4), np.float32))
        mean = np.asarray(self.cfg.mean, np.float32)
        std = np.asarray(self.cfg.std, np.float32)
        x = (np.stack(images).astype(np.float32) - mean) / std
        return Batch(
            images=torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
            boxes=[torch.tensor(b, dtype=torch.float32).reshape(-1, 4) for b in boxes],
            texts=texts,
            num_scenes=self.batch,
            ignore=[torch.from_numpy(np.asarray(g, np.float32).reshape(-1, 4)) for g in ignore],
        )
