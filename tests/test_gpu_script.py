"""bench/gpu.sh, the GPU measurements README owes (#24), checked on CPU with --dry-run.

No GPU is lent while this is built, so the script's code paths are run here with tiny sizes:
every part writes its JSON, the distill part trains with paced and with TRL, the FSDP2 path
with one rank trains to the plain path's loss, and a part that cannot run says why.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu.sh"


def run_script(tmp_path: Path, *options: str, env: dict | None = None, timeout: float = 1800) -> tuple[subprocess.CompletedProcess, dict]:
    out, work = tmp_path / "out", tmp_path / "work"
    done = subprocess.run(
        [str(SCRIPT), "--dry-run", "--out", str(out), "--work", str(work), *options],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=ROOT,
    )
    results = {path.name.removesuffix("_gpu.json"): json.loads(path.read_text()) for path in out.glob("*_gpu.json")}
    return done, results


def test_the_dry_run_runs_every_part_and_writes_its_json(tmp_path):
    done, results = run_script(tmp_path)
    assert done.returncode == 0, done.stderr
    assert set(results) == {"prepare", "rollout_overhead", "distill", "fsdp"}, done.stderr
    assert all(result["dry_run"] for result in results.values())
    assert results["prepare"]["status"] == "ok" and results["prepare"]["vocab"] == 260
    rollout = results["rollout_overhead"]
    assert rollout["status"] == "skipped" and "vLLM engine takes a minute to start on CPU" in rollout["reason"]
    distill = results["distill"]
    assert distill["status"] == "ok", distill
    for side in ("paced", "trl"):
        assert distill[side]["status"] == "ok", distill[side]
        assert distill[side]["timed_steps"] == 3 and distill[side]["response_tokens_per_s"] > 0
        assert len(distill[side]["steps"]) == 4
    assert distill["speedup_vs_trl"] == pytest.approx(distill["paced"]["response_tokens_per_s"] / distill["trl"]["response_tokens_per_s"])
    # Every response is 32 tokens (31 digits and the end token) and a step has 4 of them.
    assert all(step["tokens"] == 4 * 32 for step in distill["paced"]["steps"])
    fsdp = results["fsdp"]
    assert fsdp["status"] == "ok", fsdp
    assert fsdp["same_final_loss"], (fsdp["plain"]["final_loss"], fsdp["fsdp_one_rank"]["final_loss"])
    assert fsdp["ratio_fsdp_vs_plain"] > 0


def test_a_part_that_cannot_start_still_writes_its_json_and_stops_the_run(tmp_path):
    """Without a working Python, prepare fails; its JSON says so, and nothing that needs its models runs."""
    done, results = run_script(tmp_path, env={"PYTHON": "false"}, timeout=60)
    assert done.returncode == 1
    assert set(results) == {"prepare"}
    assert results["prepare"]["status"] == "failed" and results["prepare"]["reason"] == "exited with status 1"
    assert "prepare failed, so the other parts cannot run" in done.stderr


def test_an_unknown_option_is_one_line_and_exit_code_2(tmp_path):
    done = subprocess.run([str(SCRIPT), "--bogus"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: bench/gpu.sh: unknown option --bogus (see --help)"


@pytest.mark.slow
def test_the_dry_run_with_vllm_on_cpu_measures_the_rollout_overhead(tmp_path):
    done, results = run_script(tmp_path, "--vllm-on-cpu")
    rollout = results["rollout_overhead"]
    assert rollout["status"] == "ok", (rollout, done.stderr)
    assert rollout["ratio_paced_vs_bare_vllm"] == pytest.approx(rollout["paced_vllm_tokens_per_s"] / rollout["bare_vllm_tokens_per_s"])
