"""examples/run_pipeline.sh runs as examples/README.md says, on MATH-style input from make_toy_inputs.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from paced_curate.export import read_export
from paced_curate.io import read_table
from paced_curate.schema import ROLLOUTS, WEIGHTS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_example_script_runs_the_whole_pipeline(tmp_path, toy_cache):
    env = os.environ | {"PACED_CACHE": str(toy_cache)}
    made = subprocess.run(
        [sys.executable, EXAMPLES / "make_toy_inputs.py", tmp_path / "toy", "--fast", "--count", "32"],
        capture_output=True, text=True, env=env, check=True,
    )
    inputs = json.loads(made.stdout.splitlines()[-1])
    first = json.loads(Path(inputs["problems"]).read_text().splitlines()[0])
    assert set(first) == {"unique_id", "problem", "answer", "level"}  # MATH's column names, not paced's

    sizes = {"TEMPLATE": "{prompt}\n", "K": "4", "MAX_TOKENS": "48", "STEPS": "2", "BATCH": "4", "LR": "1e-3", "ROLLOUT_ARGS": "--engine hf"}
    done = subprocess.run(
        ["bash", EXAMPLES / "run_pipeline.sh", inputs["problems"], inputs["student"], inputs["teacher"], tmp_path / "work"],
        capture_output=True, text=True, env=env | sizes | {"PACED": f"{sys.executable} -m paced_curate"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    work = tmp_path / "work"
    rollouts = read_table(str(work / "rollouts"), ROLLOUTS)
    assert rollouts.num_rows == 32 * 4 and rollouts.column("problem_id")[0].as_py().startswith("toy/")
    assert read_table(str(work / "weights.parquet"), WEIGHTS).num_rows == 32
    data = read_export(work / "data")
    assert data.num_rows > 0 and "reference" in data.column_names and "level" in data.column_names
    metrics = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["stage"] for m in metrics if m["kind"] == "train"] == ["fkl", "rkl"]
    assert (work / "run" / "final" / "model.safetensors").exists()


def test_the_example_script_explains_its_arguments():
    done = subprocess.run(["bash", EXAMPLES / "run_pipeline.sh"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("usage: ")
