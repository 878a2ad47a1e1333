"""`spotrt check` (spotrt/export/check.py): torch and both exported graphs run by Polygraphy's
Comparator, compared slot by slot."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime_extensions")
pytest.importorskip("polygraphy")

from polygraphy.comparator.struct import IterationResult, RunResults  # noqa: E402

from spotrt.export.check import compare, format_report, summarize  # noqa: E402


def test_check_runs_torch_and_both_graphs_on_the_same_inputs(exported_small, capsys):
    model, _, _ = exported_small
    res = compare(model, synthetic=2, input_size=(128, 256), threads=1)
    assert res["inputs"] == 2
    for kind in ("plugin", "portable"):
        r = res[kind]
        assert r["regions"] > 0
        assert r["count_equal_pct"] == r["transcriptions_equal_pct"] == r["boxes_within_1px_pct"] == 100.0
        assert r["max_abs_diff"]["boxes"] < 1e-2 and r["max_abs_diff"]["scores"] < 1e-3
    text = format_report(res)
    assert "2 inputs" in text and "| plugin   |" in text and "| portable |" in text
    assert capsys.readouterr().out == ""  # Polygraphy's own log stays quiet


def _outputs(boxes, tokens, count):
    k = len(boxes)
    return {"boxes": np.array([boxes], np.float32), "scores": np.full((1, k), 0.9, np.float32),
            "tokens": np.array([tokens], np.int32), "token_probs": np.ones((1, k, 2), np.float32),
            "count": np.array([count], np.int32)}


def test_summarize_counts_slots_that_differ():
    ref = _outputs([[0, 0, 10, 10], [20, 0, 30, 10], [0, 0, 0, 0]], [[1, 0], [2, 0], [0, 0]], 2)
    other = _outputs([[0, 0, 10.5, 10], [20, 0, 33, 10], [40, 0, 50, 10]], [[1, 0], [3, 0], [4, 0]], 3)
    results = RunResults([("torch", [IterationResult(ref, runner_name="torch")]),
                          ("plugin", [IterationResult(other, runner_name="plugin")])])
    res = summarize(results)
    r = res["plugin"]
    assert res["inputs"] == 1 and r["regions"] == 3 and r["count_equal_pct"] == 0.0
    assert r["boxes_within_1px_pct"] == pytest.approx(100 / 3)      # slot 0 only; slot 2 is torch's padding
    assert r["transcriptions_equal_pct"] == pytest.approx(100 / 3)
    assert r["max_abs_diff"]["boxes"] == pytest.approx(3.0)
