"""`paced inspect RUN_DIR`: what a `paced distill` run did, and for `--reweight online` how its weights moved (#25).

    report = inspect_run("runs/online")      # JSON-ready dict (what `paced inspect --json RUN_DIR` prints)
    render_run_inspection(report)            # rich tables and the start and end weight histograms, on stderr

Reads run.json and metrics.jsonl; an online run also has weights_start.parquet and
weights_final.parquet (`paced weight` tables), whose statistics and histograms are shown side by
side in time: the weights the run started from and the posterior it ended with.
"""

from __future__ import annotations

import json
from pathlib import Path

from paced_curate.distill.rundir import METRICS, RUN_FILE, WEIGHTS_TABLES
from paced_curate.errors import InputError

ONLINE_SUMS = ("samples", "correct", "probes", "entered", "left", "empty_steps", "refresh_samples", "refresh_s", "grader_s", "grader_wait_s")
"""Per-record counts that add up over a run's reweight records."""


def is_run_dir(path: str | Path) -> bool:
    """Whether `path` is a `paced distill` run directory (it holds run.json)."""
    return (Path(path) / RUN_FILE).is_file()


def inspect_run(path: str | Path) -> dict:
    """Summarise a run directory: settings, steps, the last evaluation and, for online runs, the weights at start and end.

    Raises:
        InputError: run.json is missing or not JSON.
    """
    from paced_curate.io import read_table
    from paced_curate.schema import WEIGHTS
    from paced_curate.weight import weight_statistics

    run_dir = Path(path)
    try:
        run = json.loads((run_dir / RUN_FILE).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{run_dir / RUN_FILE}: cannot read the run record: {error}") from None
    records = []
    if (run_dir / METRICS).exists():
        for line in (run_dir / METRICS).read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut off by a crash
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    online = [r for r in records if r.get("kind") == "reweight"]
    report = {
        "path": str(path), "stage": "distill", "settings": run.get("settings"), "total_steps": run.get("total_steps"),
        "steps_done": train[-1]["step"] if train else 0, "final_loss": train[-1]["loss"] if train else None,
        "finished": "result" in run, "last_eval": evals[-1] if evals else None,
    }
    if online:
        totals = {name: sum(r.get(name) or 0 for r in online) for name in ONLINE_SUMS}
        report["online"] = {"records": online, "totals": totals, "frontier": [[r["step"], r["frontier"]] for r in online]}
        weights = {}
        for label, name in zip(("start", "final"), WEIGHTS_TABLES):
            if (run_dir / name).exists():
                weights[label] = weight_statistics(read_table(str(run_dir / name), WEIGHTS))
        report["online"]["weights"] = weights
    return report


def render_run_inspection(report: dict) -> None:
    """Print the run summary, the online totals and the start and end histograms on stderr."""
    from paced_curate.report import key_value_table, say, show
    from paced_curate.weight.stats import pass_rate_chart, weight_chart

    settings = report.get("settings") or {}
    last = report.get("last_eval") or {}
    rows = [
        ("run directory", report["path"]), ("loss", settings.get("loss")), ("weights", settings.get("weights")),
        ("reweight", settings.get("reweight", "static")), ("steps", f"{report['steps_done']} of {report['total_steps']}"),
        ("finished", report["finished"]), ("final loss", report["final_loss"]),
        ("last evaluation", f"pass@1 {last['pass_at_1']} at step {last['step']}" if last.get("pass_at_1") is not None else "-"),
    ]
    show(key_value_table("paced distill run", rows))
    online = report.get("online")
    if not online:
        return
    totals = online["totals"]
    frontier = online["frontier"]
    show(key_value_table("online PACED", [
        ("frontier (problems with weight > 0)", f"{frontier[0][1]} at step {frontier[0][0]}, {frontier[-1][1]} at step {frontier[-1][0]}"),
        ("entered / left the frontier", f"{totals['entered']} / {totals['left']}"),
        ("samples graded (of them correct)", f"{totals['samples']:,} ({totals['correct']:,})"),
        ("probes of weight-0 problems", totals["probes"]), ("refresh samples (forward-KL stage)", totals["refresh_samples"]),
        ("grading seconds (of them waited for)", f"{totals['grader_s']:.1f} ({totals['grader_wait_s']:.1f})"),
        ("steps with an empty frontier", totals["empty_steps"]),
    ]))
    for label, stats in online["weights"].items():
        say(f"-- weights at the {'start' if label == 'start' else 'end (the final posterior, counts rounded)'}: "
            f"{stats['problems']:,} problems, {stats['zero_weight_problems']:,} at weight 0")
        say(pass_rate_chart(stats))
        say(weight_chart(stats))
