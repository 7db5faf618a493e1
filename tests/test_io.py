"""Atomic writes, part directories, resume checks, shard combination and Arrow pipes."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paced_curate.errors import InputError, ResumeMismatch
from paced_curate.io import atomic_path, read_table, write_ipc, write_parquet
from paced_curate.partdir import PartDirectory
from paced_curate.schema import ROLLOUTS, build_table
from tests.test_schema import ROLLOUT_ROW


def rollout_rows(problem_ids, samples=2) -> pa.Table:
    return build_table(
        [ROLLOUT_ROW | {"problem_id": pid, "sample_index": i} for pid in problem_ids for i in range(samples)], ROLLOUTS
    )


def test_atomic_write_is_invisible_until_complete_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            assert not target.exists()
            raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []
    write_parquet(rollout_rows(["a"]), target)
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def _open(path, **changes):
    settings = {"seed": 0, "temperature": 1.0} | changes
    return PartDirectory.open(path, spec=ROLLOUTS, settings=settings, inputs={"problems": {"path": "p.jsonl", "sha256": "abc"}})


def test_part_directory_resumes_and_reads_back_in_order(tmp_path):
    out = _open(tmp_path / "r")
    out.write_part(rollout_rows(["a", "b"]))
    again = _open(tmp_path / "r")
    assert again.read_done(["problem_id"]).column("problem_id").to_pylist() == ["a", "a", "b", "b"]
    again.write_part(rollout_rows(["c"]))
    with pytest.raises(InputError, match="is unfinished; rerun the command that wrote it"):
        read_table(str(tmp_path / "r"), ROLLOUTS)
    again.finish({"samples": 6})
    table = read_table(str(tmp_path / "r"), ROLLOUTS)
    assert table.column("problem_id").to_pylist() == ["a", "a", "b", "b", "c", "c"]
    # The folder holds the parts only; the manifest lives in the sibling extras folder.
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    manifest = json.loads((tmp_path / "r.paced" / "manifest.json").read_text())
    assert [p["file"] for p in manifest["parts"]] == ["part-00000.parquet", "part-00001.parquet"]
    assert manifest["rows"] == 6 and manifest["complete"] and manifest["summary"] == {"samples": 6}


def test_part_renamed_before_manifest_update_still_counts(tmp_path):
    out = _open(tmp_path / "r")
    out.write_part(rollout_rows(["a"]))
    # A crash between the rename and the manifest update: the part is on disk, not listed.
    write_parquet(rollout_rows(["b"]), tmp_path / "r" / "part-00001.parquet")
    (tmp_path / "r" / ".part-00002.parquet.tmp-dead").write_bytes(b"partial")
    again = _open(tmp_path / "r")
    assert again.read_done(["problem_id"]).column("problem_id").to_pylist() == ["a", "a", "b", "b"]


def test_resume_with_other_settings_is_refused_unless_overwrite(tmp_path):
    _open(tmp_path / "r").write_part(rollout_rows(["a"]))
    with pytest.raises(ResumeMismatch, match=r"was made with temperature=1.0 \(now 0.5\); pass --overwrite"):
        _open(tmp_path / "r", temperature=0.5)
    fresh = PartDirectory.open(tmp_path / "r", spec=ROLLOUTS, settings={"seed": 0, "temperature": 0.5}, inputs={}, overwrite=True)
    assert fresh.read_done() is None and fresh.num_parts == 0


def test_changed_input_is_refused(tmp_path):
    _open(tmp_path / "r").write_part(rollout_rows(["a"]))
    with pytest.raises(ResumeMismatch, match=r"input problems changed \(q.jsonl\)"):
        PartDirectory.open(tmp_path / "r", spec=ROLLOUTS, settings={"seed": 0, "temperature": 1.0}, inputs={"problems": {"path": "q.jsonl", "sha256": "xyz"}})


def test_foreign_directory_is_refused_even_with_overwrite_and_keeps_its_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(InputError, match="holds 'notes.txt', which paced did not write; choose another -o"):
            PartDirectory.open(tmp_path, spec=ROLLOUTS, settings={}, inputs={}, overwrite=overwrite)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "mine"


def _shard(root, index, count, ids):
    out = PartDirectory.open(root / f"shard-{index:05d}-of-{count:05d}", spec=ROLLOUTS, settings={}, inputs={})
    out.write_part(rollout_rows(ids))
    out.finish()


def test_shard_directories_combine_and_overlaps_are_refused(tmp_path):
    _shard(tmp_path / "ok", 0, 2, ["a", "c"])
    _shard(tmp_path / "ok", 1, 2, ["b"])
    assert sorted(set(read_table(str(tmp_path / "ok"), ROLLOUTS).column("problem_id").to_pylist())) == ["a", "b", "c"]
    _shard(tmp_path / "overlap", 0, 2, ["a", "c"])
    _shard(tmp_path / "overlap", 1, 2, ["c"])
    with pytest.raises(InputError, match="shards shard-00000-of-00002 and shard-00001-of-00002 overlap \\(both hold problem_id 'c'\\)"):
        read_table(str(tmp_path / "overlap"), ROLLOUTS)
    _shard(tmp_path / "gap", 0, 3, ["a"])
    with pytest.raises(InputError, match="shards 1/3, 2/3 are missing"):
        read_table(str(tmp_path / "gap"), ROLLOUTS)


def test_arrow_pipe_round_trip_through_a_real_process(tmp_path):
    table = rollout_rows(["a", "b"]).replace_schema_metadata({b"paced.stage": b"rollouts", b"paced.schema_version": b"1"})
    path = tmp_path / "stream.arrow"
    with open(path, "wb") as sink:
        write_ipc(table, sink)
    code = "from paced_curate.io import read_table; from paced_curate.schema import ROLLOUTS; t = read_table('-', ROLLOUTS); print(t.num_rows, t.column('problem_id')[2])"
    with open(path, "rb") as source:
        done = subprocess.run([sys.executable, "-c", code], stdin=source, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["4", "b"]


def test_stdin_that_is_not_arrow_is_a_clear_error():
    code = "from paced_curate.io import read_table; from paced_curate.schema import ROLLOUTS; read_table('-', ROLLOUTS)"
    done = subprocess.run([sys.executable, "-c", code], input=b"not arrow", capture_output=True)
    assert b"stdin: not an Arrow IPC stream" in done.stderr


def test_directory_of_plain_parquet_files_is_readable(tmp_path):
    pq.write_table(rollout_rows(["a"]), tmp_path / "x.parquet")
    pq.write_table(rollout_rows(["b"]), tmp_path / "y.parquet")
    assert read_table(str(tmp_path), ROLLOUTS).num_rows == 4


def test_a_stale_in_process_stdout_claim_is_not_reused(monkeypatch):
    """A command run in-process (a test runner, a notebook) that failed before releasing its `-o -`
    stream must not hand the next command the old, closed buffer ('I/O operation on closed file')."""
    import io as stdio

    from paced_curate import pipes

    monkeypatch.setattr(pipes, "_claimed_stdout", None)
    first = stdio.TextIOWrapper(stdio.BytesIO())
    monkeypatch.setattr("sys.stdout", first)
    assert pipes.claim_stdout() is first.buffer
    first.buffer.close()  # the first runner is gone, its stream never released
    second = stdio.TextIOWrapper(stdio.BytesIO())
    monkeypatch.setattr("sys.stdout", second)
    assert pipes.claim_stdout() is second.buffer
    third = stdio.TextIOWrapper(stdio.BytesIO())  # a new runner while the second is still open
    monkeypatch.setattr("sys.stdout", third)
    assert pipes.claim_stdout() is third.buffer
    pipes.release_stdout()
    assert not third.buffer.closed  # a runner's buffer is flushed, not closed
