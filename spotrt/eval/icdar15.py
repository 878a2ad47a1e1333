"""ICDAR 2015 Robust Reading, Challenge 4 (Incidental Scene Text) evaluation.

A re-implementation of the RRC's official scripts: Task 4.1 text localization (`script.py` with
`rrc_evaluation_funcs.py`) and Task 4.4 end-to-end / word spotting (`E2E_iou_1_1.py` with
`rrc_evaluation_funcs_1_1.py`, WORD_SPOTTING False / True). Rules, as in those scripts:

- A ground-truth (GT) word whose transcription is '###' is "don't care". In word spotting, a GT word
  that fails the dictionary rules (`_in_dictionary`) is don't care too, and the others are compared
  after `_dictionary_form` normalization.
- A detection whose area lies more than 0.5 inside some don't-care GT polygon is ignored.
- Matching is greedy and one-to-one: for each GT in file order, the first detection in file order
  that is unmatched, not ignored and has IoU > 0.5 with it is paired with it. In the end-to-end tasks
  the pair is correct only when the transcriptions match, yet a wrong pair still uses up both words.
- End-to-end: case-insensitive; the GT may lose one special character at its start and/or end
  (`_e2e_transcription_match`). Word spotting: case-insensitive equality with the normalized GT.
- Precision = correct / care detections, recall = correct / care GT, summed over all images.

Quads are taken as the scripts' `Polygon.Polygon(points)` (Polygon3) takes them, non-convex ones
exactly. That includes self-intersecting ("bow-tie") quads, which the official validator accepts
whenever the larger lobe is clockwise (a detector can emit them, e.g. with two corners swapped):
their area is Polygon3's `area()`, the absolute shoelace sum of the 4 points in the given order (the
two lobes' signed areas partly cancel; an evenly crossed box has area 0), while intersections are
GPC's, which takes the quad as its two lobes (two triangles meeting at the crossing point, even-odd
fill). So a bow-tie can have an intersection larger than its area: its IoU is computed all the
same (as the scripts do), and a zero or negative union counts as no match.

Differences, all on inputs the official scripts reject: coordinates may be floats (the official
format has integers) and anticlockwise quads are accepted.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass

import numpy as np

IOU_CONSTRAINT = 0.5
AREA_PRECISION_CONSTRAINT = 0.5
MIN_LENGTH_CARE_WORD = 3
DONT_CARE = "###"
SPECIAL_CHARACTERS = "!?.:,*\"()·[]/'"
TASKS = ("detection", "e2e", "spotting")


@dataclass
class GTWord:
    quad: np.ndarray  # (4, 2) float, clockwise from the top-left corner
    text: str  # raw transcription; '###' = don't care

    @property
    def dont_care(self) -> bool:
        return self.text == DONT_CARE


@dataclass
class DetWord:
    quad: np.ndarray  # (4, 2)
    text: str = ""
    score: float = 1.0


# --------------------------------------------------------------------------------------- files

_NUM = r"\s*(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*"
_LINE_TEXT = re.compile(r"^" + ",".join([_NUM] * 8) + r",(.*)$")
_LINE_BARE = re.compile(r"^" + ",".join([_NUM] * 8) + r"$")
_QUOTED = re.compile(r'^\s*"(.*)"\s*$')


def _unquote(text: str) -> str:
    # rrc_evaluation_funcs: a transcription in double quotes is unquoted and \\ and \" unescaped.
    m = _QUOTED.match(text)
    if m is None:
        return text
    return m.group(1).replace("\\\\", "\\").replace('\\"', '"')


def _parse_lines(path: str, need_text: bool) -> list[tuple[np.ndarray, str | None]]:
    with open(path, "rb") as f:
        raw = f.read()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 ({e})") from None
    out = []
    for lineno, line in enumerate(content.split("\n"), 1):
        line = line.replace("\r", "")
        if not line.strip():
            continue
        m = _LINE_TEXT.match(line)
        text = None
        if m is not None:
            text = _unquote(m.group(9))
        elif not need_text:
            m = _LINE_BARE.match(line)
        if m is None:
            want = "x1,y1,x2,y2,x3,y3,x4,y4,transcription" if need_text else "x1,y1,x2,y2,x3,y3,x4,y4[,transcription]"
            raise ValueError(f"{path}:{lineno}: found {line[:80]!r}, expected {want}")
        quad = np.array([float(m.group(i)) for i in range(1, 9)], dtype=np.float64).reshape(4, 2)
        out.append((quad, text))
    return out


def read_gt_file(path) -> list[GTWord]:
    """Read one ICDAR 2015 GT file (`x1,y1,...,x4,y4,transcription` lines; BOM and CRLF allowed)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: GT file not found")
    return [GTWord(quad, text) for quad, text in _parse_lines(path, need_text=True)]


def _read_dir(directory, prefix: str, what: str) -> dict[str, str]:
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"{directory}: {what} directory not found (expected a folder of {prefix}<id>.txt files)")
    files = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".txt"):
            continue
        if not name.startswith(prefix) or len(name) <= len(prefix) + 4:
            raise ValueError(f"{os.path.join(directory, name)}: file name not valid (expected {prefix}<id>.txt, e.g. {prefix}img_12.txt)")
        files[name[len(prefix) : -4]] = os.path.join(directory, name)
    return files


def read_gt_dir(gt_dir) -> dict[str, list[GTWord]]:
    """Read every gt_<id>.txt in a folder; keys are the ids ('img_12' from gt_img_12.txt)."""
    files = _read_dir(gt_dir, "gt_", "GT")
    return {k: read_gt_file(p) for k, p in files.items()}


def read_submission_dir(res_dir) -> dict[str, list[DetWord]]:
    """Read every res_<id>.txt in a folder (`x1,...,y4[,transcription]` lines); keys are the ids."""
    files = _read_dir(res_dir, "res_", "submission")
    return {
        k: [DetWord(quad, text or "") for quad, text in _parse_lines(p, need_text=False)] for k, p in files.items()
    }


def _format_text(text: str) -> str:
    if "\n" in text or "\r" in text:
        raise ValueError(f"transcription {text!r} contains a line break (expected a single line)")
    # Only text the reader would unquote needs quoting; anything else is written as is.
    if _QUOTED.match(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def write_submission_dir(res_dir, dets: dict[str, list[DetWord]], with_text: bool = True) -> None:
    """Write res_<id>.txt files in the official format (integer coordinates); each file atomically.

    `with_text=False` writes the 8 coordinates only (the Task 4.1 format). Stale res_*.txt files for
    ids not in `dets` are removed, so the folder holds exactly this submission.
    """
    res_dir = os.fspath(res_dir)
    os.makedirs(res_dir, exist_ok=True)
    for image_id, words in dets.items():
        lines = []
        for w in words:
            q = np.asarray(w.quad, dtype=np.float64).reshape(-1)
            if q.size != 8 or not np.all(np.isfinite(q)):
                raise ValueError(f"image {image_id}: quad {q.tolist()} not valid (expected 4 finite (x, y) points)")
            coords = ",".join(str(int(v)) for v in np.rint(q))
            lines.append(coords + ("," + _format_text(w.text) if with_text else ""))
        fd, tmp = tempfile.mkstemp(prefix=".res_", suffix=".tmp", dir=res_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write("".join(line + "\n" for line in lines))
            os.replace(tmp, os.path.join(res_dir, f"res_{image_id}.txt"))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    wanted = {f"res_{k}.txt" for k in dets}
    for name in os.listdir(res_dir):
        if name.startswith("res_") and name.endswith(".txt") and name not in wanted:
            os.unlink(os.path.join(res_dir, name))


# ------------------------------------------------------------------------------------ geometry

Tri = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]


def _cross(o, a, b) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _bow_tie_lobes(p) -> list[Tri]:
    """The two lobes of a self-intersecting quad: for crossing edges p[i]p[i+1] and p[i+2]p[i+3]
    that meet at X, the triangles (X, p[i+1], p[i+2]) and (X, p[i+3], p[i])."""
    for i in (0, 1):
        a, b, c, d = p[i], p[i + 1], p[i + 2], p[(i + 3) % 4]
        sc, sd = _cross(a, b, c), _cross(a, b, d)
        if sc * sd < 0 and _cross(c, d, a) * _cross(c, d, b) < 0:
            ta, tb = _cross(c, d, a), _cross(c, d, b)
            t = ta / (ta - tb)
            x = (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))
            return [(x, b, c), (x, d, a)]
    # Unreachable for a quad that no diagonal splits (no 3 of its points are then collinear).
    raise AssertionError(f"quad {p} has no crossing edges")


class _Poly:
    """A quad as positively oriented triangles that make up its region, with its area (as
    Polygon3's `area()`) and bounding box."""

    __slots__ = ("tris", "area", "box")

    def __init__(self, quad):
        p = [(float(x), float(y)) for x, y in np.asarray(quad, dtype=np.float64).reshape(4, 2)]
        tris = None
        # A simple quad (convex or not) is tiled by two triangles along a diagonal whose two
        # triangles have the same orientation; a bow-tie has no such diagonal.
        for a, b, c, d in ((0, 1, 2, 3), (1, 2, 3, 0)):
            s1, s2 = _cross(p[a], p[b], p[c]), _cross(p[a], p[c], p[d])
            if s1 * s2 >= 0:
                tris = [(p[a], p[b], p[c]), (p[a], p[c], p[d])]
                break
        bow_tie = tris is None
        if bow_tie:
            # As Polygon3/GPC: the region is the two lobes, the area the |shoelace| of the quad.
            tris = _bow_tie_lobes(p)
        self.tris = []
        self.area = 0.0
        for t in tris:
            s = _cross(*t)
            if s < 0:
                t = (t[0], t[2], t[1])
            if s != 0:
                self.tris.append(t)
                self.area += abs(s) / 2.0
        if bow_tie:
            shoelace = sum(p[i - 1][0] * p[i][1] - p[i][0] * p[i - 1][1] for i in range(4))
            self.area = abs(shoelace) / 2.0
        xs, ys = [q[0] for q in p], [q[1] for q in p]
        self.box = (min(xs), min(ys), max(xs), max(ys))


def _clip_area(subject: Tri, clip: Tri) -> float:
    """Area of the intersection of two positively oriented triangles (Sutherland-Hodgman)."""
    poly = list(subject)
    for i in range(3):
        a, b = clip[i], clip[(i + 1) % 3]
        if not poly:
            return 0.0
        out = []
        prev = poly[-1]
        prev_side = _cross(a, b, prev)
        for cur in poly:
            side = _cross(a, b, cur)
            if side >= 0:
                if prev_side < 0:
                    t = prev_side / (prev_side - side)
                    out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
                out.append(cur)
            elif prev_side >= 0:
                t = prev_side / (prev_side - side)
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            prev, prev_side = cur, side
        poly = out
    if len(poly) < 3:
        return 0.0
    s = 0.0
    for i in range(len(poly)):
        x0, y0 = poly[i - 1]
        x1, y1 = poly[i]
        s += x0 * y1 - x1 * y0
    return abs(s) / 2.0


def _intersection(p: _Poly, q: _Poly) -> float:
    if p.box[0] >= q.box[2] or q.box[0] >= p.box[2] or p.box[1] >= q.box[3] or q.box[1] >= p.box[3]:
        return 0.0
    return sum(_clip_area(s, t) for s in p.tris for t in q.tris)


def polygon_iou(quad_a, quad_b) -> float:
    """Intersection over union of two quads, as the official scripts compute it (see the module
    docstring for self-intersecting quads); 0 when the union is not positive (empty, or two bow-ties
    whose lobes overlap more than their areas add up to: the scripts' value is then <= 0 too)."""
    a, b = _Poly(quad_a), _Poly(quad_b)
    inter = _intersection(a, b)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


# ------------------------------------------------------------------------------- transcriptions


def _strip_possessive_and_specials(text: str) -> str:
    if text[-2:] in ("'s", "'S"):
        text = text[:-2]
    text = text.strip("-")
    for ch in "'!?.:,*\"()·[]/":
        text = text.replace(ch, " ")
    return text.strip()


def _dictionary_form(text: str) -> str:
    """GT transcription as compared in word spotting (include_in_dictionary_transcription)."""
    return _strip_possessive_and_specials(text)


def _allowed_char(ch: str) -> bool:
    c = ord(ch)
    if ch in "×÷·":
        return False
    return (
        0x61 <= c <= 0x7A  # a-z
        or 0x41 <= c <= 0x5A  # A-Z
        or 0xC0 <= c <= 0x1BF  # À-ƿ
        or 0x1C4 <= c <= 0x27F  # Ǆ-ɿ
        or 0x386 <= c <= 0x3FF  # Ά-Ͽ
        or ch == "-"
    )


def _in_dictionary(text: str) -> bool:
    """Whether a GT word counts in word spotting (include_in_dictionary): one word of at least 3
    letters (Latin, Latin-1/Extended, Greek or '-') after dropping 's and edge punctuation."""
    t = _strip_possessive_and_specials(text)
    if " " in t or len(t) < MIN_LENGTH_CARE_WORD:
        return False
    return all(_allowed_char(ch) for ch in t)


def _e2e_transcription_match(gt: str, det: str) -> bool:
    """transcription_match with ONLY_REMOVE_FIRST_LAST_CHARACTER: the (upper-cased) GT may lose one
    special character at its start, its end or both; the detection is compared as is."""
    if gt == det:
        return True
    if not gt:
        return False
    first, last = gt[0] in SPECIAL_CHARACTERS, gt[-1] in SPECIAL_CHARACTERS
    return (first and gt[1:] == det) or (last and gt[:-1] == det) or (first and last and gt[1:-1] == det)


# ---------------------------------------------------------------------------------- evaluation


def _rates(correct: int, n_gt: int, n_det: int) -> tuple[float, float, float]:
    # Per image, as the scripts do: an image without care GT has recall 1 and precision 1 or 0.
    if n_gt == 0:
        recall, precision = 1.0, (0.0 if n_det > 0 else 1.0)
    else:
        recall, precision = correct / n_gt, (correct / n_det if n_det else 0.0)
    hmean = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, hmean


def _evaluate_image(gt_words: list[GTWord], det_words: list[DetWord], task: str) -> dict:
    gt_polys = [_Poly(w.quad) for w in gt_words]
    det_polys = [_Poly(w.quad) for w in det_words]
    gt_trans, gt_dont_care = [], []
    for i, w in enumerate(gt_words):
        dont_care, text = w.text == DONT_CARE, w.text
        if task == "spotting" and not dont_care:
            if _in_dictionary(text):
                text = _dictionary_form(text)
            else:
                dont_care = True
        gt_trans.append(text)
        if dont_care:
            gt_dont_care.append(i)

    det_dont_care = []
    for j, d in enumerate(det_polys):
        for i in gt_dont_care:
            inside = _intersection(gt_polys[i], d) / d.area if d.area > 0 else 0.0
            if inside > AREA_PRECISION_CONSTRAINT:
                det_dont_care.append(j)
                break

    gt_skip, det_skip = set(gt_dont_care), set(det_dont_care)
    det_used = [False] * len(det_words)
    pairs, correct_count = [], 0
    for i, g in enumerate(gt_polys):
        if i in gt_skip:
            continue
        for j, d in enumerate(det_polys):
            if det_used[j] or j in det_skip:
                continue
            inter = _intersection(g, d)
            union = g.area + d.area - inter
            if union <= 0 or inter / union <= IOU_CONSTRAINT:
                continue
            det_used[j] = True
            if task == "detection":
                correct = True
            elif task == "spotting":
                correct = gt_trans[i].upper() == det_words[j].text.upper()
            else:
                correct = _e2e_transcription_match(gt_trans[i].upper(), det_words[j].text.upper())
            correct_count += correct
            pairs.append({"gt": i, "det": j, "correct": bool(correct)})
            break

    n_gt = len(gt_words) - len(gt_dont_care)
    n_det = len(det_words) - len(det_dont_care)
    precision, recall, hmean = _rates(correct_count, n_gt, n_det)
    return {
        "precision": precision,
        "recall": recall,
        "hmean": hmean,
        "matched": correct_count,
        "num_gt": n_gt,
        "num_det": n_det,
        "pairs": pairs,
        "gt_dont_care": gt_dont_care,
        "det_dont_care": det_dont_care,
    }


def evaluate(gt: dict[str, list[GTWord]], det: dict[str, list[DetWord]], task: str = "e2e") -> dict:
    """Score a submission against GT with the ICDAR 2015 protocol of `task`.

    `task` is 'detection' (Task 4.1), 'e2e' (Task 4.4 end-to-end) or 'spotting' (Task 4.4 word
    spotting). GT images missing from `det` count as empty submissions. Returns global precision,
    recall, hmean, matched (correct pairs), num_gt / num_det (care words, summed over images) and
    per_image results. Detections are matched in list order, as the official scripts read files.
    """
    if task not in TASKS:
        raise ValueError(f"task {task!r} not known (expected one of {', '.join(TASKS)})")
    unknown = [k for k in det if k not in gt]
    if unknown:
        raise ValueError(f"submission image {unknown[0]!r} is not in the GT ({len(unknown)} unknown ids, expected ids like {next(iter(gt), 'img_1')!r})")
    per_image = {}
    matched = num_gt = num_det = 0
    for image_id, gt_words in gt.items():
        r = _evaluate_image(gt_words, det.get(image_id, []), task)
        per_image[image_id] = r
        matched += r["matched"]
        num_gt += r["num_gt"]
        num_det += r["num_det"]
    # Global rates use 0 (not the per-image 1) when there is nothing to divide by, as the scripts do.
    recall = matched / num_gt if num_gt else 0.0
    precision = matched / num_det if num_det else 0.0
    hmean = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {
        "precision": precision,
        "recall": recall,
        "hmean": hmean,
        "matched": matched,
        "num_gt": num_gt,
        "num_det": num_det,
        "per_image": per_image,
    }
