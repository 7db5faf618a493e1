"""Benchmark: `paced weight` on 10 million graded rows against a plain polars read of the file.

Generates a deterministic graded Parquet file (625,000 problems x 16 samples, every GRADES
column with short strings, 1M-row row groups) in bench/work/, then times, each in a fresh
subprocess so that peak memory is measured per side, `pl.read_parquet(file)` and
`paced weight file -o out.parquet`, three times each, and reports the medians. The bound
(issue #6): weighting within 2x of the read's wall time, peak memory under 3 GB.

    python bench/weight_scale.py                 # full size: 10M rows, writes bench/results/weight_scale.json
    python bench/weight_scale.py --quick         # 200k rows, a check that the script works
    python bench/weight_scale.py --rows 1000000 --repeats 1

Prints a table, then one JSON line last.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from paced_curate.partdir import package_versions  # noqa: E402
from paced_curate.schema import GRADES, stage_metadata  # noqa: E402

FULL_ROWS = 10_000_000
QUICK_ROWS = 200_000
SAMPLES_PER_PROBLEM = 16
ROW_GROUP = 1 << 20
TIME_BOUND = 2.0
MEMORY_BOUND_BYTES = 3_000_000_000
READ_SCRIPT = "import sys, polars as pl; frame = pl.read_parquet(sys.argv[1]); assert frame.height > 0"


def graded_chunk(first_problem: int, num_problems: int, rng: np.random.Generator) -> pa.Table:
    """`num_problems` problems x 16 samples of realistic graded rows."""
    k = SAMPLES_PER_PROBLEM
    problem = np.arange(first_problem, first_problem + num_problems)
    left, right = rng.integers(10, 1000, num_problems), rng.integers(10, 1000, num_problems)
    pass_rate = rng.beta(0.6, 0.6, num_problems)
    ids = pc.binary_join_element_wise("p", pc.utf8_lpad(pc.cast(pa.array(problem), pa.string()), 7, "0"), "")
    prompts = pc.binary_join_element_wise("What is ", pc.cast(pa.array(left), pa.string()), " + ", pc.cast(pa.array(right), pa.string()), "?", "")
    answers = pc.cast(pa.array(left + right), pa.string())
    repeat = pa.array(np.repeat(np.arange(num_problems), k))
    rows = num_problems * k
    truncated = rng.random(rows) < 0.03
    correct = (rng.random(rows) < np.repeat(pass_rate, k)) & ~truncated
    given = np.repeat(left + right, k) + np.where(correct, 0, rng.integers(1, 9, rows))
    given_text = pc.cast(pa.array(given), pa.string())
    completion = pc.binary_join_element_wise("Adding the numbers gives \\boxed{", given_text, "}.", "")
    verdict = np.where(truncated, "truncated", np.where(correct, "correct", "incorrect"))
    columns = {
        "problem_id": ids.take(repeat),
        "sample_index": pa.array(np.tile(np.arange(k, dtype=np.int32), num_problems)),
        "prompt": prompts.take(repeat),
        "answer": answers.take(repeat),
        "completion": completion,
        "finish_reason": pa.array(np.where(truncated, "length", "stop")),
        "completion_tokens": pa.array(rng.integers(12, 400, rows).astype(np.int32)),
        "prompt_tokens": pa.array(np.full(rows, 12, dtype=np.int32)),
        "error": pa.nulls(rows, pa.string()),
        "extracted_answer": pa.array(given_text.to_numpy(zero_copy_only=False), mask=truncated, type=pa.string()),
        "verdict": pa.array(verdict),
        "grader": pa.array(np.full(rows, "math")),
        "scored": pa.array(~truncated),
        "difficulty": pa.array(np.array(["easy", "medium", "hard"])[np.repeat(problem % 3, k)]),
    }
    schema = pa.schema([*GRADES.fields, pa.field("difficulty", pa.string())], metadata=stage_metadata("grades"))
    return pa.Table.from_arrays([columns[f.name].cast(f.type) for f in schema], schema=schema)


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """Write `rows` graded rows (rounded down to whole problems) to `path`, deterministically."""
    rng = np.random.default_rng(seed)
    problems = rows // SAMPLES_PER_PROBLEM
    per_chunk = ROW_GROUP // SAMPLES_PER_PROBLEM
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    writer = None
    for first in range(0, problems, per_chunk):
        chunk = graded_chunk(first, min(per_chunk, problems - first), rng)
        writer = writer or pq.ParquetWriter(tmp, chunk.schema, compression="zstd")
        writer.write_table(chunk, row_group_size=ROW_GROUP)
    writer.close()
    os.replace(tmp, path)


# A small launcher forks the command and reports its wall time and peak RSS. Forking from this
# script directly would count this script's memory too: Linux keeps the peak RSS of the forked
# copy across exec.
LAUNCHER = """
import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"wall": time.perf_counter() - started, "rss": usage.ru_maxrss * 1024, "rc": os.waitstatus_to_exitcode(status)}))
"""


def timed(command: list[str], log: Path) -> tuple[float, int]:
    """Run `command` in a fresh process: (wall seconds, peak RSS in bytes of that process)."""
    with open(log, "wb") as errors:
        report = subprocess.run([sys.executable, "-c", LAUNCHER, *command], stdout=subprocess.PIPE, stderr=errors, check=True)
    measured = json.loads(report.stdout)
    if measured["rc"] != 0:
        raise SystemExit(f"failed ({measured['rc']}): {' '.join(command)}\n{log.read_text()[-2000:]}")
    return measured["wall"], measured["rss"]


def hardware() -> dict:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor(),
    ) if Path("/proc/cpuinfo").exists() else platform.processor()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpu": model, "cpus": os.cpu_count(), "memory_gb": round(memory / 1024**3, 1), "platform": platform.platform()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=FULL_ROWS, help="graded rows to generate (default 10M)")
    parser.add_argument("--quick", action="store_true", help=f"check the script on {QUICK_ROWS:,} rows")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side; the median is reported")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/weight_scale.json at full size)")
    parser.add_argument("--regenerate", action="store_true", help="rewrite the input file even if it exists")
    args = parser.parse_args()
    rows = QUICK_ROWS if args.quick else args.rows
    work = ROOT / "bench" / "work"
    work.mkdir(parents=True, exist_ok=True)
    graded = work / f"graded_{rows}.parquet"
    if args.regenerate or not graded.exists():
        started = time.perf_counter()
        generate(graded, rows)
        print(f"generated {graded} ({graded.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    rows = pq.ParquetFile(graded).metadata.num_rows
    read_cmd = [sys.executable, "-c", READ_SCRIPT, str(graded)]
    weight_cmd = [sys.executable, "-m", "paced_curate", "weight", str(graded), "-o", str(work / "weights.parquet")]
    startup_cmd = [sys.executable, "-m", "paced_curate", "weight", "--help"]
    runs: dict[str, list[tuple[float, int]]] = {"read": [], "weight": [], "startup": []}
    for _ in range(args.repeats):
        # Alternate the two sides so that a slow spell of a shared machine hits both.
        runs["read"].append(timed(read_cmd, work / "read.log"))
        runs["weight"].append(timed(weight_cmd, work / "weight.log"))
    runs["startup"].append(timed(startup_cmd, work / "startup.log"))
    median = {side: statistics.median(wall for wall, _ in values) for side, values in runs.items()}
    peak = {side: max(rss for _, rss in values) for side, values in runs.items()}
    ratio = median["weight"] / median["read"]
    result = {
        "benchmark": "weight_scale",
        "rows": rows,
        "problems": rows // SAMPLES_PER_PROBLEM,
        "file_mb": round(graded.stat().st_size / 1e6, 1),
        "repeats": args.repeats,
        "read_s": round(median["read"], 3),
        "weight_s": round(median["weight"], 3),
        "cli_startup_s": round(median["startup"], 3),
        "ratio": round(ratio, 3),
        "ratio_bound": TIME_BOUND,
        "read_rows_per_s": round(rows / median["read"]),
        "weight_rows_per_s": round(rows / median["weight"]),
        "read_peak_rss_mb": round(peak["read"] / 1e6, 1),
        "weight_peak_rss_mb": round(peak["weight"] / 1e6, 1),
        "memory_bound_mb": round(MEMORY_BOUND_BYTES / 1e6, 1),
        "passed": bool(ratio <= TIME_BOUND and peak["weight"] < MEMORY_BOUND_BYTES),
        "all_runs_s": {side: [round(wall, 3) for wall, _ in values] for side, values in runs.items()},
        "command": " ".join(["python", *sys.argv]),
        "versions": package_versions() | {"python": platform.python_version()},
        "hardware": hardware(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    print(f"{'side':<22}{'median s':>10}{'rows/s':>14}{'peak RSS MB':>14}")
    print(f"{'polars read_parquet':<22}{median['read']:>10.2f}{rows / median['read']:>14,.0f}{peak['read'] / 1e6:>14,.0f}")
    print(f"{'paced weight':<22}{median['weight']:>10.2f}{rows / median['weight']:>14,.0f}{peak['weight'] / 1e6:>14,.0f}")
    print(f"{'(paced startup only)':<22}{median['startup']:>10.2f}{'':>14}{peak['startup'] / 1e6:>14,.0f}")
    print(
        f"{rows:,} rows: weight/read = {ratio:.2f} (bound {TIME_BOUND}), "
        f"weight peak {peak['weight'] / 1e9:.2f} GB (bound {MEMORY_BOUND_BYTES / 1e9:.0f} GB): "
        + ("PASS" if result["passed"] else "FAIL")
    )
    if rows < FULL_ROWS:
        print(f"(the bound is set for {FULL_ROWS:,} rows; below that, process start-up dominates both sides)")
    out = args.out or (ROOT / "bench" / "results" / "weight_scale.json" if rows >= FULL_ROWS else work / f"weight_scale_{rows}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
