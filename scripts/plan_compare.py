#!/usr/bin/env python3
"""loom plan's estimated epoch time against a measured run, stage by stage.

    scripts/plan_compare.py LOOM PIPELINE [loom options ...]

Plans PIPELINE with the options (`loom plan --json`), runs it with the same options into a
temporary folder, and prints one Markdown row per training stage: the estimate, the measured
epoch (training plus validation time in metrics.jsonl, the median over epochs 2 and later, or
epoch 1 when the stage has one) and their ratio. Exit 1 if any ratio is outside [0.5, 2].
With PLAN_RUN_DIR set, the run folder is kept there (to look at its report.html).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile


def seconds(s):
    return f"{s:.2f} s" if s >= 0.1 else f"{s * 1000:.3g} ms"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    loom, pipeline, opts = sys.argv[1], sys.argv[2], sys.argv[3:]
    plan = subprocess.run([loom, "plan", pipeline, "--json", *opts], check=True,
                          capture_output=True, text=True).stdout
    estimates = {}
    for line in plan.splitlines():
        j = json.loads(line)
        if j.get("epoch_s"):
            estimates[j["stage"]] = j
    with tempfile.TemporaryDirectory() as tmp:
        out = os.environ.get("PLAN_RUN_DIR") or os.path.join(tmp, "run")
        subprocess.run([loom, "run", pipeline, "--out", out, "--quiet", "--overwrite", *opts],
                       check=True)
        epochs = {}
        with open(os.path.join(out, "metrics.jsonl")) as f:
            for line in f:
                m = json.loads(line)
                if m.get("split") in ("train", "valid") and "time_s" in m:
                    per = epochs.setdefault(m["task"], {})
                    per[m["epoch"]] = per.get(m["epoch"], 0.0) + m["time_s"]
    name = os.path.splitext(os.path.basename(pipeline))[0]
    ok = True
    for stage, j in estimates.items():
        per = epochs.get(stage)
        if not per:
            print(f"| {name} | {stage} | no measured epoch |")
            ok = False
            continue
        later = [t for e, t in per.items() if e > 1] or list(per.values())
        measured = statistics.median(later)
        ratio = j["epoch_s"] / measured
        ok = ok and 0.5 <= ratio <= 2
        data = f"{j['train_images']:,} + {max(j['valid_images'], 0):,}"
        print(f"| {name} | {stage} | {data} | {seconds(j['epoch_s'])} | {seconds(measured)} | "
              f"{ratio:.2f} |", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
