"""Runs the official RRC evaluation scripts on a list of (GT zip, submission zip, parameters) jobs.

Started by benchmarks/rrc_agreement.py with the interpreter that the official scripts need (the
one with Polygon installed), never imported by spotrt. Python 2.7 and 3 compatible on purpose: the
official Task 4.1 script is Python 2 only.

    <python> rrc_official_driver.py SCRIPTS_DIR JOBS_JSON OUT_JSON

SCRIPTS_DIR holds the official `script.py` and its `rrc_evaluation_funcs*.py`. Each job is
{"name", "g", "s", "p"}; it is scored through the scripts' own entry point
`rrc_evaluation_funcs.main_evaluation(p, default_evaluation_params, validate_data, evaluate_method)`
(what `python script.py -g=... -s=... -p=...` calls), so the scripts validate the files too. The
results (global metrics and, per image, the pairs and don't-care lists) go to OUT_JSON.

The process ends with os._exit: Polygon3 3.0.9 drops a reference to Py_True/Py_False it never
took (PyModule_AddObject "withNumPy"), and Python aborts while finalizing after an `import Polygon`.
"""

import json
import os
import sys


def main():
    scripts_dir, jobs_path, out_path = sys.argv[1:4]
    sys.path.insert(0, os.path.abspath(scripts_dir))
    import script  # the official evaluation script of this task

    funcs = script.rrc_evaluation_funcs
    with open(jobs_path) as f:
        jobs = json.load(f)
    out = []
    for job in jobs:
        p = {"g": job["g"], "s": job["s"], "p": job["p"]}
        res = funcs.main_evaluation(p, script.default_evaluation_params, script.validate_data,
                                    script.evaluate_method, show_result=False)
        per_sample = {}
        if res.get("calculated"):
            for key, v in res["per_sample"].items():
                per_sample[key] = {
                    "precision": v["precision"],
                    "recall": v["recall"],
                    "hmean": v["hmean"],
                    "pairs": [[d["gt"], d["det"], bool(d.get("correct", True))] for d in v["pairs"]],
                    "gtDontCare": list(v["gtDontCare"]),
                    "detDontCare": list(v["detDontCare"]),
                }
        method = res["method"] if res.get("calculated") else {}
        out.append({"name": job["name"], "calculated": bool(res.get("calculated")),
                    "message": res.get("Message", ""), "method": method, "per_sample": per_sample})
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    code = 0
    try:
        main()
    except BaseException as exc:  # report, then skip the interpreter's finalization (see above)
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
