"""Image preprocessing shared by every backend (NumPy and OpenCV only: no torch here)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import SpotrtError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class Letterbox:
    """How an input image was placed in the network input: scaled by `scale`, at the top-left."""

    scale: float
    height: int  # of the original image
    width: int


def fit_size(height: int, width: int, max_h: int, max_w: int, multiple: int,
             scale: float = 1.0) -> tuple[float, int, int]:
    """Scale that fits the image into max_h x max_w, and the padded input size.

    `scale` is the size the caller asks for (1.0: as it is); the fit never goes past max_h x max_w.
    """
    scale = min(float(scale), max_h / height, max_w / width)
    h = max(multiple, math.ceil(round(height * scale) / multiple) * multiple)
    w = max(multiple, math.ceil(round(width * scale) / multiple) * multiple)
    return scale, h, w


def preprocess(
    image: np.ndarray,
    mean,
    std,
    max_size: tuple[int, int],
    multiple: int = 32,
    fixed: bool = False,
    scale: float = 1.0,
) -> tuple[np.ndarray, Letterbox]:
    """BGR uint8 (H,W,3) -> normalized float32 (3,h,w) and the letterbox to map boxes back.

    The image is scaled by `scale` (1.0: as it is; below 1 makes large text fit the anchors), then
    down to fit `max_size` if it must, and padded at the bottom/right with the mean colour, to a
    multiple of `multiple`, or to exactly `max_size` when `fixed` (exported graphs). The letterbox
    maps boxes back to the image's own pixels.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image: found shape {image.shape} dtype {image.dtype}, expected (H,W,3) uint8 BGR")
    ih, iw = image.shape[:2]
    scale, h, w = fit_size(ih, iw, max_size[0], max_size[1], multiple, scale)
    if fixed:
        h, w = max_size
    sh, sw = max(1, round(ih * scale)), max(1, round(iw * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = image if (sh, sw) == (ih, iw) else cv2.resize(image, (sw, sh), interpolation=interp)
    canvas = np.empty((h, w, 3), dtype=np.float32)
    canvas[...] = np.asarray(mean, dtype=np.float32)
    canvas[:sh, :sw] = resized
    canvas -= np.asarray(mean, dtype=np.float32)
    canvas /= np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)), Letterbox(scale, ih, iw)


def read_image(path) -> np.ndarray:
    """cv2.imread that raises SpotrtError naming the file instead of returning None."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise SpotrtError(f"image {path}: cannot be read ({exc.strerror}), expected a readable image file") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SpotrtError(f"image {path}: found {data.size} bytes OpenCV cannot decode, expected a JPEG/PNG/BMP image")
    return image


READ_HEIGHT = 32                                 # `read` scales a crop to this height (mid training size)
READ_SIZE = (2 * READ_HEIGHT, 16 * READ_HEIGHT)  # the fixed canvas a crop is read on: 64 x 512


def prepare_crop(crop: np.ndarray, mean, std) -> tuple[np.ndarray, int]:
    """A word crop for recognition -> normalized (3, 64, 512) canvas and the crop's width on it.

    Every backend reads on the same fixed canvas, so they see the same pixels and padding.
    """
    h, w = crop.shape[:2]
    scale = READ_HEIGHT / h
    width = max(8, min(round(w * scale), READ_SIZE[1]))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(crop, (width, READ_HEIGHT), interpolation=interp)
    x, _ = preprocess(resized, mean, std, READ_SIZE, multiple=8, fixed=True)
    return x, width


def collect_images(inputs) -> list[Path]:
    """Image files named by `inputs` (files or folders, folders not recursed), in order.

    A missing path or a folder with no images is a user error.
    """
    if not inputs:
        raise SpotrtError("inputs: found none, expected at least one image or folder")
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted((q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTS and q.is_file()), key=_natural)
            if not found:
                raise SpotrtError(f"folder {p}: found no image files, expected {', '.join(sorted(IMAGE_EXTS))}")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise SpotrtError(f"input {p}: no such file or folder, expected an image or a folder of images")
    return out


def _natural(p: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]
