"""spotrt's ICDAR 2015 evaluator equals the official RRC scripts (a small run of
benchmarks/rrc_agreement.py: 3 perturbed submissions x 3 tasks on 30 ic15_dev images)."""

import importlib.util
import os
from pathlib import Path

import pytest

from conftest import ROOT, shared_data

DEFAULT_SCRIPTS = ROOT.parent / "rrc_scripts"


def _scripts_dir() -> Path:
    d = Path(os.environ.get("SPOTRT_RRC_SCRIPTS") or DEFAULT_SCRIPTS)
    if not (d / "4.1" / "script.py").is_file() or not (d / "4.4" / "script.py").is_file():
        pytest.skip(f"official RRC scripts not found in {d}: set SPOTRT_RRC_SCRIPTS to a folder laid out as "
                    f"benchmarks/README.md ('Agreement with the official RRC scripts') describes")
    return d


def _agreement_module():
    spec = importlib.util.spec_from_file_location("rrc_agreement", ROOT / "benchmarks" / "rrc_agreement.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_evaluator_equals_official_rrc_scripts(tmp_path, capsys):
    scripts = _scripts_dir()
    data = shared_data("ic15_dev")
    mod = _agreement_module()
    out_json = tmp_path / "agreement.json"
    # Bow-ties, words in don't-care regions, exact 0.5 constructs and everything else mixed.
    status = mod.main(["--rrc", str(scripts), "--data", str(data), "--images", "30",
                       "--only", "bowtie,dontcare_words,mixed_7", "--json", str(out_json)])
    out = capsys.readouterr().out
    assert status == 0, out
    import json

    report = json.loads(out_json.read_text())
    assert report["images"] == 30
    assert len(report["rows"]) == 9 and all(r["official"] for r in report["rows"])
    assert report["max_abs_diff"] <= 1e-9
    assert not report["problems"]
    # The run exercised exact 0.5 cases (don't-care shares) and scored them like the scripts.
    assert sum(v["dont_care_shares"] for v in report["exact_half_cases"].values()) > 0


def test_missing_scripts_folder_is_one_line(tmp_path, capsys):
    mod = _agreement_module()
    with pytest.raises(SystemExit) as exc:
        mod.main(["--rrc", str(tmp_path), "--images", "1"])
    msg = str(exc.value)
    assert "4.1/script.py" in msg and "\n" not in msg
