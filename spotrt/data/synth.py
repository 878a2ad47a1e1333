"""Synthetic scene-text generator with a three-level curriculum.

Each word is rendered with PIL (TrueType) into a small local layer (plate, shadow, outline,
text), warped with a homography by OpenCV into the scene, and labelled with the tight box of
its ink transformed by the same homography (clockwise from the text's top-left corner, in
scene pixels, like ICDAR 2015 annotations). Everything random comes from
``np.random.default_rng(seed)``: a seed, level and size give the same image every time.
"""
from __future__ import annotations

import functools
import os
import string
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .charset import DEFAULT_CHARSET, normalize_text
from .readers import read_word_coords, read_word_crops
from .scenes import word_label

LEVELS = (0, 1, 2)

# Common words on signs, shop fronts and streets (lower case; rendered in varied case).
SIGN_WORDS = """
open closed exit entrance entry push pull sale off free new hot cold coffee tea bar cafe food
hotel motel inn restaurant kitchen pizza burger grill bakery bread market shop store mall
center centre street st road rd avenue ave lane way drive park parking car taxi bus stop station
train metro subway airport terminal gate platform ticket tickets office bank atm cash money
pay card credit visa welcome hello thanks please no yes not do enter only staff private
danger warning caution keep clear wet floor fire alarm emergency police security safety
toilet toilets restroom men women ladies gentlemen baby lift elevator stairs floor level
information info help desk reception lobby room suite hall north south east west left right
up down one way city town hall museum library school college university hospital clinic
pharmacy dental doctor health beauty salon hair spa fitness gym sports club music live
cinema theatre theater show tickets book books news newspaper magazine fashion shoes bags
watches jewellery jewelry gold silver diamond optical glasses phone mobile digital electronics
computer camera photo print copy service services repair wash laundry dry cleaning
tailor flowers florist garden home furniture design art gallery studio international
express limited ltd company group world global asia europe best quality price prices special
offer offers discount percent big super mega mini plus max day night week year time hours
daily weekly menu lunch dinner breakfast buffet wine beer drinks juice ice cream fresh fruit
milk water chicken beef fish rice noodle noodles soup cake sweet chocolate snacks deli
tower plaza square court house building block centre mart express outlet factory brand
original official genuine star sun moon king queen royal grand great golden red blue green
black white yellow orange pink purple happy lucky love life smart fast easy good top first
""".split()


@dataclass
class Word:
    quad: np.ndarray  # (4, 2) float32, clockwise from the top-left corner of the text
    text: str  # normalised label


@dataclass
class Scene:
    image: np.ndarray  # (H, W, 3) uint8, BGR
    words: list[Word] = field(default_factory=list)


def _default_word_crops_root() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    return os.path.join(os.path.dirname(repo), "shared", "data", "ic15_train_words")


def default_vocabulary(word_crops_root: str | None = None) -> list[str]:
    """Vocabulary: normalised words (len >= 2) of the ICDAR 2015 training crops plus sign words.

    ``word_crops_root`` defaults to ``../shared/data/ic15_train_words`` beside the repository;
    when that folder is absent only the built-in list is used. Sorted and deduplicated.
    """
    root = word_crops_root or _default_word_crops_root()
    words = set()
    for w in SIGN_WORDS:
        w = normalize_text(w)
        if len(w) >= 2:
            words.add(w)
    if os.path.isfile(os.path.join(root, "gt.txt")):
        for _, text in read_word_crops(root):
            if text.strip() == "###":
                continue
            for tok in text.split():
                w = normalize_text(tok)
                if 2 <= len(w):
                    words.add(w)
    return sorted(words)


def cached_image(cache: dict[str, np.ndarray], path: str) -> np.ndarray | None:
    """cv2.imread through a dict kept by the caller (training reads the same files over and over);
    None for a file that cannot be read."""
    img = cache.get(path)
    if img is None:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is not None:
            cache[path] = img
    return img


@functools.lru_cache(maxsize=4096)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _lum(c) -> float:
    # c is BGR
    return 0.114 * float(c[0]) + 0.587 * float(c[1]) + 0.299 * float(c[2])


def _with_lum(rng: np.random.Generator, target: float, sat: float) -> np.ndarray:
    """A random BGR colour of roughly luminance ``target`` and saturation scale ``sat``."""
    base = rng.uniform(0, 255, 3) * sat + (1 - sat) * 128.0
    c = base + (target - _lum(base))
    c = np.clip(c, 0, 255)
    c = c + (target - _lum(c))  # one more correction after clipping
    return np.clip(c, 0, 255).astype(np.float32)


def _contrast_colour(rng, bg_lum: float, min_contrast: float, sat: float) -> np.ndarray:
    lo_ok = bg_lum - min_contrast >= 0
    hi_ok = bg_lum + min_contrast <= 255
    if lo_ok and (not hi_ok or rng.random() < bg_lum / 255.0):
        target = rng.uniform(0, bg_lum - min_contrast)
    elif hi_ok:
        target = rng.uniform(bg_lum + min_contrast, 255)
    else:  # not reachable for min_contrast <= 127
        target = 0.0 if bg_lum > 127 else 255.0
    return _with_lum(rng, target, sat)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """Round and saturate a float image to uint8 (modifies ``img``)."""
    np.maximum(img, 0, out=img)
    return cv2.convertScaleAbs(img)


def _order_quad(q: np.ndarray) -> np.ndarray:
    """Keep order but make sure it is clockwise in image coordinates (y down)."""
    x, y = q[:, 0], q[:, 1]
    area = 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
    if area < 0:
        q = q[[0, 3, 2, 1]]
    return q


class _Occupancy:
    """Pixel mask of what is taken in the scene, to keep words from overlapping."""

    def __init__(self, h: int, w: int):
        self.mask = np.zeros((h, w), np.uint8)

    def _poly_roi(self, poly: np.ndarray, pad: int):
        h, w = self.mask.shape
        x0 = max(int(np.floor(poly[:, 0].min())) - pad, 0)
        y0 = max(int(np.floor(poly[:, 1].min())) - pad, 0)
        x1 = min(int(np.ceil(poly[:, 0].max())) + pad + 1, w)
        y1 = min(int(np.ceil(poly[:, 1].max())) + pad + 1, h)
        if x1 <= x0 or y1 <= y0:
            return None
        tmp = np.zeros((y1 - y0, x1 - x0), np.uint8)
        pts = np.round(poly - np.array([x0, y0], np.float32)).astype(np.int32)
        cv2.fillConvexPoly(tmp, pts, 1)
        if pad > 0:
            tmp = cv2.dilate(tmp, np.ones((2 * pad + 1, 2 * pad + 1), np.uint8))
        return (y0, y1, x0, x1), tmp

    def free(self, poly: np.ndarray, pad: int = 2) -> bool:
        r = self._poly_roi(poly, pad)
        if r is None:
            return False
        (y0, y1, x0, x1), tmp = r
        return not bool((self.mask[y0:y1, x0:x1] & tmp).any())

    def take(self, poly: np.ndarray, pad: int = 2) -> None:
        r = self._poly_roi(poly, pad)
        if r is not None:
            (y0, y1, x0, x1), tmp = r
            self.mask[y0:y1, x0:x1] |= tmp


# Per-level parameters.
_P = {
    0: dict(height=(16, 48), rot=0.0, persp=0.0, words=(1, 3), contrast=110, sat=0.5),
    1: dict(height=(12, 56), rot=8.0, persp=0.04, words=(1, 5), contrast=70, sat=0.8),
    2: dict(height=(10, 64), rot=15.0, persp=0.10, words=(2, 7), contrast=40, sat=1.0),
}

# Heights of ``small_text`` words (augment only; level 2's own range starts at 10).
_SMALL_TEXT = (8.0, 24.0)

# Largest text height of a level with ``augment`` (still at most a third of the scene's height).
_AUGMENT_MAX_HEIGHT = {1: 72, 2: 96}


class SynthGenerator:
    """Synthetic scenes (and single-word crops) for training a text spotter."""

    def __init__(
        self,
        fonts: list[str] | None = None,
        vocabulary: list[str] | None = None,
        real_crops: list[tuple[str, str]] | None = None,
        charset: str = DEFAULT_CHARSET,
        augment: bool = False,
        small_text: float = 0.0,
        text_source=None,
        backgrounds: list[str] | None = None,
        photo_share: float = 0.6,
        big_text: float = 0.0,
    ):
        """``augment`` adds training-only variety on top of the levels: letter-spaced and condensed
        or extended words, larger text (up to 96 px at level 2) and more pasted real crops. It draws from its own
        random stream, so without it every scene and crop is exactly the held-out evaluation set.
        ``small_text`` (with ``augment``): the share of level-2 scene words drawn 8-24 px tall (log-uniform),
        the sizes of most words in 1280x720 street photos.
        ``text_source`` (a ``words.TextSource``): draws the text instead of the vocabulary (open
        vocabulary and random strings). ``backgrounds``: photographs behind a ``photo_share`` of the
        level 1-2 scenes and word crops. Without these two the generator is the one the held-out
        evaluation scenes were always drawn from."""
        if fonts is None:
            from .fonts import find_fonts

            fonts = find_fonts()
        if not fonts:
            raise ValueError("SynthGenerator needs at least one font")
        self.fonts = list(fonts)
        self.charset = charset
        vocab = vocabulary if vocabulary is not None else default_vocabulary()
        vocab = [normalize_text(v, charset) for v in vocab]
        # a charset that keeps no vocabulary word (digits only, say) draws every label as random strings
        self.vocabulary = [v for v in vocab if 2 <= len(v) <= 12]
        self.alnum = [c for c in charset if c in string.ascii_lowercase + string.digits] or list(charset)
        self.digits = [c for c in charset if c in string.digits] or self.alnum
        self.real_crops = self._filter_crops(real_crops or [])
        self.augment = bool(augment)
        if not 0.0 <= float(small_text) <= 1.0:
            raise ValueError(f"small_text: found {small_text}, expected a fraction in [0, 1]")
        self.small_text = float(small_text)
        self._coords: dict[str, dict[str, np.ndarray]] = {}
        self.text_source = text_source
        self.backgrounds = list(backgrounds or [])
        self.photo_share = float(photo_share)
        if not 0.0 <= float(big_text) <= 1.0:
            raise ValueError(f"big_text: found {big_text}, expected a fraction in [0, 1]")
        self.big_text = float(big_text)
        self._photo_cache: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ real crops
    def _filter_crops(self, crops):
        # spaces, accents or characters outside the charset: not a label (scenes.word_label's rule)
        labelled = ((path, word_label(raw, self.charset, max_len=None)) for path, raw in crops)
        return [(path, label) for path, label in labelled if label]

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - the generator lives as long as training
    def _load_crop(self, path: str):
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            return None, None
        d = os.path.dirname(path)
        if d not in self._coords:
            self._coords[d] = read_word_coords(d)
        quad = self._coords[d].get(path)
        h, w = img.shape[:2]
        if quad is None:
            quad = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
        else:
            quad = np.clip(quad, 0, [w, h]).astype(np.float32)
            quad = _order_quad(quad)
        return img, quad

    # ------------------------------------------------------------------ text
    def _text(self, rng: np.random.Generator) -> tuple[str, str]:
        """(string to render, normalised label)."""
        if self.text_source is not None:
            shown, label, _ = self.text_source.draw(rng)
            return shown, label
        r = rng.random()
        if r < 0.70 and self.vocabulary:
            label = self.vocabulary[int(rng.integers(len(self.vocabulary)))]
        elif r < 0.85 or not self.vocabulary:
            n = int(rng.integers(2, 9))
            label = "".join(self.alnum[int(i)] for i in rng.integers(0, len(self.alnum), n))
        else:
            n = int(rng.integers(2, 7))
            label = "".join(self.digits[int(i)] for i in rng.integers(0, len(self.digits), n))
        c = rng.random()
        if c < 0.4:
            shown = label.upper()
        elif c < 0.7:
            shown = label
        else:
            shown = label[:1].upper() + label[1:]
        return shown, label

    def _render_masks(self, rng, shown: str, text_h: int, level: int, style: dict):
        """Render text (and outline) masks in local coordinates.

        Returns (text_mask, outline_mask or None, ink box (x0, y0, x1, y1)) with padding.
        """
        font_path = self.fonts[int(rng.integers(len(self.fonts)))]
        # ink height of mixed text is about 0.72 * size for caps/ascenders; bucket sizes by 2 px
        size = max(8, int(round(text_h / 0.72 / 2.0)) * 2)
        font = _font(font_path, size)
        l, t, r, b = font.getbbox(shown)
        stroke = style.get("outline", 0)
        pad = style.get("pad", 2) + stroke
        spacing = int(round(style.get("spacing", 0.0) * size))
        if spacing and len(shown) > 1:  # letter-spaced (tracked) text, drawn a character at a time
            adv = [font.getlength(ch) for ch in shown]
            r = l + int(np.ceil(sum(adv[:-1]) + spacing * (len(shown) - 1))) + font.getbbox(shown[-1])[2]
        else:
            spacing, adv = 0, []
        w, h = (r - l) + 2 * pad, (b - t) + 2 * pad
        if w <= 2 * pad or h <= 2 * pad:
            return None

        def draw_text(**kw) -> np.ndarray:
            img = Image.new("L", (w, h), 0)
            draw = ImageDraw.Draw(img)
            if not spacing:
                draw.text((pad - l, pad - t), shown, fill=255, font=font, **kw)
            else:
                x = float(pad - l)
                for ch, a in zip(shown, adv):
                    draw.text((x, pad - t), ch, fill=255, font=font, **kw)
                    x += a + spacing
            return np.asarray(img)

        text = draw_text()
        outline = draw_text(stroke_width=stroke, stroke_fill=255) if stroke else None
        squeeze = style.get("squeeze", 1.0)
        if squeeze != 1.0:  # condensed or extended lettering
            nw = max(2 * pad + 1, int(round(w * squeeze)))
            interp = cv2.INTER_AREA if squeeze < 1 else cv2.INTER_LINEAR
            text = cv2.resize(text, (nw, h), interpolation=interp)
            if outline is not None:
                outline = cv2.resize(outline, (nw, h), interpolation=interp)
        ink = outline if outline is not None else text
        rows = np.flatnonzero(ink.max(axis=1) > 20)
        cols = np.flatnonzero(ink.max(axis=0) > 20)
        if rows.size == 0 or cols.size == 0:
            return None
        box = (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
        return text, outline, box

    # ------------------------------------------------------------------ geometry
    def _homography(self, rng, w: int, h: int, level: int, scene_hw, text_h: float):
        """Homography from a (w, h) local layer to scene coordinates, or None if it cannot fit."""
        p = _P[level]
        H_s, W_s = scene_hw
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
        c = np.array([w / 2.0, h / 2.0], np.float32)
        ang = np.deg2rad(rng.uniform(-p["rot"], p["rot"])) if p["rot"] else 0.0
        sx = rng.uniform(0.85, 1.15) if level > 0 else 1.0
        shear = rng.uniform(-0.15, 0.15) if level > 0 and rng.random() < 0.3 else 0.0
        A = np.array([[sx, shear], [0.0, 1.0]], np.float32)
        R = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]], np.float32)
        dst = (src - c) @ (R @ A).T
        if p["persp"]:
            jx, jy = p["persp"] * 0.5 * w * sx, p["persp"] * 2.5 * h
            dst = dst + (rng.uniform(-1, 1, (4, 2)) * np.array([jx, jy])).astype(np.float32)
        mn, mx = dst.min(0), dst.max(0)
        if (mx - mn)[0] > W_s - 2 or (mx - mn)[1] > H_s - 2:
            return None
        tx = rng.uniform(-mn[0] + 1, W_s - 1 - mx[0])
        ty = rng.uniform(-mn[1] + 1, H_s - 1 - mx[1])
        if level == 0:
            tx, ty = float(np.round(tx - c[0]) + c[0]), float(np.round(ty - c[1]) + c[1])
        dst = (dst + np.array([tx, ty], np.float32)).astype(np.float32)
        return cv2.getPerspectiveTransform(src, dst), dst

    @staticmethod
    def _apply(Hm: np.ndarray, pts: np.ndarray) -> np.ndarray:
        return cv2.perspectiveTransform(pts.reshape(-1, 1, 2).astype(np.float32), Hm).reshape(-1, 2)

    @staticmethod
    def _composite(canvas: np.ndarray, Hm: np.ndarray, layer: np.ndarray, ext: np.ndarray, level: int):
        """Warp a premultiplied BGRA float layer with ``Hm`` and blend it into ``canvas`` (float32)."""
        Hs, Ws = canvas.shape[:2]
        x0 = max(int(np.floor(ext[:, 0].min())) - 1, 0)
        y0 = max(int(np.floor(ext[:, 1].min())) - 1, 0)
        x1 = min(int(np.ceil(ext[:, 0].max())) + 2, Ws)
        y1 = min(int(np.ceil(ext[:, 1].max())) + 2, Hs)
        if x1 <= x0 or y1 <= y0:
            return
        T = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)
        M = T @ Hm
        interp = cv2.INTER_NEAREST if level == 0 and abs(M[0, 1]) < 1e-9 else cv2.INTER_LINEAR
        warped = cv2.warpPerspective(
            layer, M, (x1 - x0, y1 - y0), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
        a = warped[..., 3:4]
        roi = canvas[y0:y1, x0:x1]
        roi *= 1.0 - a
        roi += warped[..., :3]

    # ------------------------------------------------------------------ backgrounds
    def _background(self, rng: np.random.Generator, level: int, h: int, w: int, clutter: bool = True) -> np.ndarray:
        """Float32 BGR background (h, w, 3) in 0..255 (shapes and distractors when ``clutter``)."""
        if self.backgrounds and level > 0 and rng.random() < self.photo_share:
            photo = self._photo(rng, h, w)
            if photo is not None:
                return photo
        sat = float(rng.uniform(0.1, 0.7))
        c0 = _with_lum(rng, rng.uniform(20, 235), sat)
        c1 = _with_lum(rng, np.clip(_lum(c0) + rng.normal(0, 60), 0, 255), sat)
        sh, sw = max(2, h // 8), max(2, w // 8)
        if level == 0:
            if rng.random() < 0.5:
                return np.broadcast_to(c0, (h, w, 3)).copy()
            small = self._gradient(rng, sh, sw, c0, c1 * 0.4 + c0 * 0.6)
            return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        small = self._gradient(rng, sh, sw, c0, c1)
        # low-frequency colour variation (large soft blobs)
        gh, gw = int(rng.integers(2, 9)), int(rng.integers(2, 17))
        low = rng.normal(0, rng.uniform(8, 35), (gh, gw, 3)).astype(np.float32)
        low = low * sat + low.mean(axis=2, keepdims=True) * (1 - sat)
        small += cv2.resize(low, (sw, sh), interpolation=cv2.INTER_CUBIC)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        r = rng.random()
        if r < 0.35:  # fine texture: noise at a coarse scale, upsampled
            s = int(rng.integers(2, 6))
            tex = rng.standard_normal((h // s + 1, w // s + 1), dtype=np.float32) * float(rng.uniform(4, 16))
            img += cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
        elif r < 0.55:  # stripes (bricks, blinds, fences): sin(ax + by), separable
            period = rng.uniform(6, 40)
            ang = rng.uniform(0, np.pi)
            k = 2 * np.pi / period
            ax = (np.cos(ang) * k * np.arange(w, dtype=np.float32))[None, :]
            by = (np.sin(ang) * k * np.arange(h, dtype=np.float32))[:, None]
            amp = float(rng.uniform(5, 25))
            stripes = (np.sin(ax) * np.cos(by) + np.cos(ax) * np.sin(by)) * amp
            img += stripes[..., None]
        if clutter:
            self._clutter(rng, img, level)
        return img

    def _photo(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray | None:
        """A random crop of a random background photograph, zoomed to cover (h, w), float32."""
        img = cached_image(self._photo_cache, self.backgrounds[int(rng.integers(len(self.backgrounds)))])
        if img is None:
            return None
        ih, iw = img.shape[:2]
        zoom = max(h / ih, w / iw) * float(np.exp(rng.uniform(0.0, np.log(2.5))))
        ch, cw = min(ih, int(np.ceil(h / zoom))), min(iw, int(np.ceil(w / zoom)))
        y0, x0 = int(rng.integers(0, ih - ch + 1)), int(rng.integers(0, iw - cw + 1))
        crop = img[y0:y0 + ch, x0:x0 + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out = cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        if rng.random() < 0.3:  # a darker or lighter scene
            out *= np.float32(rng.uniform(0.5, 1.3))
        return out

    @staticmethod
    def _gradient(rng, h, w, c0, c1):
        ang = rng.uniform(0, 2 * np.pi)
        x = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :] * np.float32(np.cos(ang) * (w / max(h, w)))
        y = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None] * np.float32(np.sin(ang) * (h / max(h, w)))
        t = np.clip(x + y + 0.5, 0, 1)[..., None]
        return (c0 * (1 - t) + c1 * t).astype(np.float32)

    def _clutter(self, rng, img: np.ndarray, level: int):
        h, w = img.shape[:2]
        n = int(rng.integers(2, 8)) if level == 1 else int(rng.integers(4, 14))
        for _ in range(n):
            col = tuple(float(v) for v in _with_lum(rng, rng.uniform(0, 255), rng.uniform(0.1, 0.8)))
            kind = rng.random()
            th = int(rng.integers(1, 5))
            if kind < 0.3:
                p1 = (int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h)))
                p2 = (p1[0] + int(rng.integers(10, w // 2)), p1[1] + int(rng.integers(10, h // 2)))
                cv2.rectangle(img, p1, p2, col, -1 if rng.random() < 0.5 else th)
            elif kind < 0.55:
                cv2.line(img, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                         (int(rng.integers(0, w)), int(rng.integers(0, h))), col, th, cv2.LINE_AA)
            elif kind < 0.8:
                cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                           int(rng.integers(3, max(4, h // 3))), col, -1 if rng.random() < 0.5 else th,
                           cv2.LINE_AA)
            else:  # a soft blob
                cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
                r = int(rng.integers(8, max(9, h // 2)))
                x0, y0, x1, y1 = max(cx - r, 0), max(cy - r, 0), min(cx + r, w), min(cy + r, h)
                if x1 - x0 < 2 or y1 - y0 < 2:
                    continue
                m = np.zeros((y1 - y0, x1 - x0), np.float32)
                cv2.circle(m, (cx - x0, cy - y0), r // 2, 1.0, -1)
                k = (r // 2) * 2 + 1
                m = cv2.GaussianBlur(m, (k, k), 0)[..., None] * rng.uniform(0.3, 0.8)
                roi = img[y0:y1, x0:x1]
                roi *= 1 - m
                roi += m * np.array(col, np.float32)
        if level >= 2:  # character-like distractor strokes
            for _ in range(int(rng.integers(2, 8))):
                col = tuple(float(v) for v in _with_lum(rng, rng.uniform(0, 255), rng.uniform(0.1, 0.8)))
                s = int(rng.integers(8, 40))
                x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
                th = max(1, s // int(rng.integers(5, 9)))
                k = rng.random()
                if k < 0.3:  # bars like "I" / "l" / "|||"
                    for i in range(int(rng.integers(1, 5))):
                        xx = x + i * int(s * 0.6)
                        cv2.line(img, (xx, y), (xx, y + s), col, th, cv2.LINE_AA)
                elif k < 0.55:  # ring like "o"
                    cv2.ellipse(img, (x, y), (max(2, s // 3), max(2, s // 2)), 0, 0, 360, col, th, cv2.LINE_AA)
                elif k < 0.8:  # arcs like "c" / "n"
                    a0 = float(rng.uniform(0, 360))
                    cv2.ellipse(img, (x, y), (max(2, s // 3), max(2, s // 2)), 0, a0, a0 + 220, col, th, cv2.LINE_AA)
                else:  # random polyline
                    pts = (rng.uniform(0, s, (int(rng.integers(3, 6)), 2)) + [x, y]).astype(np.int32)
                    cv2.polylines(img, [pts], False, col, th, cv2.LINE_AA)

    # ------------------------------------------------------------------ words
    def _style(self, rng, level: int) -> dict:
        if level == 0:
            return dict(pad=2, outline=0, plate=False, shadow=False)
        pr = 0.3 if level == 1 else 0.4
        return dict(
            pad=2,
            outline=int(rng.integers(1, 3)) if rng.random() < 0.12 else 0,
            plate=rng.random() < pr,
            shadow=rng.random() < 0.15,
        )

    @staticmethod
    def _augment_style(xr, level: int, style: dict) -> dict:
        """Letter spacing (in units of the font size) and horizontal squeeze; none for most words."""
        if xr is None or level == 0:
            return style
        if xr.random() < 0.25:
            style["spacing"] = float(xr.uniform(0.08, 0.6))
        if xr.random() < 0.3:
            style["squeeze"] = float(xr.uniform(0.55, 1.3))
        return style

    def _find_spot(self, rng, lw, lh, level, scene_hw, text_h, quad_local, occ):
        """Up to 6 tries at a warp of a (lh, lw) word layer that lands inside the scene on free ground
        -> (homography, extent, quad), or None."""
        Hs, Ws = scene_hw
        for _ in range(6):
            g = self._homography(rng, lw, lh, level, scene_hw, text_h)
            if g is None:
                return None
            Hm, ext = g
            quad = self._apply(Hm, quad_local)
            if quad.min() < 0 or (quad[:, 0] >= Ws).any() or (quad[:, 1] >= Hs).any():
                continue
            if occ.free(ext, pad=2):
                return Hm, ext, quad
        return None

    def _place_synth_word(self, rng, canvas, occ, level, text_h, scene_hw, min_contrast_scale=1.0, xr=None):
        p = _P[level]
        shown, label = self._text(rng)
        style = self._style(rng, level)
        style = self._augment_style(xr, level, style)
        plate_pad = 0
        if style["plate"]:
            plate_pad = int(max(3, text_h * rng.uniform(0.2, 0.6)))
            style["pad"] = plate_pad
        elif style["shadow"]:
            style["pad"] = max(3, int(text_h * 0.15))
        r = self._render_masks(rng, shown, text_h, level, style)
        if r is None:
            return None
        tmask, omask, box = r
        lh, lw = tmask.shape
        x0, y0, x1, y1 = box
        quad_local = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
        spot = self._find_spot(rng, lw, lh, level, scene_hw, text_h, quad_local, occ)
        if spot is None:
            return None  # too large or no free place: let the caller pick a smaller size
        Hm, ext, quad = spot
        # colours against what lies under the word now
        xs0, ys0 = max(int(ext[:, 0].min()), 0), max(int(ext[:, 1].min()), 0)
        xs1, ys1 = int(np.ceil(ext[:, 0].max())), int(np.ceil(ext[:, 1].max()))
        under = canvas[ys0:ys1 + 1, xs0:xs1 + 1].reshape(-1, 3)
        bg = np.clip(under.mean(0), 0, 255)
        layer = np.zeros((lh, lw, 4), np.float32)
        contrast = p["contrast"] * min_contrast_scale
        if level == 2 and rng.random() < 0.3:
            contrast *= 0.7
        ref_lum = _lum(bg)
        if style["plate"]:
            plate_col = _contrast_colour(rng, ref_lum, 40, p["sat"])
            a = np.zeros((lh, lw), np.float32)
            rad = int(min(lh, lw) * rng.uniform(0, 0.3))
            if rad > 1:
                cv2.rectangle(a, (rad, 0), (lw - 1 - rad, lh - 1), 1.0, -1)
                cv2.rectangle(a, (0, rad), (lw - 1, lh - 1 - rad), 1.0, -1)
                for cx, cy in ((rad, rad), (lw - 1 - rad, rad), (rad, lh - 1 - rad), (lw - 1 - rad, lh - 1 - rad)):
                    cv2.circle(a, (cx, cy), rad, 1.0, -1, cv2.LINE_AA)
            else:
                a[:] = 1.0
            layer[..., :3] = plate_col * a[..., None]
            layer[..., 3] = a
            ref_lum = _lum(plate_col)
            if rng.random() < 0.5:  # plate border
                bc = _contrast_colour(rng, ref_lum, 30, p["sat"])
                bmask = np.zeros((lh, lw), np.float32)
                cv2.rectangle(bmask, (1, 1), (lw - 2, lh - 2), 1.0, max(1, int(text_h * 0.06)))
                bmask *= a
                layer[..., :3] = layer[..., :3] * (1 - bmask[..., None]) + bc * bmask[..., None]
                layer[..., 3] = np.maximum(layer[..., 3], bmask)
        text_col = _contrast_colour(rng, ref_lum, contrast, p["sat"])

        def over(col, alpha):
            alpha = alpha[..., None]
            layer[..., :3] = layer[..., :3] * (1 - alpha) + col * alpha
            layer[..., 3:] = layer[..., 3:] * (1 - alpha) + alpha

        tm = tmask.astype(np.float32) / 255.0
        if style["shadow"] and not style["plate"]:
            d = max(1, int(text_h * rng.uniform(0.04, 0.1)))
            sh = np.zeros_like(tm)
            sh[d:, d:] = tm[:-d, :-d]
            k = 2 * int(rng.integers(0, 2)) + 1
            sh = cv2.GaussianBlur(sh, (k, k), 0) * rng.uniform(0.4, 0.8)
            scol = np.zeros(3, np.float32) if _lum(text_col) > 80 else np.full(3, 255, np.float32)
            over(scol, sh)
        if omask is not None:
            oc = _contrast_colour(rng, _lum(text_col), 90, p["sat"])
            over(oc, omask.astype(np.float32) / 255.0)
        over(text_col, tm)
        # ``over`` from a zero layer keeps colours premultiplied by alpha, as _composite expects
        self._composite(canvas, Hm, layer, ext, level)
        occ.take(ext, pad=1)
        return Word(quad=_order_quad(quad.astype(np.float32)), text=label)

    def _place_real_crop(self, rng, canvas, occ, level, text_h, scene_hw):
        path, label = self.real_crops[int(rng.integers(len(self.real_crops)))]
        img, q = self._load_crop(path)
        if img is None or img.shape[0] < 6 or img.shape[1] < 6:
            return None
        ch, cw = img.shape[:2]
        s = text_h / max(ch, 1)
        nh, nw = max(6, int(round(ch * s))), max(6, int(round(cw * s)))
        crop = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        q = q * np.array([nw / cw, nh / ch], np.float32)
        pad = int(max(2, text_h * rng.uniform(0.15, 0.5)))
        lh, lw = nh + 2 * pad, nw + 2 * pad
        # plate behind the crop: its mean colour, so the paste looks like a sign
        mean = crop.reshape(-1, 3).mean(0).astype(np.float32)
        layer = np.zeros((lh, lw, 4), np.float32)
        plate = np.clip(mean + rng.normal(0, 12, 3), 0, 255).astype(np.float32)
        layer[..., :3] = plate
        layer[..., 3] = 1.0
        feather = np.ones((nh, nw), np.float32)
        f = max(1, min(nh, nw) // 8)
        ramp = np.minimum(np.arange(nw) + 1, np.arange(nw)[::-1] + 1)[None, :]
        ramp = np.minimum(ramp, np.minimum(np.arange(nh) + 1, np.arange(nh)[::-1] + 1)[:, None])
        feather = np.clip(ramp / float(f + 1), 0, 1).astype(np.float32)[..., None]
        layer[pad:pad + nh, pad:pad + nw, :3] = crop.astype(np.float32) * feather + plate * (1 - feather)
        # soft plate edge
        edge = np.ones((lh, lw), np.float32)
        ramp2 = np.minimum(np.arange(lw) + 1, np.arange(lw)[::-1] + 1)[None, :]
        ramp2 = np.minimum(ramp2, np.minimum(np.arange(lh) + 1, np.arange(lh)[::-1] + 1)[:, None])
        edge = np.clip(ramp2 / float(max(1, pad // 2)), 0, 1).astype(np.float32) * rng.uniform(0.85, 1.0)
        layer[..., 3] = edge
        layer[..., :3] *= edge[..., None]
        quad_local = q + pad
        spot = self._find_spot(rng, lw, lh, level, scene_hw, text_h, quad_local, occ)
        if spot is None:
            return None  # too large or no free place: let the caller pick a smaller size
        Hm, ext, quad = spot
        self._composite(canvas, Hm, layer, ext, level)
        occ.take(ext, pad=1)
        return Word(quad=_order_quad(quad.astype(np.float32)), text=label)

    # ------------------------------------------------------------------ effects
    @staticmethod
    def _finish(rng, img: np.ndarray, level: int) -> np.ndarray:
        """Global photometric effects; ``img`` float32, returns uint8 BGR."""
        if level == 0:
            return _to_uint8(img)
        h, w = img.shape[:2]
        if level == 2 and rng.random() < 0.6:  # illumination gradient / vignette
            lo = cv2.resize(rng.uniform(0.45, 1.25, (2, 3)).astype(np.float32), (w, h),
                            interpolation=cv2.INTER_LINEAR)
            img *= lo[..., None]
        r = rng.random()
        if r < (0.3 if level == 1 else 0.35):
            s = rng.uniform(0.4, 1.0 if level == 1 else 1.4)
            img = cv2.GaussianBlur(img, (0, 0), s)
        elif level == 2 and r < 0.6:  # motion blur
            k = int(rng.integers(3, 8))
            kern = np.zeros((k, k), np.float32)
            kern[k // 2, :] = 1.0 / k
            M = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), float(rng.uniform(0, 180)), 1.0)
            kern = cv2.warpAffine(kern, M, (k, k))
            kern /= max(kern.sum(), 1e-6)
            img = cv2.filter2D(img, -1, kern)
        if rng.random() < 0.7:
            sigma = np.float32(rng.uniform(1, 6 if level == 1 else 10))
            shape = (h, w, 1) if rng.random() < 0.7 else (h, w, 3)
            noise = rng.standard_normal(shape, dtype=np.float32)
            noise *= sigma
            img += noise
        out = _to_uint8(img)
        if rng.random() < 0.5:
            q = int(rng.integers(30 if level == 2 else 50, 95))
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
            if ok:
                out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        return out

    # ------------------------------------------------------------------ public
    def scene(self, seed: int, level: int, height: int = 256, width: int = 512) -> Scene:
        """A synthetic scene (BGR uint8) and its words; deterministic in (seed, level, size)."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level}")
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(level), int(height), int(width)])
        xr = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(level), int(height), int(width), 99]) \
            if self.augment else None
        p = _P[level]
        canvas = self._background(rng, level, height, width)
        occ = _Occupancy(height, width)
        n = int(rng.integers(p["words"][0], p["words"][1] + 1))
        words: list[Word] = []
        lo, hi = p["height"]
        if xr is not None and level > 0:
            hi = _AUGMENT_MAX_HEIGHT[level]
        real_p = 0.45 if xr is not None else 0.3
        hi = min(hi, max(lo, height // 3))
        attempts = 0
        while len(words) < n and attempts < 4 * n + 4:
            attempts += 1
            # smaller text is more common (like real scenes); log-uniform heights
            text_h = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            if attempts > 2 * n:
                text_h = max(lo, text_h * 0.6)
            if xr is not None and level == 2 and self.small_text and xr.random() < self.small_text:
                text_h = float(np.exp(xr.uniform(np.log(_SMALL_TEXT[0]), np.log(_SMALL_TEXT[1]))))
            elif xr is not None and level == 2 and self.big_text and not words and xr.random() < self.big_text:
                # one large word (a sign filling much of the frame), up to 70 % of the scene's height
                text_h = float(np.exp(xr.uniform(np.log(hi), np.log(max(hi + 1, 0.7 * height)))))
            if level == 2 and self.real_crops and rng.random() < real_p:
                wd = self._place_real_crop(rng, canvas, occ, level, text_h, (height, width))
            else:
                wd = self._place_synth_word(rng, canvas, occ, level, text_h, (height, width), xr=xr)
            if wd is not None:
                words.append(wd)
        image = self._finish(rng, canvas, level)
        return Scene(image=image, words=words)

    def paste_words(self, image: np.ndarray, taken: np.ndarray, seed: int, n: int, level: int = 2) -> tuple[np.ndarray, list[Word]]:
        """Render up to `n` words onto a real photograph (BGR uint8) where nothing is labelled yet
        (`taken`: (m, 4) boxes of its words and don't-care regions), coloured against what lies
        under them; pixels outside the pasted words are kept. -> (new image, the pasted words). SynthText's idea, without its segmentation and depth."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level}")
        h, w = image.shape[:2]
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(level), h, w, 31])
        canvas = image.astype(np.float32)
        occ = _Occupancy(h, w)
        for x0, y0, x1, y1 in np.asarray(taken, np.float32).reshape(-1, 4):
            occ.take(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32), pad=4)
        lo, hi = 10.0, max(12.0, min(96.0, h / 3))
        words: list[Word] = []
        for _ in range(3 * n):
            if len(words) >= n:
                break
            text_h = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            wd = self._place_synth_word(rng, canvas, occ, level, text_h, (h, w))
            if wd is not None:
                words.append(wd)
        if not words:
            return image, words
        return _to_uint8(canvas), words

    def word_crop(self, seed: int, level: int, height: int = 32, max_width: int = 256) -> tuple[np.ndarray, str]:
        """A tightly cropped single word (BGR uint8, ``height`` x width<=``max_width``) and its label."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level}")
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(level), int(height), int(max_width), 7])
        xr = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(level), int(height), int(max_width), 99]) \
            if self.augment else None
        if level == 2 and self.real_crops and rng.random() < 0.3:
            path, label = self.real_crops[int(rng.integers(len(self.real_crops)))]
            img, q = self._load_crop(path)
            if img is not None:
                x0, y0 = np.floor(q.min(0)).astype(int)
                x1, y1 = np.ceil(q.max(0)).astype(int)
                crop = img[max(y0, 0):max(y1, y0 + 1), max(x0, 0):max(x1, x0 + 1)]
                if crop.size:
                    return self._resize_crop(crop, height, max_width), label
        text_h = float(rng.uniform(24, 40))
        # render in a local canvas a bit larger than the word, with the scene machinery
        shown, label = self._text(rng)
        style = self._style(rng, level)
        style["plate"] = False
        style = self._augment_style(xr, level, style)
        pad = max(4, int(text_h * 0.2))
        r = self._render_masks(rng, shown, text_h, level, style | {"pad": pad})
        tries = 0
        while r is None and tries < 5:
            shown, label = self._text(rng)
            r = self._render_masks(rng, shown, text_h, level, style | {"pad": pad})
            tries += 1
        tmask, omask, box = r
        lh, lw = tmask.shape
        bg = self._background(rng, level, lh, lw, clutter=False) if level > 0 else \
            np.broadcast_to(rng.uniform(0, 255, 3).astype(np.float32), (lh, lw, 3)).copy()
        p = _P[level]
        bg_lum = _lum(bg.reshape(-1, 3).mean(0))
        col = _contrast_colour(rng, bg_lum, p["contrast"], p["sat"])
        a = tmask.astype(np.float32)[..., None] / 255.0
        if omask is not None:
            oc = _contrast_colour(rng, _lum(col), 90, p["sat"])
            oa = omask.astype(np.float32)[..., None] / 255.0
            bg = bg * (1 - oa) + oc * oa
        img = bg * (1 - a) + col * a
        x0, y0, x1, y1 = box
        if level > 0:  # small rotation / shear of the word inside its crop
            ang = rng.uniform(-p["rot"], p["rot"]) * 0.5
            M = cv2.getRotationMatrix2D(((x0 + x1) / 2, (y0 + y1) / 2), float(ang), 1.0)
            M[0, 1] += rng.uniform(-0.15, 0.15) if rng.random() < 0.3 else 0.0
            img = cv2.warpAffine(img, M, (lw, lh), borderMode=cv2.BORDER_REFLECT)
            corners = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], np.float32) @ M.T
            x0, y0 = corners.min(0)
            x1, y1 = corners.max(0)
        # a small margin and jitter of the crop box, like a detector's box
        th = y1 - y0
        jh = th * (0.08 if level > 0 else 0.03)
        m = rng.uniform(0.0, 0.12, 4) * th
        bx0 = int(np.clip(np.floor(x0 - m[0] + rng.uniform(-jh, jh)), 0, lw - 1))
        by0 = int(np.clip(np.floor(y0 - m[1] + rng.uniform(-jh, jh)), 0, lh - 1))
        bx1 = int(np.clip(np.ceil(x1 + m[2] + rng.uniform(-jh, jh)), bx0 + 1, lw))
        by1 = int(np.clip(np.ceil(y1 + m[3] + rng.uniform(-jh, jh)), by0 + 1, lh))
        crop = img[by0:by1, bx0:bx1]
        out = self._resize_crop(crop, height, max_width)
        if level > 0:
            out = self._finish(rng, out.astype(np.float32), level)
        else:
            out = out.astype(np.uint8)
        return out, label

    @staticmethod
    def _resize_crop(crop: np.ndarray, height: int, max_width: int) -> np.ndarray:
        ch, cw = crop.shape[:2]
        w = int(round(cw * height / max(ch, 1)))
        w = int(np.clip(w, 1, max_width))
        out = cv2.resize(crop, (w, height), interpolation=cv2.INTER_AREA if ch > height else cv2.INTER_LINEAR)
        if out.dtype != np.uint8:
            out = _to_uint8(np.ascontiguousarray(out, dtype=np.float32))
        return out
