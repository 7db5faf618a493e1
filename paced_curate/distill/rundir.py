"""The run directory of `paced distill`: fresh, overwritten or resumed; run.json and metrics.jsonl.

    RUN_DIR/run.json        settings, versions, command, total steps; the result once finished
    RUN_DIR/metrics.jsonl   one JSON object per step ({"kind": "train", ...}) and per evaluation ({"kind": "eval", ...})
    RUN_DIR/checkpoints/    see checkpoint.py
    RUN_DIR/final/          the trained student

A used run directory is refused unless `--resume` (continue from its newest complete
checkpoint, with the same settings and data) or `--overwrite` (delete what a run wrote there;
other files are left alone).

    checkpoint = prepare_run_dir(Path("runs/paced"), config)
    with MetricsLog(run_dir / METRICS, keep_through=start_step) as metrics:
        metrics.write({"step": 1, "kind": "train", "loss": 0.3})
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from paced_curate import __version__
from paced_curate.distill.checkpoint import CHECKPOINTS, FINAL, latest_checkpoint
from paced_curate.distill.config import DistillConfig
from paced_curate.errors import InputError, ResumeMismatch
from paced_curate.io import atomic_path, is_temp, write_json
from paced_curate.partdir import claim_output, command_line, package_versions

METRICS = "metrics.jsonl"
RUN_FILE = "run.json"
WEIGHTS_TABLES = ("weights_start.parquet", "weights_final.parquet")
"""Written by --reweight online (#25): the posterior at the start and at the end, as `paced weight` tables."""
OWNED = (CHECKPOINTS, FINAL, METRICS, RUN_FILE, *WEIGHTS_TABLES)
"""What a run writes in its directory: all that --overwrite deletes."""


def claim_run_dir(run_dir: Path, config: DistillConfig) -> None:
    """Check -o by the rule every command follows (`partdir.claim_output`, #26), before any work.

    Raises:
        InputError: the run directory is, lies inside or contains an input (the export, a model
            folder, the eval set), holds files paced did not write and no run, or holds another
            command's output (without --overwrite). Nothing is deleted here: with --overwrite,
            `prepare_run_dir` deletes what is replaced once the data and models have been read.
    """
    claim_output(run_dir, kind="distill", inputs=_reads(config), overwrite=config.overwrite, clear=False)


def _reads(config: DistillConfig) -> dict[str, str | None]:
    return {"shards": config.shards, "student": config.student, "teacher": config.teacher, "eval": config.eval_problems}


def prepare_run_dir(run_dir: Path, config: DistillConfig) -> Path | None:
    """Refuse or clear a used run directory, and create it.

    Returns:
        The checkpoint to resume from (`--resume` and one exists), else None.

    Raises:
        InputError: the path is a file, a non-empty directory without --resume or --overwrite, or
            --resume finds no complete checkpoint to continue from.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"{config.output}: exists and is a file; -o takes a run directory")
    entries = sorted(run_dir.iterdir()) if run_dir.exists() else []
    if config.resume:
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None:
            # #26: starting over here would retrain from step 0 and replace final/; say so instead.
            found = "does not exist" if not run_dir.exists() else (
                "holds a finished run's final/ but no checkpoint" if (run_dir / FINAL).exists() else "holds no complete checkpoint"
            )
            raise InputError(
                f"{config.output}: --resume: the run directory {found}, so there is nothing to continue; "
                "run without --resume to start (add --overwrite to replace what is there)"
            )
        return checkpoint
    if entries and not config.overwrite:
        raise InputError(
            f"{config.output}: exists and is not empty (it holds {entries[0].name!r}); "
            "pass --resume to continue the run in it, or --overwrite to start afresh"
        )
    if entries:  # --overwrite: another command's output there is deleted now, not before the inputs were read
        claim_output(run_dir, kind="distill", inputs=_reads(config), overwrite=True)
        entries = sorted(run_dir.iterdir())
    for entry in entries:
        if entry.name in OWNED or is_temp(entry.name):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    return None


def _flag(name: str) -> str:
    return "SHARDS" if name == "shards" else f"--{name.replace('_', '-')}"


def check_resume(state: dict, config: DistillConfig, digest: str, checkpoint: Path) -> None:
    """Refuse to resume a checkpoint made with other settings or another export's train split.

    Raises:
        ResumeMismatch: naming the first differing flag, or the changed data.
    """
    saved, current = state["settings"], config.settings()
    fields = DistillConfig.__dataclass_fields__
    for name, value in current.items():
        if name not in saved and name in fields and value == fields[name].default:
            continue  # a setting added after the checkpoint was made, left at its default (--reweight static, #25)
        if saved.get(name) != value:
            raise ResumeMismatch(
                f"{checkpoint}: was made with {_flag(name)} {saved.get(name)!r}, not {value!r}; "
                "resume with the same settings, or start afresh with --overwrite"
            )
    if state["data_digest"] != digest:
        raise ResumeMismatch(
            f"{checkpoint}: the train split of {config.shards} has changed since this checkpoint; "
            "resume with the export it was trained on, or start afresh with --overwrite"
        )


def write_run_file(
    run_dir: Path, config: DistillConfig, *, total: int, switch: int, skipped: list[str], start_step: int, run: dict | None = None,
    result: dict | None = None,
) -> None:
    """Write run.json (atomically): settings, steps, versions, command; `run`'s entries (resolved values such
    as the prompt used and the warm-up); and the result when given."""
    path = run_dir / RUN_FILE
    previous = json.loads(path.read_text()) if path.exists() and start_step else {}
    resumed = set(previous.get("resumed_after", [])) | ({start_step} if start_step else set())
    record = {
        "paced_version": __version__, "stage": "distill",
        "created": previous.get("created") or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "settings": config.settings(), "shards": str(Path(config.shards).resolve()), "total_steps": total,
        "switch_step": switch, "resumed_after": sorted(resumed), "skipped_long_prompts": skipped[:20],
        "versions": package_versions(), "command": command_line(),
    }
    record.update(run or {})
    if result is not None:
        record["result"] = result
    write_json(record, path)


class MetricsLog:
    """metrics.jsonl: one JSON object per line, flushed at once.

    Opening it for a resumed run keeps only the records up to the checkpoint's step (the
    steps after it are trained again); a line cut off by the crash is dropped.
    """

    def __init__(self, path: Path, keep_through: int) -> None:
        kept = []
        if keep_through and path.exists():
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= keep_through:
                        kept.append(line)
                except json.JSONDecodeError:
                    continue
        with atomic_path(path) as tmp:
            tmp.write_text("".join(line + "\n" for line in kept))
        self.handle = open(path, "a")

    def write(self, record: dict) -> None:
        self.handle.write(json.dumps(record) + "\n")
        self.handle.flush()

    def __enter__(self) -> "MetricsLog":
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()
