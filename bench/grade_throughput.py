"""Grading throughput: `paced grade` (2 workers) against math-verify called sample by sample.

Two corpora of 20,000 samples (16 per problem), deterministic by seed:
- repeating: like real rollouts, each problem's samples end in 2-4 distinct boxed answers after
  varied reasoning text (a few have no box at all);
- distinct: every sample ends in a different final answer.

The baseline is how math-verify is usually called: in one process, for each sample,
`verify(parse(gold), parse(completion))` with default settings (gold wrapped in $...$ so that
bare LaTeX parses). It may be timed on a random subset (`--baseline-samples`) to bound the run
time; throughput is samples per second either way. paced is timed end to end through
`run_grade` (read the rollouts, grade, write the output). Passing needs >= 4x on the repeating
corpus and >= 1.7x on the distinct one.

    python bench/grade_throughput.py            # full size (several minutes on 2 cores)
    python bench/grade_throughput.py --quick    # 2,000 samples per corpus, to check it runs

Prints a table, then one JSON line last; writes bench/results/grade_throughput.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

REQUIRED = {"repeating": 4.0, "distinct": 1.7}
SAMPLES_PER_PROBLEM = 16
RESULTS = Path(__file__).resolve().parent / "results" / "grade_throughput.json"

SENTENCES = [
    "We have $x = {a}$, so $x + {b} = {c}$.",
    "Multiplying both sides by ${b}$ gives ${d}$.",
    "Let $f(x) = x^2 + {a}x + {b}$; then $f(1) = {e}$.",
    "The discriminant is ${a}^2 - 4 \\cdot {b}$, which is not a perfect square.",
    "Substituting back, the ratio is $\\frac{{{a}}}{{{b}}}$.",
    "First, note that the sum of the first {a} terms is {c}.",
    "Check: ${a} \\times {b} = {d}$, consistent with the constraint.",
    "Hmm, that does not look right, let me recompute the {a}-th term.",
]


def gold_answer(rng: random.Random) -> tuple[str, list[str], str]:
    """A gold answer, forms equal to it, and its kind."""
    kind = rng.choices(["int", "frac", "sqrt", "pi", "interval"], weights=[50, 20, 15, 10, 5])[0]
    if kind == "int":
        x = rng.randint(-50, 2000)
        return str(x), [str(x), f"{x}.0"], kind
    if kind == "frac":
        b = rng.choice([2, 4, 5, 8])
        a = rng.choice([n for n in range(1, 40) if math.gcd(n, b) == 1])
        return f"\\frac{{{a}}}{{{b}}}", [f"\\frac{{{a}}}{{{b}}}", f"{a}/{b}", f"\\dfrac{{{a}}}{{{b}}}", str(a / b)], kind
    if kind == "sqrt":
        k, m = rng.randint(2, 9), rng.choice([2, 3, 5, 6, 7, 10])
        return f"{k}\\sqrt{{{m}}}", [f"{k}\\sqrt{{{m}}}", f"\\sqrt{{{k * k * m}}}"], kind
    if kind == "pi":
        a, b = rng.choice([1, 3, 5, 7]), rng.choice([2, 4, 6])
        return f"\\frac{{{a}\\pi}}{{{b}}}", [f"\\frac{{{a}\\pi}}{{{b}}}", f"\\frac{{{a}}}{{{b}}}\\pi"], kind
    lo, hi = rng.randint(-9, 0), rng.randint(1, 9)
    return f"({lo}, {hi}]", [f"({lo}, {hi}]", f"({lo},{hi}]"], kind


def wrong_answer(gold: str, kind: str, number: int) -> str:
    """An answer of the same kind as `gold` that differs from it, built around `number`."""
    if kind == "int":
        return str(int(gold) + number)
    if kind == "frac":
        return f"\\frac{{{number}}}{{{gold.split('}{')[1].rstrip('}')}}}"
    if kind == "sqrt":
        return f"{number}\\sqrt{{{gold.split('{')[1].rstrip('}')}}}"
    if kind == "pi":
        return f"\\frac{{{number}\\pi}}{{3}}"
    return f"({gold[1:].split(',')[0]}, {number}]"


def reasoning(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(4, 12)):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        parts.append(rng.choice(SENTENCES).format(a=a, b=b, c=a + b, d=a * b, e=1 + a + b))
    return " ".join(parts)


def corpus(kind: str, num_samples: int, seed: int) -> list[dict]:
    """Rollout rows (see the module docstring for the two kinds)."""
    rng = random.Random(f"{seed}-{kind}")
    rows = []
    for p in range(num_samples // SAMPLES_PER_PROBLEM):
        gold, forms, gold_kind = gold_answer(rng)
        if kind == "repeating":
            finals = [rng.choice(forms)] if rng.random() < 0.6 else []
            while len(finals) < rng.randint(2, 4):
                candidate = wrong_answer(gold, gold_kind, rng.randint(1, 60))
                if candidate not in finals and candidate not in forms:
                    finals.append(candidate)
            weights = [rng.random() + 0.1 for _ in finals]
        for i in range(SAMPLES_PER_PROBLEM):
            if kind == "repeating":
                final = rng.choices(finals, weights=weights)[0]
            else:
                # Every (answer, gold) pair in the corpus is different.
                final = rng.choice(forms) if i == 0 and rng.random() < 0.5 else wrong_answer(gold, gold_kind, 3000 + len(rows))
            ending = "I could not finish this one." if kind == "repeating" and rng.random() < 0.03 else f"Therefore the answer is $\\boxed{{{final}}}$."
            rows.append(
                {
                    "problem_id": f"{kind}-{p:05d}", "sample_index": i, "prompt": f"Problem {p}", "answer": gold,
                    "completion": f"{reasoning(rng)}\n\n{ending}", "finish_reason": "stop",
                    "completion_tokens": 200, "prompt_tokens": 20, "error": None,
                }
            )
    return rows


def baseline(rows: list[dict]) -> tuple[float, list[bool]]:
    """math-verify sample by sample in this process: (seconds, correct per row)."""
    from math_verify import parse, verify

    started = time.perf_counter()
    verdicts = []
    for row in rows:
        verdicts.append(bool(verify(parse(f"${row['answer']}$"), parse(row["completion"]))))
    return time.perf_counter() - started, verdicts


def run_paced(rows: list[dict], workers: int, folder: Path):
    """Time `run_grade` end to end on `rows` written as a rollouts Parquet file."""
    from paced_curate.grade import GradeConfig, run_grade
    from paced_curate.io import read_table, write_table
    from paced_curate.schema import GRADES, ROLLOUTS, build_table

    rollouts = folder / "rollouts.parquet"
    write_table(build_table(rows, ROLLOUTS), str(rollouts), ROLLOUTS)
    started = time.perf_counter()
    result = run_grade(GradeConfig(rollouts=str(rollouts), output=str(folder / "graded"), workers=workers, overwrite=True))
    seconds = time.perf_counter() - started
    return seconds, result, read_table(str(folder / "graded"), GRADES).column("verdict").to_pylist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000, help="samples per corpus (16 per problem)")
    parser.add_argument("--baseline-samples", type=int, default=4000, help="random subset the baseline is timed on (0: all)")
    parser.add_argument("--workers", type=int, default=2, help="paced grading processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2,000 samples per corpus and a 500-sample baseline")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.baseline_samples = 2000, 500
    logging.basicConfig(level=logging.ERROR)

    from paced_curate.io import write_json
    from paced_curate.partdir import package_versions

    report: dict = {
        "benchmark": "grade_throughput",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": ["python", *sys.argv],
        "quick": args.quick,
        "cpu_count": os.cpu_count(),
        # Other processes on the machine take cores from the workers: record how busy it was.
        "load_average_before": os.getloadavg(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": package_versions(),
        "workers": args.workers,
        "seed": args.seed,
        "corpora": {},
    }
    table_rows = []
    for kind in ("repeating", "distinct"):
        rows = corpus(kind, args.samples, args.seed)
        timed = range(len(rows))
        if 0 < args.baseline_samples < len(rows):
            timed = sorted(random.Random(args.seed).sample(range(len(rows)), args.baseline_samples))
        base_seconds, base_verdicts = baseline([rows[i] for i in timed])
        with tempfile.TemporaryDirectory(prefix="paced-bench-") as folder:
            paced_seconds, result, verdicts = run_paced(rows, args.workers, Path(folder))
        base_rate = len(timed) / base_seconds
        paced_rate = len(rows) / paced_seconds
        speedup = paced_rate / base_rate
        agree = sum(base_verdicts[j] == (verdicts[i] == "correct") for j, i in enumerate(timed)) / len(timed)
        report["corpora"][kind] = {
            "samples": len(rows),
            "problems": len(rows) // SAMPLES_PER_PROBLEM,
            "distinct_final_answers": len({(r["answer"], r["completion"].rsplit("\n", 1)[-1]) for r in rows}),
            "baseline": {"samples_timed": len(timed), "subset": len(timed) < len(rows), "seconds": base_seconds, "samples_per_second": base_rate},
            "paced": {
                "seconds": paced_seconds, "samples_per_second": paced_rate, "distinct_pairs": result.distinct_pairs,
                "dedup_ratio": result.dedup_ratio, "verdicts": result.summary["verdicts"], "timeouts": result.timeouts,
            },
            "speedup": speedup,
            "required_speedup": REQUIRED[kind],
            "pass": speedup >= REQUIRED[kind],
            "verdict_agreement_with_baseline": agree,
        }
        table_rows.append(
            [kind, len(rows), f"{base_rate:.1f}", f"{paced_rate:.1f}", f"{result.dedup_ratio:.2f}", f"{speedup:.2f}x",
             f">= {REQUIRED[kind]}x", "yes" if speedup >= REQUIRED[kind] else "NO", f"{agree:.4f}"]
        )
    report["pass"] = all(c["pass"] for c in report["corpora"].values())
    report["load_average_after"] = os.getloadavg()
    # Plain text: rich would squeeze the columns to 80 characters when stdout is not a terminal.
    header = ["corpus", "samples", "baseline/s", "paced/s", "dedup", "speedup", "needed", "pass", "agreement"]
    widths = [max(len(str(row[i])) for row in [header, *table_rows]) for i in range(len(header))]
    print(f"grade throughput: {args.workers} workers, {os.cpu_count()} CPUs, load average {report['load_average_before'][0]:.2f} before")
    for row in [header, *table_rows]:
        print("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_json(report, args.output)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
