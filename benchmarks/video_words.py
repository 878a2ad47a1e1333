"""Which words a `spotrt run --jsonl` file read, and in how many frames.

    python benchmarks/video_words.py out/sign.jsonl --words black,lives,matter

For each expected word: frames whose per-frame reading is exactly it, frames where a track's
stable (voted) reading is it, and frames with a near miss (one edit away). Also the records per
frame (exactly one each, processed or dropped) and the most common other readings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from spotrt.eval.lexicon import edit_distance


def summarize(lines, words: list[str]) -> dict:
    frames, dropped, seen = 0, Counter(), Counter()
    exact, stable, near = Counter(), Counter(), Counter()
    indices = []
    for line in lines:
        rec = json.loads(line)
        frames += 1
        indices.append((rec.get("source"), rec["frame"]))
        if "words" not in rec:
            dropped[rec.get("dropped", "?")] += 1
            continue
        texts = [w["text"] for w in rec["words"]]
        stables = [w.get("stable") for w in rec["words"]]
        seen.update(texts)
        for target in words:
            exact[target] += target in texts
            stable[target] += target in stables
            near[target] += any(edit_distance(t, target) <= 1 for t in texts)
    others = [(t, n) for t, n in seen.most_common() if t not in words][:10]
    return {"records": frames, "distinct_frames": len(set(indices)), "dropped": dict(dropped),
            "words": {w: {"exact": exact[w], "stable": stable[w], "within_1_edit": near[w]} for w in words},
            "other_readings": others}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("jsonl")
    p.add_argument("--words", required=True, help="comma-separated words to count (lower case)")
    p.add_argument("--json", help="also write the summary here")
    a = p.parse_args(argv)
    try:
        with open(a.jsonl, encoding="utf-8") as f:
            s = summarize(f, [w.strip().lower() for w in a.words.split(",") if w.strip()])
    except (OSError, ValueError, KeyError) as exc:
        print(f"video_words: {a.jsonl}: {exc}, expected the JSONL of spotrt run", file=sys.stderr)
        return 1
    print(f"{s['records']} records for {s['distinct_frames']} frames, dropped: {s['dropped'] or 'none'}")
    for w, c in s["words"].items():
        print(f"  {w:>10}: read in {c['exact']} frames, stable reading in {c['stable']}, "
              f"within one edit in {c['within_1_edit']}")
    print("  other readings: " + ", ".join(f"{t} ({n})" for t, n in s["other_readings"]))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(s, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
