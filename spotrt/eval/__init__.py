"""ICDAR 2015 Challenge 4 evaluation (detection, end-to-end, word spotting) and lexicon correction."""

from spotrt.eval.icdar15 import (
    DetWord,
    GTWord,
    evaluate,
    polygon_iou,
    read_gt_dir,
    read_gt_file,
    read_submission_dir,
    write_submission_dir,
)
from spotrt.eval.lexicon import apply_lexicon, edit_distance, lexicon_for, load_lexicon

__all__ = [
    "DetWord",
    "GTWord",
    "apply_lexicon",
    "edit_distance",
    "evaluate",
    "lexicon_for",
    "load_lexicon",
    "polygon_iou",
    "read_gt_dir",
    "read_gt_file",
    "read_submission_dir",
    "write_submission_dir",
]
