"""How many evaluation problems of the built-in worlds are training problems (#21), before and after the fix.

For each world the demo and the benches use (worlds 0-15 at the demo's full and --fast sizes,
and worlds 0-9 at bench/adaptive.py's 240-problem pool), counts the heldout, hard and probe
problems that equal a pool problem: exactly, and after `contamination.normalise_prompt`
(operand order, spacing, case); under the sets as drawn before #21 (`legacy_sets`: the pool
from `make_mixture(10w+1)`, the held-out set from `make_mixture(10w+2)`, whose skill streams
start 7 seeds later, so held-out item i was pool item i + 7) and as `demo.problem_sets` draws
them now. Also: how many evaluation items the fix redrew, and how many evaluation problems occur
in the models' pretraining data (`toy.pretrain.training_problems`), which this fix leaves as it is.

    .venv/bin/python bench/world_overlap.py          # about 40 s

Prints a table, then one JSON line; writes bench/results/world_overlap.json.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EVAL = ("heldout", "hard", "probe")


def legacy_sets(config) -> dict:
    """The sets as `demo.write_problem_sets` drew them before #21 (kept here to measure the fault)."""
    from paced_curate.toy.world import make_mixture, make_problems, make_skill_problems

    shares = {"add": 1 - config.beyond_share, "mul": config.beyond_share}
    base = config.seed * 10
    return {
        "pool": make_mixture(base + 1, config.num_problems, shares, config.pool_terms, prefix="pool"),
        "heldout": make_mixture(base + 2, config.num_eval, shares, config.pool_terms, prefix="heldout"),
        "hard": make_problems(base + 3, config.num_eval, config.hard_terms, prefix="hard"),
        "probe": make_skill_problems("sub", base + 4, config.num_eval, prefix="probe"),
    }


def overlap(sets: dict) -> dict:
    from paced_curate.contamination import normalise_prompt

    exact = {p.prompt for p in sets["pool"]}
    normal = {normalise_prompt(p.prompt) for p in sets["pool"]}
    return {name: {"exact": sum(p.prompt in exact for p in sets[name]), "normalised": sum(normalise_prompt(p.prompt) in normal for p in sets[name]),
                   "size": len(sets[name])} for name in EVAL}


def redrawn(config, sets: dict) -> int:
    """Evaluation items the fix replaced: first draws of each stream whose normalised prompt is a pool prompt."""
    from paced_curate.contamination import normalise_prompt
    from paced_curate.toy.world import STREAM_ITEMS, make_skill_problems, split_counts, stream_seed

    pool = {normalise_prompt(p.prompt) for p in sets["pool"]}
    shares = {"add": 1 - config.beyond_share, "mul": config.beyond_share}
    draws = [make_skill_problems(skill, stream_seed(config.seed, "heldout", skill), n, config.pool_terms, max_items=STREAM_ITEMS)
             for skill, n in split_counts(config.num_eval, shares).items()]
    draws.append(make_skill_problems("add", stream_seed(config.seed, "hard", "add"), config.num_eval, config.hard_terms, max_items=STREAM_ITEMS))
    draws.append(make_skill_problems("sub", stream_seed(config.seed, "probe", "sub"), config.num_eval, max_items=STREAM_ITEMS))
    return sum(normalise_prompt(p.prompt) in pool for problems in draws for p in problems)


def main() -> None:
    from paced_curate.contamination import normalise_prompt
    from paced_curate.demo import DemoConfig, problem_sets
    from paced_curate.partdir import package_versions
    from paced_curate.toy.pretrain import training_problems
    from paced_curate.toy.zoo import student_spec, teacher_spec

    started = time.perf_counter()
    kinds = {
        "full": [DemoConfig(seed=w) for w in range(16)],
        "fast": [DemoConfig.small("x", w) for w in range(16)],
        "adaptive": [DemoConfig(seed=w, num_problems=240) for w in range(10)],
    }
    pretraining = {}
    for fast in (False, True):
        for spec in (teacher_spec(fast), student_spec(fast)):
            pretraining[spec.name] = {normalise_prompt(p.prompt) for p in training_problems(spec)}
    results = {}
    for kind, configs in kinds.items():
        models = ("teacher-fast", "student-fast") if kind == "fast" else ("teacher", "student")
        before, after, pretrained = Counter(), Counter(), Counter()
        worlds, replaced = [], 0
        for config in configs:
            old, new = overlap(legacy_sets(config)), problem_sets(config)
            now = overlap(new)
            replaced += redrawn(config, new)
            worlds.append({"world": config.seed, "before": old, "after": now})
            for name in EVAL:
                for key in ("exact", "normalised", "size"):
                    before[name, key] += old[name][key]
                    after[name, key] += now[name][key]
                for model in models:
                    pretrained[name, model] += sum(normalise_prompt(p.prompt) in pretraining[model] for p in new[name])
        results[kind] = {
            "worlds": [c.seed for c in configs],
            "sizes": {"pool": configs[0].num_problems, "eval": configs[0].num_eval, "pool_terms": configs[0].pool_terms, "hard_terms": configs[0].hard_terms},
            "before": {name: {key: before[name, key] for key in ("exact", "normalised", "size")} for name in EVAL},
            "after": {name: {key: after[name, key] for key in ("exact", "normalised", "size")} for name in EVAL},
            "redrawn": replaced,
            "in_pretraining": {name: {model: pretrained[name, model] for model in models} for name in EVAL},
            "per_world": worlds,
        }
    print(f"{'worlds':<10} {'set':<8} {'before: exact':>14} {'normalised':>11} {'after: normalised':>18} {'in student pretraining':>23} {'in teacher pretraining':>23}", file=sys.stderr)
    for kind, r in results.items():
        models = ("teacher-fast", "student-fast") if kind == "fast" else ("teacher", "student")
        for name in EVAL:
            b, a, size = r["before"][name], r["after"][name], r["after"][name]["size"]
            print(f"{kind:<10} {name:<8} {b['exact']:>8}/{b['size']:<5} {b['normalised']:>5}/{b['size']:<5} {a['normalised']:>12}/{size:<5} "
                  f"{r['in_pretraining'][name][models[1]]:>17}/{size:<5} {r['in_pretraining'][name][models[0]]:>17}/{size:<5}", file=sys.stderr)
        print(f"{kind:<10} redrawn by the fix: {r['redrawn']} evaluation items", file=sys.stderr)
    out = {
        "benchmark": "world_overlap",
        "results": results,
        "seconds": time.perf_counter() - started,
        "command": "bench/world_overlap.py " + " ".join(sys.argv[1:]),
        "versions": package_versions(),
        "hardware": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
    }
    path = ROOT / "bench" / "results" / "world_overlap.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({kind: {"before": r["before"], "after": r["after"], "redrawn": r["redrawn"]} for kind, r in results.items()}))


if __name__ == "__main__":
    main()
