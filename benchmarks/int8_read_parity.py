"""INT8 against FP32 on reading alone: the share of word crops both read the same, and each one's accuracy.

    python benchmarks/int8_read_parity.py export/model.portable.onnx export/model.int8.onnx --synthetic-crops 1000
    python benchmarks/int8_read_parity.py FP32.onnx INT8.onnx --crops ../shared/data/ic15_train_words

The INT8 graph reads crops through the read graph `spotrt calibrate` quantized beside it
(X.int8.read.onnx, with the spotting graph's ranges); the FP32 graph through its own read graph.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm  # noqa: E402

from spotrt.api import load_spotter  # noqa: E402
from spotrt.data.charset import normalize_text  # noqa: E402
from spotrt.errors import SpotrtError  # noqa: E402
from spotrt.fileio import write_bytes_atomic  # noqa: E402
from spotrt.imageops import read_image  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fp32")
    ap.add_argument("int8")
    ap.add_argument("--crops", metavar="DIR", help="a word-crop folder with gt.txt")
    ap.add_argument("--synthetic-crops", type=int, default=0, metavar="N", help="N held-out synthetic crops")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args(argv)
    try:
        if bool(a.crops) == bool(a.synthetic_crops > 0):
            raise SpotrtError("crops: found both or neither of --crops and --synthetic-crops, expected one")
        from spotrt.eval import crops as C

        if a.crops:
            items = [(read_image(p), label) for p, label, *_ in C.read_crop_set(a.crops)]
        else:
            items = [(img, label) for _, img, label, _ in C.synthetic_crops(a.synthetic_crops)]
        fp32 = load_spotter(a.fp32, "onnxruntime")
        int8 = load_spotter(a.int8, "onnxruntime")
        if int8.meta.get("spotrt_read_graph", "").find("int8") < 0:
            print(f"note: {a.int8} names the float read graph {int8.meta.get('spotrt_read_graph')!r}; "
                  "re-run spotrt calibrate to quantize it", file=sys.stderr)
        same = ok32 = ok8 = same_right = 0
        for img, label in tqdm(items, desc="read", unit="crop"):
            t32 = normalize_text(fp32.read(img)[0])
            t8 = normalize_text(int8.read(img)[0])
            same += t32 == t8
            ok32 += t32 == label
            ok8 += t8 == label
            same_right += t32 == t8 == label
    except SpotrtError as exc:
        print(f"int8_read_parity: error: {exc}", file=sys.stderr)
        return 1
    n = len(items)
    # parity split by whether FP32 reads the crop right: a crop the float model is unsure of flips
    # under any small change of its features, one it reads right should not
    r = {"crops": n, "parity": same / n, "fp32_accuracy": ok32 / n, "int8_accuracy": ok8 / n,
         "parity_where_fp32_right": same_right / max(ok32, 1),
         "parity_where_fp32_wrong": (same - same_right) / max(n - ok32, 1),
         "int8_read_graph": int8.meta.get("spotrt_read_graph")}
    print(f"{n} crops: INT8 reads the same text as FP32 on {100 * r['parity']:.1f} %; accuracy FP32 "
          f"{100 * r['fp32_accuracy']:.1f} %, INT8 {100 * r['int8_accuracy']:.1f} % (read graph {r['int8_read_graph']}); "
          f"the same on {100 * r['parity_where_fp32_right']:.1f} % of the crops FP32 reads right, "
          f"{100 * r['parity_where_fp32_wrong']:.1f} % of those it reads wrong")
    if a.json:
        write_bytes_atomic(a.json, (json.dumps(r, indent=1) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
