"""The `grade` stage: a verdict for every rollout sample (`paced grade`).

    from paced_curate.grade import GradeConfig, run_grade, grade_table
    result = run_grade(GradeConfig(rollouts="rollouts/", output="graded/"))

Modules: answers.py (what counts as the answer: reasoning traces, the last box, answer phrases,
numbers, choice letters), graders.py (math, exact, numeric, choice, module:function), pool.py (worker processes
with a hard per-task deadline), runner.py (dedup, resume, output), metrics.py (summary and
avg@K / pass@k / maj@K for `paced inspect`).
"""

__all__ = ["GradeConfig", "GradeResult", "grade_table", "run_grade"]


def __getattr__(name: str):
    # Imported on first use: the grading workers import this package and need none of it.
    if name in __all__:
        from paced_curate.grade import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'paced_curate.grade' has no attribute {name!r}")
