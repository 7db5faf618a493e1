"""Stage schemas: round trips through Parquet and pipes, and one clear message per violation."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paced_curate.errors import SchemaError
from paced_curate.io import read_table, write_table
from paced_curate.schema import EXPORT, GRADES, PROBLEMS, ROLLOUTS, SCHEMA_VERSION, WEIGHTS, build_table, conform, read_metadata, stage_metadata

ROLLOUT_ROW = {
    "problem_id": "p1",
    "sample_index": 0,
    "prompt": "1+1=",
    "answer": "2",
    "completion": "\\boxed{2}",
    "finish_reason": "stop",
    "completion_tokens": 9,
    "prompt_tokens": 4,
    "error": None,
}
GRADE_ROW = ROLLOUT_ROW | {"extracted_answer": "2", "verdict": "correct", "grader": "math", "scored": True}
WEIGHT_ROW = {
    "problem_id": "p1",
    "n_samples": 8,
    "n_correct": 4,
    "n_excluded": 0,
    "n_scored": 8,
    "pass_rate": 0.5,
    "ci_low": 0.2,
    "ci_high": 0.8,
    "weight_raw": 0.25,
    "weight": 1.0,
}
EXPORT_ROW = {"problem_id": "p1", "prompt": "1+1=", "answer": "2", "weight": 1.0, "pass_rate": 0.5, "n_samples": 8, "n_correct": 4, "reference": "\\boxed{2}"}
CASES = [(ROLLOUTS, ROLLOUT_ROW), (GRADES, GRADE_ROW), (WEIGHTS, WEIGHT_ROW), (EXPORT, EXPORT_ROW), (PROBLEMS, {"problem_id": "p1", "prompt": "x", "answer": "1"})]


@pytest.mark.parametrize("spec,row", CASES, ids=[c[0].stage for c in CASES])
def test_round_trip_keeps_rows_types_and_metadata(tmp_path, spec, row):
    table = build_table([row, row | {"problem_id": "p2"}], spec)
    path = tmp_path / f"{spec.stage}.parquet"
    write_table(table, str(path), spec, provenance={"seed": 3})
    back = read_table(str(path), spec)
    assert back.to_pylist() == table.to_pylist()
    assert back.schema.remove_metadata() == table.schema.remove_metadata()
    meta = read_metadata(pq.read_schema(path))
    assert meta == {"schema_version": SCHEMA_VERSION, "stage": spec.stage, "provenance": {"seed": 3}}


def test_compatible_types_are_cast_on_read():
    table = pa.table(
        {name: pa.array([value], type=pa.large_string() if isinstance(value, str) else None) for name, value in WEIGHT_ROW.items()}
    )
    assert table.schema.field("n_samples").type == pa.int64()
    out = conform(table, WEIGHTS, "w.parquet")
    assert out.schema.field("n_samples").type == pa.int32()
    assert out.schema.field("problem_id").type == pa.string()


def _table(row: dict, **changes) -> pa.Table:
    data = {k: [v] for k, v in (row | changes).items() if v is not ...}
    return pa.table(data)


VIOLATIONS = [
    ("missing", _table(GRADE_ROW, verdict=..., grader=...), "g.parquet: not a valid grades table: missing columns 'verdict', 'grader'"),
    ("wrong type", _table(GRADE_ROW, scored="yes"), "g.parquet: not a valid grades table: column 'scored' has type string, expected bool"),
    ("bad value", _table(GRADE_ROW, verdict="maybe"), "g.parquet row 0: column 'verdict' has value 'maybe'; allowed: correct, incorrect, no_answer, truncated, timeout, error"),
    ("null", pa.table({k: pa.array([v], pa.string() if k == "problem_id" else None) for k, v in (GRADE_ROW | {"problem_id": None}).items()}), "g.parquet row 0: column 'problem_id' is null"),
]


@pytest.mark.parametrize("name,table,message", VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_violations_name_file_row_and_column(name, table, message):
    with pytest.raises(SchemaError) as caught:
        conform(table, GRADES, "g.parquet")
    assert str(caught.value) == message


def test_wrong_stage_and_wrong_version_are_refused():
    table = build_table([ROLLOUT_ROW], ROLLOUTS, stage_metadata("rollouts"))
    with pytest.raises(SchemaError, match=r"r.parquet: is a 'rollouts' table, expected a 'grades' table \(make one with 'paced grade'\)"):
        conform(table, GRADES, "r.parquet")
    future = table.replace_schema_metadata({b"paced.schema_version": b"99", b"paced.stage": b"rollouts"})
    with pytest.raises(SchemaError, match="written with paced schema version 99; this paced reads version 1"):
        conform(future, ROLLOUTS, "r.parquet")


def test_tables_without_passthrough_refuse_unknown_columns():
    with pytest.raises(SchemaError, match="w.parquet: not a valid weights table: unexpected column 'color'"):
        conform(_table(WEIGHT_ROW, color="red"), WEIGHTS, "w.parquet")


def test_build_table_refuses_rows_with_unexpected_keys():
    with pytest.raises(AssertionError, match="differ from the schema"):
        build_table([ROLLOUT_ROW, ROLLOUT_ROW | {"surprise": 1}], ROLLOUTS)
