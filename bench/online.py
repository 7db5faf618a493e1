"""Online PACED against static PACED and unweighted on the built-in world (#25), as pre-registered in
bench/online_prereg.md.

Six students per world: base (no training), unweighted (fkl-then-rkl on uniform weights), PACED rkl
and PACED fkl-then-rkl (static weights, the export that leaves weight-0 problems out), and online
PACED rkl and online PACED fkl-then-rkl (`--reweight online` on the export that keeps them, the
settings below); the same teacher, references, step budget and training seed within a world. Each
world is `demo.prepare_world` (its own pool, held-out sets disjoint from it, student rollouts,
references). Reported per world and method: accuracy on the held-out pool set, the hard set and the
probe, training seconds and, for the online students, samples graded, probes, refresh samples and
grading seconds. The comparison is paired over worlds: online minus static for each loss, on
held-out, hard and probe change, Student-t intervals, Holm-corrected as one family of six.

    .venv/bin/python bench/online.py --select            # settings selection on worlds 100-101 (bench/results/online_selection.json)
    .venv/bin/python bench/online.py                     # the registered run: worlds 0-7 (bench/results/online.json)
    .venv/bin/python bench/online.py --quick --worlds 100 # one world, fast sizes and models (a smoke run)

Finished students are kept in the work folder (one JSON per world and method), so a rerun after an
interruption resumes where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REPORTED_WORLDS = tuple(range(8))
"""The registered run's worlds (bench/online_prereg.md)."""
SELECTION_WORLDS = (100, 101)
"""Worlds the online settings were chosen on; never reported as results."""
HALFLIFE = 40
EXPLORE = 0.1
REFRESH_EVERY = 20
REFRESH_SAMPLES = 4
"""The registered online settings (chosen on SELECTION_WORLDS; bench/online_prereg.md)."""
DESIGN = 2
"""Bumped when online PACED changes in a way that changes its students (finished students of another design are trained again).
Design 1 cut weights below the least starting weight to 0; design 2 does not (bench/online_prereg.md)."""
GRID = [{"reweight_halflife": h, "explore": e} for h, e in ((10, 0.1), (40, 0.1), (160, 0.1), (40, 0.02))]
"""The settings --select compares (online PACED rkl, mean held-out accuracy over the selection worlds)."""


def methods(halflife: int, explore: float) -> dict[str, tuple[str, str, dict]]:
    """name -> (export, loss, extra distill settings)."""
    online = {"reweight": "online", "reweight_halflife": halflife, "explore": explore}
    return {
        "unweighted": ("unweighted", "fkl-then-rkl", {}),
        "PACED rkl": ("paced", "rkl", {}),
        "online PACED rkl": ("paced keep-zero", "rkl", online),
        "PACED fkl-then-rkl": ("paced", "fkl-then-rkl", {}),
        "online PACED fkl-then-rkl": ("paced keep-zero", "fkl-then-rkl", online | {"reweight_every": REFRESH_EVERY, "reweight_samples": REFRESH_SAMPLES}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--select", action="store_true", help="the settings selection on the selection worlds")
    parser.add_argument("--worlds", type=int, nargs="*", default=None, help="override the worlds")
    parser.add_argument("--only", nargs="*", default=None, help="train only these methods (the budget measurement)")
    parser.add_argument("--quick", action="store_true", help="fast sizes and models")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: one core of the shared machine)")
    parser.add_argument("--workdir", default=str(ROOT / "bench" / "work" / "online"))
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from paced_curate.demo import DemoConfig

    started = time.perf_counter()
    worlds = args.worlds if args.worlds is not None else (SELECTION_WORLDS if args.select else REPORTED_WORLDS)
    rows = []
    for world in worlds:
        work = Path(args.workdir) / f"world{world}"
        base = DemoConfig.small(str(work), world) if args.quick else DemoConfig(workdir=str(work), seed=world)
        config = dataclasses.replace(base, methods=("unweighted", "PACED rkl", "PACED fkl-then-rkl"), engine="hf")
        if args.select:
            rows += run_world(config, world, {f"online PACED rkl h{g['reweight_halflife']} e{g['explore']}":
                                              ("paced keep-zero", "rkl", {"reweight": "online", **g}) for g in GRID} | {"PACED rkl": methods(0, 0)["PACED rkl"]})
        else:
            chosen = methods(HALFLIFE, EXPLORE)
            rows += run_world(config, world, {name: chosen[name] for name in (args.only or chosen)})
    output = Path(args.output or ROOT / "bench" / "results" / ("online_selection.json" if args.select else "online.json"))
    result = {"benchmark": "online", "mode": "select" if args.select else "registered", "worlds": list(worlds), "rows": rows,
              "settings": {"halflife": HALFLIFE, "explore": EXPLORE, "refresh_every": REFRESH_EVERY, "refresh_samples": REFRESH_SAMPLES},
              "summary": summarise(rows, args.select), "seconds": time.perf_counter() - started, "command": " ".join(sys.argv),
              "versions": __import__("paced_curate.partdir", fromlist=["package_versions"]).package_versions(),
              "hardware": {"cpus": os.cpu_count(), "torch_threads": args.threads, "platform": platform.platform()}, "date": time.strftime("%Y-%m-%d")}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    show(result["summary"], args.select)
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}))


def run_world(config, world: int, chosen: dict) -> list[dict]:
    """Prepare the world (once), then train and evaluate each method not finished before; one row per student."""
    from paced_curate.demo import evaluate

    work = Path(config.workdir)
    done_dir = work / "students"
    done_dir.mkdir(parents=True, exist_ok=True)
    stamp = json.loads(json.dumps(dataclasses.asdict(config))) | {"design": DESIGN}
    rows = []
    prepared = None
    for name in ["base", *chosen]:
        done = done_dir / f"{name.replace(' ', '_')}.json"
        if done.exists() and json.loads(done.read_text())["config"] == stamp | {"method": name, "spec": _spec(chosen.get(name))}:
            rows.append(json.loads(done.read_text())["row"])
            continue
        if prepared is None:
            prepared = prepare(config, world, stamp)
        if name == "base":
            row = {"method": "base", "world": world, "seed": world, "train_tokens": 0, "teacher_tokens": 0, "curve": []}
            row |= evaluate(prepared.student, prepared.files, config, world)
        else:
            row = train(config, prepared, world, name, *chosen[name])
        done.write_text(json.dumps({"config": stamp | {"method": name, "spec": _spec(chosen.get(name))}, "row": row}) + "\n")
        rows.append(row)
    return rows


def prepare(config, world: int, stamp: dict):
    """`demo.prepare_world` and the keep-zero PACED export, or what an earlier run of this bench prepared for the same config."""
    from paced_curate.demo import Prepared, prepare_world

    work = Path(config.workdir)
    record = work / "prepared.json"
    if record.exists() and json.loads(record.read_text())["config"] == stamp:
        saved = json.loads(record.read_text())["prepared"]
        return Prepared(work=Path(saved["work"]), files={k: Path(v) for k, v in saved["files"].items()}, teacher=Path(saved["teacher"]),
                        student=Path(saved["student"]), exports={k: Path(v) for k, v in saved["exports"].items()},
                        teacher_tokens=saved["teacher_tokens"], references=saved["references"])
    print(f"== world {world}: preparing", file=sys.stderr)
    prepared = prepare_world(config, work)
    prepared.exports["paced keep-zero"] = keep_zero_export(prepared, config)
    saved = {"work": str(prepared.work), "files": {k: str(v) for k, v in prepared.files.items()}, "teacher": str(prepared.teacher),
             "student": str(prepared.student), "exports": {k: str(v) for k, v in prepared.exports.items()},
             "teacher_tokens": prepared.teacher_tokens, "references": prepared.references}
    record.write_text(json.dumps({"config": stamp, "prepared": saved}) + "\n")
    return prepared


def _spec(spec) -> list | None:
    return None if spec is None else json.loads(json.dumps(spec))


def keep_zero_export(prepared, config) -> Path:
    """The PACED weights exported with their weight-0 problems (what online PACED can let back in)."""
    from paced_curate.export import ExportConfig, run_export

    output = prepared.work / "data_paced_keep_zero"
    run_export(ExportConfig(problems=str(prepared.files["pool"]), weights=str(prepared.work / "weights_paced.parquet"), output=str(output),
                            references=str(prepared.work / "teacher_graded_all.parquet"), seed=config.seed, overwrite=True, drop_zero=False))
    return output


def train(config, prepared, world: int, name: str, export: str, loss: str, extra: dict) -> dict:
    """Distill one student as `demo.distill` does (the same budget, evaluation curve and settings), plus `extra`; evaluate it."""
    from paced_curate.demo import DEMO_TEMPLATE, MAX_TOKENS, evaluate
    from paced_curate.distill import DistillConfig, run_distill
    from paced_curate.distill.config import DistillConfig as Fields

    fields = Fields.__dataclass_fields__
    evaluation = dict(eval_problems=str(prepared.files["heldout"]), eval_every=config.curve_every, eval_samples=config.eval_samples,
                      eval_max_tokens=MAX_TOKENS, eval_workers=1) | ({"eval_overlap": "error"} if "eval_overlap" in fields else {})
    output = prepared.work / "runs" / f"{name.replace(' ', '_')}-seed{world}"
    started = time.perf_counter()
    result = run_distill(DistillConfig(
        shards=str(prepared.exports[export]), student=str(prepared.student), teacher=str(prepared.teacher), output=str(output), loss=loss,
        max_steps=config.distill_steps, batch_size=config.batch_size, lr=config.lr, seed=world, overwrite=True, warmup_steps=10,
        template=DEMO_TEMPLATE, chat_template="off", rkl_max_tokens=MAX_TOKENS, checkpoint_every=0, log_every=max(config.distill_steps // 2, 1),
        **evaluation, **extra,
    ))
    seconds = time.perf_counter() - started
    weighting = "paced" if export.startswith("paced") else export
    row = {"method": name, "world": world, "seed": world, "train_tokens": result.response_tokens, "teacher_tokens": prepared.teacher_tokens[weighting],
           "curve": [(r["step"], r["pass_at_1"]) for r in result.evaluations], "train_seconds": seconds, "settings": extra}
    if extra.get("reweight") == "online":
        records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
        online = [r for r in records if r["kind"] == "reweight"]
        row["online"] = {key: sum(r.get(key) or 0 for r in online)
                         for key in ("samples", "correct", "probes", "refresh_samples", "refresh_s", "grader_s", "grader_wait_s", "entered", "left", "empty_steps")}
        row["online"] |= {"frontier_start": online[0]["frontier"], "frontier_end": online[-1]["frontier"], "problems": online[0]["problems"],
                          "frontier": [[r["step"], r["frontier"]] for r in online]}
    row |= evaluate(Path(result.final_model), prepared.files, config, world)
    print(f"{name} (world {world}): heldout {row['heldout']:.3f}, hard {row['hard']:.3f}, probe {row['probe']:.3f}, {seconds:.0f} s", file=sys.stderr)
    return row


PAIRS = (("online PACED rkl", "PACED rkl"), ("online PACED fkl-then-rkl", "PACED fkl-then-rkl"))
FAMILY_METRICS = ("heldout", "hard", "probe_change")


def summarise(rows: list[dict], select: bool) -> dict:
    """Per method: mean and 95% interval of each metric and of the cost; the registered family (online - static) with Holm."""
    from paced_curate.comparison import interval, summarise as per_method

    summary = {"methods": per_method(rows)["methods"], "cost": {}}
    for method in summary["methods"]:
        chosen = [r for r in rows if r["method"] == method]
        summary["cost"][method] = {"train_seconds": interval([r.get("train_seconds") for r in chosen])}
        if chosen and "online" in chosen[0]:
            for key in chosen[0]["online"]:
                if key != "frontier":
                    summary["cost"][method][key] = interval([r["online"][key] for r in chosen])
    if select:
        return summary
    summary["family"] = family(rows)
    return summary


def family(rows: list[dict], alpha: float = 0.05) -> dict:
    """Online minus static, paired over worlds, per loss and metric; Student-t p-values Holm-corrected over the family."""
    try:
        from paced_curate.comparison import holm, paired_t
    except ImportError:  # comparison.py before #21's Holm correction: no family
        return {"alpha": alpha, "m": 0, "tests": []}

    by_key = {(r["world"], r["method"]): r for r in rows}
    base = {r["world"]: r for r in rows if r["method"] == "base"}
    tests = []
    for online, static in PAIRS:
        for metric in FAMILY_METRICS:
            diffs = []
            for world in sorted(base):
                a, b = by_key.get((world, online)), by_key.get((world, static))
                if a is None or b is None:
                    continue
                value = (lambda r: r["probe"] - base[world]["probe"]) if metric == "probe_change" else (lambda r: r[metric])
                diffs.append(value(a) - value(b))
            tests.append({"online": online, "static": static, "metric": metric, "values": diffs} | paired_t(diffs))
    adjusted = holm([t["p"] for t in tests])
    m = sum(1 for t in tests if t["p"] is not None)
    for test, p_holm in zip(tests, adjusted):
        wide = paired_t(test["values"], confidence=1 - alpha / m) if m else {}
        test |= {"p_holm": p_holm, "finding": p_holm is not None and p_holm <= alpha, "low_family": wide.get("low"), "high_family": wide.get("high")}
    return {"alpha": alpha, "m": m, "tests": tests}


def show(summary: dict, select: bool) -> None:
    from paced_curate.comparison import _ci
    from paced_curate.report import rows_table
    from paced_curate.report import show as print_table

    methods_ = summary["methods"]
    table = [[name, _ci(m["heldout"]), _ci(m["hard"]), _ci(m["probe_change"], signed=True),
              f"{summary['cost'][name]['train_seconds']['mean'] or 0:.0f}"] for name, m in methods_.items()]
    print_table(rows_table("accuracy, mean [95% interval] over worlds", ["student", "held-out", "hard", "probe change", "train s"], table))
    if not select and summary.get("family"):
        tests = summary["family"]["tests"]
        table = [[f"{t['online']} - {t['static']}", t["metric"], _ci({"mean": t["mean"], "low": t["low"], "high": t["high"]}, signed=True),
                  "n/a" if t["p"] is None else f"{t['p']:.4f}", "n/a" if t["p_holm"] is None else f"{t['p_holm']:.4f}" + (" *" if t["finding"] else "")]
                 for t in tests]
        print_table(rows_table("online - static, paired over worlds: mean [95% interval], p, Holm p", ["pair", "metric", "difference", "p", "Holm p"], table))


if __name__ == "__main__":
    main()
