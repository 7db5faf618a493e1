"""Numbers about a rollouts table: finish reasons, token counts, truncation and error rates."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from paced_curate.report import key_value_table, show


def rollout_summary(table: pa.Table) -> dict:
    """Counts and token statistics of a rollouts (or graded) table, JSON-ready."""
    samples = table.num_rows
    reasons = {str(r["values"]): int(r["counts"]) for r in pc.value_counts(table.column("finish_reason")).to_pylist()} if samples else {}
    tokens = table.column("completion_tokens")
    per_problem = pc.value_counts(table.column("problem_id")).field("counts") if samples else pa.array([], pa.int64())
    return {
        "problems": len(per_problem),
        "samples": samples,
        "samples_per_problem": {"min": pc.min(per_problem).as_py(), "max": pc.max(per_problem).as_py()} if samples else None,
        "finish_reasons": reasons,
        "truncation_rate": reasons.get("length", 0) / samples if samples else 0.0,
        "error_rate": reasons.get("error", 0) / samples if samples else 0.0,
        "completion_tokens": {
            "total": int(pc.sum(tokens).as_py() or 0),
            "mean": pc.mean(tokens).as_py() if samples else None,
            "max": pc.max(tokens).as_py() if samples else None,
        },
        "prompt_tokens_total": int(pc.sum(table.column("prompt_tokens")).as_py() or 0),
    }


def render_rollout_summary(summary: dict) -> None:
    """Print a rollout summary table on stderr."""
    rows = [
        ("problems", summary["problems"]),
        ("samples", summary["samples"]),
        ("finish reasons", ", ".join(f"{k} {v:,}" for k, v in sorted(summary["finish_reasons"].items()))),
        ("truncation rate", summary["truncation_rate"]),
        ("error rate", summary["error_rate"]),
        ("completion tokens", summary["completion_tokens"]["total"]),
        ("mean completion tokens", summary["completion_tokens"]["mean"]),
        ("prompt tokens", summary["prompt_tokens_total"]),
    ]
    show(key_value_table("rollouts", rows))
