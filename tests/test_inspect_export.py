"""`paced inspect` on every layout an export writes, `--weights-as copies` included (#26).

A trl export with weighted copies has no weight column (every row counts once); inspect used to
read that column and fail with "cut off mid-write?". It now reports the copies per problem.
"""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paced_curate.errors import InputError
from paced_curate.io import read_parquet
from tests.test_export import make_references
from tests.test_export_weighting import _copies_inputs, _export

FORMATS = ["native", "trl", "verl"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("target", ["folder", "shard"])
def test_inspect_reports_a_weighted_copies_export(cli, tmp_path, fmt, target):
    problems, weights_file, weights = _copies_inputs(tmp_path)
    references = make_references(tmp_path, {pid: ["correct"] for pid in weights}) if fmt == "trl" else None
    options = {"references": str(references)} if references else {}
    _, out = _export(tmp_path, problems, weights_file, format=fmt, weights_as="copies", copies=20, seed=3, **options)
    path = out if target == "folder" else out / "train" / "part-00000.parquet"
    result = cli("inspect", path, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = pq.read_table(out / "train").to_pylist()
    ids = [row["extra_info"]["problem_id"] if fmt == "verl" else row["problem_id"] for row in rows]
    per_problem = Counter(Counter(ids).values())
    assert report["stage"] == "export" and report["weights_as"] == "copies" and report["rows"] == len(rows) == 20
    assert report["problems"] == len(set(ids))
    assert report["copies_per_problem"]["counts"] == {str(k): v for k, v in sorted(per_problem.items())}
    assert sum(int(k) * v for k, v in report["copies_per_problem"]["counts"].items()) == 20
    assert report["weight_histogram"]["counts"][-1] == 20  # every row weighs 1
    rendered = cli("inspect", path)
    assert rendered.exit_code == 0 and "problems by number of copies (20 rows, each of weight 1)" in rendered.stderr, rendered.output


def test_inspect_of_a_column_export_keeps_its_weight_histogram(cli, tmp_path):
    problems, weights_file, _ = _copies_inputs(tmp_path)
    _, out = _export(tmp_path, problems, weights_file)
    report = json.loads(cli("inspect", out, "--json").stdout)
    assert report["weights_as"] == "column" and "copies_per_problem" not in report
    assert sum(report["weight_histogram"]["counts"]) == report["rows"]


def test_a_missing_column_is_named_not_blamed_on_the_file(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"prompt": ["a"], "problem_id": ["q"]}), path)
    with pytest.raises(InputError) as caught:
        read_parquet(path, ["weight"])
    assert str(caught.value) == f"{path}: has no column 'weight' (columns: prompt, problem_id)"
