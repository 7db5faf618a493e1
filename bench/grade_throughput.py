"""Grading throughput: `paced grade` (2 workers) against math-verify called sample by sample.

Three corpora of 20,000 samples (16 per problem), deterministic by seed:
- repeating: like real rollouts, each problem's samples end in 2-4 distinct boxed answers after
  varied reasoning text (a few have no box at all);
- distinct: every sample ends in a different final answer;
- mixed: generations as other tools write them, in three JSONL files with their own field
  names (`id`, `generation`, `expected_answer`; no sample_index, no finish_reason): 10,000 math
  samples (R1-style `<think>` traces with boxes inside them, traces cut mid-thought, a second box
  after a first, a last box cut off, the Minerva "Final Answer: ..." line, chat-style markdown),
  5,000 multiple-choice samples (`(B)`, `**B**`, `\\boxed{E) text}`, `\\boxed{\\text{Answer: G}}`,
  "A or C") graded with `--grader choice`, and 5,000 numeric samples (`\\$9{,}500`, Unicode minus,
  units, GSM8K's `####`, the last number of a sentence) graded with `--grader numeric`. As in
  real rollouts (and `repeating`), a problem's wrong samples share 2-3 wrong answers, written
  in varied formats around varied reasoning. Each row is built with its true verdict, so the run also reports how often paced and math-verify agree
  with the truth. paced is timed from reading the JSONL to the graded output: `run_grade` (what
  `paced grade FILE.jsonl --grader G` runs) reads each file itself, recognising the NeMo-Skills
  field names (`paced_curate.samples`).

The baseline is how math-verify is usually called: in one process, for each sample,
`verify(parse(gold), parse(completion))` with default settings (gold wrapped in $...$ so that
bare LaTeX parses). It may be timed on a random subset (`--baseline-samples`) to bound the run
time; throughput is samples per second either way. paced is timed end to end through
`run_grade` (read the rollouts, grade, write the output). Passing needs >= 4x on the repeating
corpus, >= 1.7x on the distinct one and >= 2x on the mixed one.

    python bench/grade_throughput.py            # full size (several minutes on 2 cores)
    python bench/grade_throughput.py --quick    # 2,000 samples per corpus, to check it runs
    python bench/grade_throughput.py --corpora mixed --output bench/results/grade_throughput_mixed.json

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

REQUIRED = {"repeating": 4.0, "distinct": 1.7, "mixed": 2.0}
MIXED_SHARES = {"math": 0.5, "choice": 0.25, "numeric": 0.25}
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


# --- the mixed corpus: generations as other tools write them (see the module docstring) -----

LETTERS = "ABCDEFGHIJ"
OPTION_TEXT = ["42 meters", "the empty set", "a triangle", "none of these", "x = 3", "18 apples", "it doubles", "\\frac{1}{2}"]


def think(rng: random.Random, inner: str = "") -> str:
    """An R1-style reasoning trace body, with `inner` (say an abandoned box) somewhere in it."""
    return f"Okay, let me think. {reasoning(rng)} {inner} Wait, let me double-check. {reasoning(rng)}"


def math_generation(rng: random.Random, gold: str, forms: list[str], kind: str, wrong: list[str]) -> tuple[str, str]:
    """(completion, true verdict) for one math sample; `wrong`: the problem's usual wrong answers."""
    right = rng.random() < 0.5 or not wrong
    final = rng.choice(forms) if right else rng.choice(wrong)
    other = rng.choice(wrong or ["0"]) if right else rng.choice(forms)
    truth = "correct" if right else "incorrect"
    style = rng.choices(["r1", "r1_cut", "two_boxes", "box_cut", "minerva", "chat"], weights=[35, 10, 15, 5, 15, 20])[0]
    if style == "r1":
        # The trace tries another answer in a box; only the text after </think> counts.
        inner = "Maybe it is \\boxed{" + other + "}?"
        return f"<think>{think(rng, inner)}</think>\n\nThe answer is $\\boxed{{{final}}}$.", truth
    if style == "r1_cut":
        inner = "So far I get \\boxed{" + rng.choice(forms) + "}."
        return f"<think>{think(rng, inner)} Hmm, but", "no_answer"
    if style == "two_boxes":
        return f"{reasoning(rng)} So $\\boxed{{{other}}}$. No wait, I made an error: the answer is $\\boxed{{{final}}}$.", truth
    if style == "box_cut":
        return f"{reasoning(rng)} First guess $\\boxed{{{rng.choice(forms)}}}$, but recounting, the answer is \\boxed{{{final[:max(1, len(final) // 2)]}", "no_answer"
    if style == "minerva":
        return f"{reasoning(rng)}\nFinal Answer: The final answer is ${final}$. I hope it is correct.", truth
    return f"Sure! Here is the solution.\n\n**Step 1.** {reasoning(rng)}\n\n**Step 2.** {reasoning(rng)}\n\n**Final answer:** $\\boxed{{{final}}}$", truth


def choice_generation(rng: random.Random, gold: str, options: str) -> tuple[str, str]:
    """(completion, true verdict) for one multiple-choice sample."""
    letter = gold if rng.random() < 0.5 else rng.choice([x for x in options if x != gold])
    truth = "correct" if letter == gold else "incorrect"
    style = rng.choices(["paren", "bold", "boxed_text", "boxed_label", "several", "r1"], weights=[25, 25, 15, 10, 10, 15])[0]
    if style == "paren":
        return f"{reasoning(rng)} Therefore, the answer is ({letter}).", truth
    if style == "bold":
        return f"Let's compare the options one by one. {reasoning(rng)}\n\nThe correct answer is **{letter}**.", truth
    if style == "boxed_text":
        return f"{reasoning(rng)} $\\boxed{{{letter}) {rng.choice(OPTION_TEXT)}}}$", truth
    if style == "boxed_label":
        return f"{reasoning(rng)} \\boxed{{\\text{{Answer: {letter}}}}}", truth
    if style == "several":
        second = rng.choice([x for x in options if x != letter])
        return f"{reasoning(rng)} Answer: {letter} or {second}", "no_answer"
    decoy = rng.choice(options)
    inner = f"Option {decoy} looks right, " + "\\boxed{" + decoy + "}."
    return f"<think>{think(rng, inner)}</think>\nThe answer is **{letter}**.", truth


def number_text(rng: random.Random, value: int) -> str:
    """`value` written as people write numbers in LaTeX and prose."""
    sign = rng.choice(["-", "\u2212", "\u2013"]) if value < 0 else ""
    digits = str(abs(value))
    if len(digits) > 3:
        separator = rng.choice([",", "{,}", "\\,", ""])
        digits = f"{int(digits):,}".replace(",", separator)
    return sign + digits


def numeric_generation(rng: random.Random, gold: int, wrong: list[int]) -> tuple[str, str]:
    """(completion, true verdict) for one numeric sample; `wrong`: the problem's usual wrong answers."""
    value = gold if rng.random() < 0.5 else rng.choice(wrong)
    truth = "correct" if value == gold else "incorrect"
    written = number_text(rng, value)
    style = rng.choices(["dollars", "boxed", "units", "gsm8k", "prose", "r1"], weights=[15, 25, 15, 15, 15, 15])[0]
    if style == "dollars":
        return f"{reasoning(rng)} In total she pays $\\boxed{{\\${written}}}$.", truth
    if style == "boxed":
        return f"{reasoning(rng)} So the result is $\\boxed{{{written}}}$.", truth
    if style == "units":
        return f"{reasoning(rng)} The length is $\\boxed{{{written} \\text{{ meters}}}}$.", truth
    if style == "gsm8k":
        return f"{reasoning(rng)}\n#### {written}", truth
    if style == "prose":
        return f"{reasoning(rng)} So she has {written} apples left.", truth
    inner = "\\boxed{" + number_text(rng, gold + 7) + "} maybe?"
    return f"<think>{think(rng, inner)}</think>\nThe answer is $\\boxed{{{written}}}$.", truth


def mixed_corpus(num_samples: int, seed: int) -> dict[str, list[dict]]:
    """Generations per grader, as JSONL rows with other tools' field names plus the true verdict."""
    rng = random.Random(f"{seed}-mixed")
    out: dict[str, list[dict]] = {}
    for grader, share in MIXED_SHARES.items():
        rows = []
        for p in range(int(num_samples * share) // SAMPLES_PER_PROBLEM):
            # Like real rollouts (and the repeating corpus), wrong samples share a few wrong answers.
            if grader == "math":
                gold, forms, kind = gold_answer(rng)
                wrong = list(dict.fromkeys(wrong_answer(gold, kind, rng.randint(1, 99)) for _ in range(3)))
                wrong = [answer for answer in wrong if answer not in forms]  # \frac{a}{b} with the gold's a is not wrong
            elif grader == "choice":
                options = LETTERS[: rng.choice([4, 5, 10])]
                gold = rng.choice(options)
            else:
                gold = rng.choice([rng.randint(-50, 99), rng.randint(100, 20000)])
                # A sign flip among them: a dropped Unicode minus would make it a false "correct".
                wrong = sorted({gold + rng.choice([-1, 1]) * rng.randint(1, 500) for _ in range(2)} | ({-gold} if gold else set()))
            for _ in range(SAMPLES_PER_PROBLEM):
                if grader == "math":
                    completion, truth = math_generation(rng, gold, forms, kind, wrong)
                elif grader == "choice":
                    completion, truth = choice_generation(rng, gold, options)
                else:
                    completion, truth = numeric_generation(rng, gold, wrong)
                rows.append({"id": f"{grader}-{p:05d}", "generation": completion, "expected_answer": str(gold), "truth": truth})
        out[grader] = rows
    return out


def write_jsonl(rows: list[dict], path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps({k: v for k, v in row.items() if k != "truth"}, ensure_ascii=False) + "\n")


def run_mixed(files: dict[str, Path], workers: int, folder: Path):
    """Time paced on the JSONL files, each with its grader: (seconds, {grader: (result, verdicts)})."""
    from paced_curate.grade import GradeConfig, run_grade
    from paced_curate.io import read_table
    from paced_curate.schema import GRADES

    started = time.perf_counter()
    out = {}
    for grader, path in files.items():
        result = run_grade(GradeConfig(rollouts=str(path), output=str(folder / f"graded-{grader}"), grader=grader, workers=workers, overwrite=True))
        out[grader] = (result, read_table(str(folder / f"graded-{grader}"), GRADES).column("verdict").to_pylist())
    return time.perf_counter() - started, out


def mixed_report(args, report: dict) -> list:
    """Run the mixed corpus; fills report["corpora"]["mixed"] and returns its table row."""
    corpus_rows = mixed_corpus(args.samples, args.seed)
    everything = [row for rows in corpus_rows.values() for row in rows]
    timed = range(len(everything))
    if 0 < args.baseline_samples < len(everything):
        timed = sorted(random.Random(args.seed).sample(range(len(everything)), args.baseline_samples))
    base_rows = [{"answer": everything[i]["expected_answer"], "completion": everything[i]["generation"]} for i in timed]
    base_seconds, base_verdicts = baseline(base_rows)
    with tempfile.TemporaryDirectory(prefix="paced-bench-") as folder:
        files = {}
        for grader, rows in corpus_rows.items():
            files[grader] = Path(folder) / f"{grader}.jsonl"
            write_jsonl(rows, files[grader])
        paced_seconds, graded = run_mixed(files, args.workers, Path(folder))
    verdicts = [verdict for grader in corpus_rows for verdict in graded[grader][1]]
    truth = [row["truth"] for row in everything]
    base_rate, paced_rate = len(timed) / base_seconds, len(everything) / paced_seconds
    speedup = paced_rate / base_rate
    paced_right = sum(v == t for v, t in zip(verdicts, truth)) / len(truth)
    paced_right_timed = sum(verdicts[i] == truth[i] for i in timed) / len(timed)
    # math-verify gives a bool: right when it says correct exactly for the truly correct rows.
    base_right = sum(b == (truth[i] == "correct") for b, i in zip(base_verdicts, timed)) / len(timed)
    per_grader = {}
    for grader, rows in corpus_rows.items():
        result, grader_verdicts = graded[grader]
        per_grader[grader] = {
            "samples": len(rows), "distinct_pairs": result.distinct_pairs, "dedup_ratio": result.dedup_ratio,
            "verdicts": result.summary["verdicts"], "timeouts": result.timeouts,
            "true_verdicts": {v: sum(r["truth"] == v for r in rows) for v in ("correct", "incorrect", "no_answer")},
            "agreement_with_truth": sum(v == r["truth"] for v, r in zip(grader_verdicts, rows)) / len(rows),
        }
    report["corpora"]["mixed"] = {
        "samples": len(everything),
        "format": "three JSONL files (id, generation, expected_answer), one per grader",
        "graders": per_grader,
        "baseline": {"samples_timed": len(timed), "subset": len(timed) < len(everything), "seconds": base_seconds, "samples_per_second": base_rate,
                     "right_vs_truth": base_right},
        "paced": {"seconds": paced_seconds, "samples_per_second": paced_rate, "right_vs_truth": paced_right,
                  "right_vs_truth_on_baseline_subset": paced_right_timed},
        "speedup": speedup,
        "required_speedup": REQUIRED["mixed"],
        "pass": speedup >= REQUIRED["mixed"],
    }
    return ["mixed", len(everything), f"{base_rate:.1f}", f"{paced_rate:.1f}", "-", f"{speedup:.2f}x", f">= {REQUIRED['mixed']}x",
            "yes" if speedup >= REQUIRED["mixed"] else "NO", f"truth: paced {paced_right_timed:.3f}, math-verify {base_right:.3f}"]


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
    parser.add_argument("--corpora", default="repeating,distinct,mixed", help="comma-separated: repeating, distinct, mixed")
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
    for kind in args.corpora.split(","):
        if kind == "mixed":
            table_rows.append(mixed_report(args, report))
            continue
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
