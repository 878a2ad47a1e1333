"""Real training scenes: ICDAR 2015 training images with their boxes, and the augmentations that
scene-text detectors train on them with (random scale, crops that keep or cut words cleanly, small
rotations, colour jitter).

Each labelled region comes out as one of: a word (legible, at least `min_inside` of it inside the
crop; `text` is its label when the whole word is inside and its transcription fits the charset,
else '', which makes it a detection-only word) or an ignored region (a `###` don't-care region, or a word the crop cut): neither positive nor
negative for any loss.
"""
from __future__ import annotations

import os
import string
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .charset import DEFAULT_CHARSET, normalize_text
from .readers import read_icdar_gt

# ic15_train is stored at 960x640; the camera's frames (and ic15_dev) are 1280x720.
IC15_FRAME = (1280, 720)
DONT_CARE = "###"


@dataclass
class SceneRecord:
    image: str               # path
    quads: np.ndarray        # (n, 4, 2) float32, in the stored image's pixels
    texts: list[str]         # transcriptions as written; '###' = don't care


@dataclass
class SceneSample:
    image: np.ndarray        # (H, W, 3) uint8 BGR
    boxes: np.ndarray        # (n, 4) words, x1 y1 x2 y2
    texts: list[str]         # labels ('' = detection only)
    ignore: np.ndarray       # (m, 4) regions no loss may use


def _image_number(path: Path) -> int:
    digits = "".join(ch for ch in path.stem if ch.isdigit())
    return int(digits) if digits else 0


def read_scene_set(root) -> list[SceneRecord]:
    """`root/images/img_N.jpg` with `root/gt/gt_img_N.txt`, in image-number order.

    Raises ValueError naming the folder when it has no images or an image has no ground truth.
    """
    root = Path(root)
    img_dir, gt_dir = root / "images", root / "gt"
    if not img_dir.is_dir() or not gt_dir.is_dir():
        raise ValueError(f"scene set {root}: found no images/ and gt/ folders, expected an ICDAR 2015 layout")
    paths = sorted((p for p in img_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")), key=_image_number)
    if not paths:
        raise ValueError(f"scene set {root}: found no images in {img_dir}, expected img_N.jpg files")
    out = []
    for p in paths:
        gt = gt_dir / f"gt_{p.stem}.txt"
        if not gt.is_file():
            raise ValueError(f"scene set {root}: {p.name} has no {gt.name}, expected one gt file per image")
        items = read_icdar_gt(gt)
        quads = np.stack([q for q, _ in items]).astype(np.float32) if items else np.zeros((0, 4, 2), np.float32)
        out.append(SceneRecord(str(p), quads, [t for _, t in items]))
    return out


def split_scenes(records: list[SceneRecord], every: int = 10) -> tuple[list[SceneRecord], list[SceneRecord]]:
    """(train, validation): every `every`-th image by number (img_10, img_20, ...) is validation.

    Fixed, so checkpoints and thresholds are always chosen on the same 100 of the 1,000 images.
    """
    train = [r for r in records if _image_number(Path(r.image)) % every]
    val = [r for r in records if not _image_number(Path(r.image)) % every]
    return train, val


def crop_sources(records: list[SceneRecord], crops: list[tuple[str, str]]) -> list[str] | None:
    """The scene image each word crop of `ic15_train_words` was cut from, or None when the crops do
    not line up with the scenes' legible words (they are numbered in image order, then line order)."""
    legible = [(r.image, t) for r in records for t in r.texts if t.strip() != DONT_CARE]
    if len(legible) != len(crops) or any(t != c for (_, t), (_, c) in zip(legible, crops)):
        return None
    return [img for img, _ in legible]


def validation_crops(records: list[SceneRecord], crops: list[tuple[str, str]], every: int = 10) -> set[str]:
    """Paths of the word crops cut from the validation images of `split_scenes(records)` (training
    must not see them). Raises ValueError when the crops cannot be matched to the scenes."""
    sources = crop_sources(records, crops)
    if sources is None:
        raise ValueError(f"word crops: found {len(crops)} that do not match the legible words of the "
                         f"{len(records)} scenes, expected ic15_train_words beside ic15_train")
    _, val = split_scenes(records, every)
    val_images = {r.image for r in val}
    return {path for (path, _), src in zip(crops, sources) if src in val_images}


def word_label(text: str, charset: str = DEFAULT_CHARSET, max_len: int | None = 16) -> str:
    """The recognition label of a transcription, or '' when it cannot be one (characters outside
    the charset besides punctuation, or longer than `max_len`; None: any length): such a word
    still trains detection."""
    raw = text.strip()
    if not raw or raw == DONT_CARE:
        return ""
    label = normalize_text(raw, charset)
    stripped = "".join(c for c in raw if c not in string.punctuation).lower()
    if not label or stripped != label or (max_len is not None and len(label) > max_len):
        return ""
    return label


class SceneSampler:
    """Augmented crops of real scenes, a pure function of (record, rng).

    `scale`: log-uniform range of the zoom applied to the image in its camera geometry (1280x720);
    `focus`: chance that the crop is centred near a legible word rather than anywhere;
    `rotate`: chance of a rotation of up to `max_angle` degrees; `min_inside`: share of a word's box
    that must stay inside the crop for it to remain a word (else it is ignored).
    """

    def __init__(self, records: list[SceneRecord], charset: str = DEFAULT_CHARSET, max_len: int = 16,
                 scale=(0.5, 3.0), focus: float = 0.8, rotate: float = 0.3, max_angle: float = 10.0,
                 min_inside: float = 0.85, min_height: float = 4.0, grey: float = 0.1):
        if not records:
            raise ValueError("SceneSampler: found no scene records, expected at least one")
        self.records = records
        self.charset, self.max_len = charset, max_len
        self.scale, self.focus, self.rotate, self.max_angle = scale, focus, rotate, max_angle
        self.min_inside, self.min_height, self.grey = min_inside, min_height, grey

    def _load(self, rec: SceneRecord):
        img = cv2.imread(rec.image, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"scene image {rec.image}: cannot be read, expected a JPEG or PNG")
        # back to the camera's geometry: the stored images were squeezed to 960x640
        sx = IC15_FRAME[0] / img.shape[1]
        sy = IC15_FRAME[1] / img.shape[0]
        return img, np.array([sx, sy], np.float32)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> SceneSample:
        rec = self.records[int(rng.integers(len(self.records)))]
        img, geo = self._load(rec)  # geo: camera pixels per stored pixel
        quads = rec.quads * geo  # camera pixels
        s = float(np.exp(rng.uniform(np.log(self.scale[0]), np.log(self.scale[1]))))
        angle = float(rng.uniform(-self.max_angle, self.max_angle)) if rng.random() < self.rotate else 0.0
        care = [i for i, t in enumerate(rec.texts) if t.strip() != DONT_CARE]
        if care and rng.random() < self.focus:
            q = quads[care[int(rng.integers(len(care)))]]
            centre = q.mean(0) + rng.uniform(-0.4, 0.4, 2) * np.array([width, height]) / s
        else:
            centre = rng.uniform([0, 0], IC15_FRAME).astype(np.float32)
        # camera pixels -> output pixels: scale s, rotate about the centre, centre -> middle of the crop
        m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, s)
        m[:, 2] += np.array([width / 2 - centre[0], height / 2 - centre[1]])
        # the warp reads the stored image directly: fold the stored -> camera scale into the matrix
        m_img = m.copy()
        m_img[:, 0] *= geo[0]
        m_img[:, 1] *= geo[1]
        shrink = s * float(min(geo))
        if shrink < 0.75:  # shrink with area averaging first: a warp alone would alias small text
            img = cv2.resize(img, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
            m_img[:, :2] /= shrink
        out = cv2.warpAffine(img, m_img, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=tuple(int(v) for v in rng.integers(0, 256, 3)))
        pts = np.concatenate([quads, np.ones((*quads.shape[:2], 1), np.float32)], axis=2) @ m.T.astype(np.float32)
        boxes, texts, ignore = [], [], []
        for i, q in enumerate(pts):
            x0, y0 = q.min(0)
            x1, y1 = q.max(0)
            cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            box = [float(cx0), float(cy0), float(cx1), float(cy1)]
            inside = (cx1 - cx0) * (cy1 - cy0) / max((x1 - x0) * (y1 - y0), 1e-6)
            if rec.texts[i].strip() == DONT_CARE or inside < self.min_inside or (cy1 - cy0) < self.min_height:
                ignore.append(box)
            else:  # a word the crop trims a little still trains detection, but is read only whole
                boxes.append(box)
                texts.append(word_label(rec.texts[i], self.charset, self.max_len) if inside >= 0.98 else "")
        out = self._colour(rng, out)
        return SceneSample(out, np.asarray(boxes, np.float32).reshape(-1, 4), texts,
                           np.asarray(ignore, np.float32).reshape(-1, 4))

    def _colour(self, rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
        if rng.random() < self.grey:  # black-and-white cameras and footage
            g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            return cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)
        if rng.random() < 0.8:
            alpha = float(rng.uniform(0.7, 1.3))
            beta = float(rng.uniform(-25, 25))
            img = cv2.convertScaleAbs(img, alpha=alpha, beta=beta + (1 - alpha) * 128)
        if rng.random() < 0.5:  # saturation and hue
            hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.float32)
            hsv[..., 1] *= float(rng.uniform(0.6, 1.4))
            hsv[..., 0] = (hsv[..., 0] + float(rng.uniform(-8, 8))) % 180
            img = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
        return img


def write_camera_set(records: list[SceneRecord], out) -> Path:
    """Write scenes as an ICDAR 2015 folder in the camera's geometry (1280x720 images, ground truth
    scaled to them), so they are scored exactly like ic15_dev -> the folder."""
    from ..fileio import write_bytes_atomic

    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "gt").mkdir(parents=True, exist_ok=True)
    for rec in records:
        img = cv2.imread(rec.image, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"scene image {rec.image}: cannot be read, expected a JPEG or PNG")
        sx, sy = IC15_FRAME[0] / img.shape[1], IC15_FRAME[1] / img.shape[0]
        big = cv2.resize(img, IC15_FRAME, interpolation=cv2.INTER_LINEAR)
        ok, buf = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise ValueError(f"scene image {rec.image}: could not be encoded")
        stem = Path(rec.image).stem
        write_bytes_atomic(out / "images" / f"{stem}.jpg", buf.tobytes(), "scene image")
        lines = []
        for q, t in zip(rec.quads, rec.texts):
            pts = (q * [sx, sy]).round().astype(int).reshape(-1)
            lines.append(",".join(str(v) for v in pts) + "," + t)
        write_bytes_atomic(out / "gt" / f"gt_{stem}.txt", ("\n".join(lines) + "\n").encode(), "scene ground truth")
    return out


def default_scene_root() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    return os.path.join(os.path.dirname(repo), "shared", "data", "ic15_train")
