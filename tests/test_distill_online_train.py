"""`paced distill --reweight online` end to end on the tiny models (#25): every sample graded and counted,
records, weights tables, resume, the forward-KL refresh, and the settings and exports it refuses.

The random tiny models cannot do arithmetic, so these runs grade with a real plugin that calls
about half of their samples correct (`tests/parity_grader.py`); the built-in models' runs are
in `test_distill_online_world.py`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from paced_curate.distill import DistillConfig, run_distill
from paced_curate.errors import ConfigError
from paced_curate.io import read_table
from paced_curate.schema import WEIGHTS
from tests.online_helpers import PARITY, counts_export
from tests.test_distill_data import SHORT, make_export, models, one_torch_thread  # noqa: F401 (fixtures)

COUNTS = {f"q{i}": c for i, c in enumerate([(0, 8), (1, 8), (4, 8), (8, 8), (2, 8), (0, 8), (6, 8), (3, 8)])}
"""Eight problems, three of them at weight 0 (0/8, 8/8): the frontier starts with five."""


def config(data: Path, models: dict, output: Path, **options) -> DistillConfig:
    defaults = {
        "loss": "rkl", "max_steps": 8, "batch_size": 2, "lr": 1e-3, "warmup_steps": 1, "checkpoint_every": 0, "template": SHORT.template,
        "chat_template": "off", "log_every": 1, "rkl_max_tokens": 6, "reweight": "online", "reweight_grader": PARITY, "explore": 0.5,
        "reweight_halflife": 0, "eval_every": 2,
    }
    return DistillConfig(shards=str(data), student=str(models["student"]), teacher=str(models["teacher"]), output=str(output), **(defaults | options))


def records(run_dir: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if r["kind"] == kind]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return counts_export(tmp_path_factory.mktemp("online"), COUNTS)


def test_every_sample_is_graded_once_and_the_final_posterior_holds_it(tmp_path, models, data):
    run_distill(config(data, models, tmp_path / "run"))
    reweight = records(tmp_path / "run", "reweight")
    assert [r["step"] for r in reweight] == [0, 2, 4, 6, 8]
    samples = sum(r["samples"] for r in reweight)
    probes = sum(r["probes"] for r in reweight)
    # Each step trains 2 rows, each drawing one sample; each probe draws one more; all are graded and counted.
    assert samples == 8 * 2 + probes and probes > 0
    start = read_table(str(tmp_path / "run" / "weights_start.parquet"), WEIGHTS)
    final = read_table(str(tmp_path / "run" / "weights_final.parquet"), WEIGHTS)
    assert start.column("problem_id").to_pylist() == final.column("problem_id").to_pylist() == sorted(COUNTS)
    assert [(c, n) for c, n in zip(start.column("n_correct").to_pylist(), start.column("n_scored").to_pylist())] == [COUNTS[p] for p in sorted(COUNTS)]
    # No decay (half-life 0): the final counts are the start's plus every graded sample (the parity rule scores all).
    assert sum(final.column("n_scored").to_pylist()) == sum(n for _, n in COUNTS.values()) + samples
    assert sum(final.column("n_correct").to_pylist()) == sum(c for c, _ in COUNTS.values()) + sum(r["correct"] for r in reweight)
    # The start table is what `paced weight` wrote for the counts (the export's source), renormalised over these problems.
    static = pq.read_table(data.parent / "data_weights.parquet")
    assert start.column("weight_raw").to_pylist() == pytest.approx(static.column("weight_raw").to_pylist())
    assert json.loads(start.schema.metadata[b"paced.provenance"])["online"]["step"] == 0


def test_a_resumed_run_ends_with_the_posterior_of_the_uninterrupted_one(tmp_path, models, data):
    options = {"max_steps": 8, "checkpoint_every": 3, "keep_checkpoints": 0, "reweight_halflife": 3}
    run_distill(config(data, models, tmp_path / "whole", **options))
    crashed = tmp_path / "crashed"
    shutil.copytree(tmp_path / "whole", crashed)
    for name in ("final", "checkpoints/step-000006", "weights_final.parquet", "weights_start.parquet"):
        shutil.rmtree(crashed / name) if (crashed / name).is_dir() else (crashed / name).unlink()
    lines = (crashed / "metrics.jsonl").read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["step"] <= 4]  # the crash came during step 5
    (crashed / "metrics.jsonl").write_text("\n".join(kept) + "\n")
    resumed = run_distill(config(data, models, crashed, resume=True, **options))
    assert resumed.start_step == 3
    for name in ("weights_start.parquet", "weights_final.parquet"):
        assert pq.read_table(crashed / name).equals(pq.read_table(tmp_path / "whole" / name)), name
    drop = ("grader_s", "grader_wait_s", "refresh_s")
    assert [{k: v for k, v in r.items() if k not in drop} for r in records(crashed, "reweight")] == [
        {k: v for k, v in r.items() if k not in drop} for r in records(tmp_path / "whole", "reweight")
    ]
    assert [r["loss"] for r in records(crashed, "train")] == pytest.approx([r["loss"] for r in records(tmp_path / "whole", "train")], rel=1e-5)


def test_the_forward_kl_stage_refreshes_the_weights_every_n_steps(tmp_path, models, data):
    run_distill(config(data, models, tmp_path / "run", loss="fkl-then-rkl", max_steps=8, reweight_every=2, reweight_samples=3, explore=0.0))
    reweight = records(tmp_path / "run", "reweight")
    # fkl steps 1-4 (0-based 0-3): one refresh, before 0-based step 2 (step 4 is rkl), of 8 problems x 3 samples.
    assert sum(r["refresh_samples"] for r in reweight) == 1 * 8 * 3
    # rkl steps 5-8: one sample per trained row, none in the fkl stage; no probes with --explore 0.
    assert sum(r["samples"] for r in reweight) == 8 * 3 + 4 * 2 and sum(r["probes"] for r in reweight) == 0


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"reweight": "static"}, "--reweight-halflife, --explore, --reweight-grader apply to --reweight online only"),
        ({"weights": "off"}, "--reweight online re-estimates PACED weights; it cannot go with --weights off"),
        ({"loss": "fkl"}, "--reweight online with --loss fkl has no student samples to learn from; add --reweight-every N"),
        ({"reweight_every": 5}, "--reweight-every refreshes the weights in a forward-KL stage, and --loss rkl has none"),
        ({"explore": 1.5}, "--explore must be in [0, 1], not 1.5"),
        ({"reweight_halflife": -1}, "--reweight-halflife must be >= 0, not -1"),
        ({"reweight_samples": 0, "loss": "fkl-then-rkl", "reweight_every": 2}, "--reweight-samples must be at least 1, not 0"),
        ({"reweight_grader": "nope"}, "--reweight-grader: unknown grader 'nope'"),
        ({"reweight": "sometimes"}, "--reweight must be static or online, not 'sometimes'"),
    ],
)
def test_settings_online_paced_cannot_honour_are_refused(tmp_path, models, changes, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config(tmp_path, models, tmp_path / "run", **changes)


def test_an_export_whose_weights_are_not_its_counts_is_refused_before_training(tmp_path, models):
    # make_export writes weights (i + 1) / n next to counts of 4 of 8 for every problem.
    data = make_export(tmp_path, n=4)
    expected = r"train row \d \(problem 'q\d\d'\): its weight .* is not what the recorded weighting \(--kernel beta --alpha 1 --beta 1 --estimator empirical\) gives"
    with pytest.raises(ConfigError, match=expected):
        run_distill(config(data, models, tmp_path / "run"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_an_export_of_weighted_copies_is_refused(tmp_path, models):
    from paced_curate.export import ExportConfig, run_export

    counts_export(tmp_path, COUNTS, name="src")
    copies = tmp_path / "copies"
    run_export(ExportConfig(problems=str(tmp_path / "src_problems.jsonl"), weights=str(tmp_path / "src_weights.parquet"), output=str(copies),
                            references=str(tmp_path / "src_teacher.parquet"), weights_as="copies"))
    with pytest.raises(ConfigError, match="--weights-as copies"):
        run_distill(config(copies, models, tmp_path / "run"))


def test_a_checkpoint_made_before_online_paced_resumes_as_a_static_run(tmp_path, models):
    import torch

    from paced_curate.distill.checkpoint import TRAINER_STATE

    data = make_export(tmp_path, n=4)
    static = {"reweight": "static", "explore": None, "reweight_grader": None, "reweight_halflife": None}
    run_distill(config(data, models, tmp_path / "run", max_steps=2, checkpoint_every=1, keep_checkpoints=0, **static))
    # A checkpoint written before the reweight settings existed holds none of them.
    path = tmp_path / "run" / "checkpoints" / "step-000001" / TRAINER_STATE
    state = torch.load(path, weights_only=True)
    state["settings"] = {k: v for k, v in state["settings"].items() if not k.startswith("reweight") and k != "explore"}
    torch.save(state, path)
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "step-000002")
    assert run_distill(config(data, models, tmp_path / "run", max_steps=2, resume=True, **static)).start_step == 1
    with pytest.raises(Exception, match="was made with --reweight None, not 'online'"):
        run_distill(config(data, models, tmp_path / "run", max_steps=2, resume=True, **(static | {"reweight": "online"})))
