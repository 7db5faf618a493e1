"""examples/trl_sft.py runs: built-in world -> rollout, grade, weight -> trl export -> PacedSFTTrainer."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_trl_example_trains_the_student_on_the_weighted_export(tmp_path, toy_cache):
    env = os.environ | {"PACED_CACHE": str(toy_cache)}
    sizes = ["--fast", "--count", "24", "--samples", "4", "--max-tokens", "48", "--max-steps", "2", "--batch-size", "4"]
    done = subprocess.run(
        [sys.executable, EXAMPLES / "trl_sft.py", tmp_path / "work", *sizes], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(printed["losses"]) == 2 and all(math.isfinite(loss) and loss > 0 for loss in printed["losses"])
    trained = Path(printed["trained"])
    assert (trained / "model.safetensors").exists()

    from safetensors.torch import load_file

    before, after = load_file(Path(printed["student"]) / "model.safetensors"), load_file(trained / "model.safetensors")
    assert any(not before[name].equal(after[name]) for name in before)  # the student was trained

    rows = pq.read_table(Path(printed["data"]) / "train").to_pylist()
    problems = {json.loads(line)["problem_id"]: json.loads(line) for line in (tmp_path / "work" / "problems.jsonl").read_text().splitlines()}
    assert rows and all(row["prompt"] == problems[row["problem_id"]]["prompt"] + "\n" for row in rows)  # the example's template
    assert sum(row["weight"] for row in rows) / len(rows) == pytest.approx(1.0)  # mean 1 over the trained rows
