"""Builders for the online PACED tests (#25): a real `paced weight` table from chosen counts, and a
native export of it that keeps weight-0 problems."""

from __future__ import annotations

from pathlib import Path

from paced_curate.export import ExportConfig, run_export
from paced_curate.io import write_table
from paced_curate.schema import GRADES, build_table
from paced_curate.weight import WeightConfig, run_weight
from tests.conftest import write_jsonl
from tests.test_schema import GRADE_ROW

PARITY = "tests.parity_grader:parity"
"""A grader plugin that calls about half of a random model's samples correct (tests/parity_grader.py)."""


def counts_export(tmp_path: Path, counts: dict[str, tuple[int, int]], prompts: dict[str, str] | None = None, answers: dict[str, str] | None = None,
                  name: str = "data", references: bool = True, keep_zero: bool = True, **weighting) -> Path:
    """A native export whose weights `paced weight` computed from `counts` (problem id -> (correct, samples)).

    The graded samples are built from the counts (correct first), weighed by `run_weight` with
    `weighting` (kernel, estimator, ...), and exported with `paced export` (weight-0 problems kept
    unless keep_zero is False; references '\\boxed{answer}' when asked).
    """
    prompts = prompts or {pid: f"What is {i} + {i}?" for i, pid in enumerate(counts)}
    answers = answers or {pid: str(2 * i) for i, pid in enumerate(counts)}
    problems = write_jsonl(tmp_path / f"{name}_problems.jsonl", [{"id": pid, "question": prompts[pid], "answer": answers[pid]} for pid in counts])
    rows = []
    for pid, (correct, samples) in counts.items():
        for index in range(samples):
            verdict = "correct" if index < correct else "incorrect"
            rows.append(GRADE_ROW | {"problem_id": pid, "sample_index": index, "prompt": prompts[pid], "answer": answers[pid], "verdict": verdict})
    graded = tmp_path / f"{name}_graded.parquet"
    write_table(build_table(rows, GRADES), str(graded), GRADES)
    weights = tmp_path / f"{name}_weights.parquet"
    run_weight(WeightConfig(graded=str(graded), output=str(weights), **weighting))
    teacher = None
    if references:
        samples = [GRADE_ROW | {"problem_id": pid, "prompt": prompts[pid], "answer": answers[pid], "completion": f"\\boxed{{{answers[pid]}}}"} for pid in counts]
        teacher = tmp_path / f"{name}_teacher.parquet"
        write_table(build_table(samples, GRADES), str(teacher), GRADES)
    output = tmp_path / name
    run_export(ExportConfig(problems=str(problems), weights=str(weights), references=None if teacher is None else str(teacher),
                            output=str(output), drop_zero=not keep_zero))
    return output
