"""Reading samples other tools wrote: generations (`paced grade`), verdicts (`paced weight`), references (`paced export`).

All go through the one reader (`tables`: JSONL, JSON, CSV, Parquet, Arrow, a Parquet folder, a
local Hugging Face dataset, or "-"). A paced rollouts or grades table is read as it is; any
other table needs only an id, a completion and a gold answer (generations), an id and a verdict
(graded samples, `paced weight`), or an id, a completion and a verdict (teacher references,
`paced export --references`):

- id: `--id-field`, else the first of problem_id, id, unique_id, uid, uuid, doc_id (lm-eval); with
  neither, a content hash of the prompt column and the gold answer (NeMo-Skills files carry no
  id), as for problem sets.
- completion: `--completion-field`, else the first of completion, generation, generations,
  response, responses, output, outputs, resps (lm-eval); a list of completions in one row
  (open-r1's `generations`, lm-eval's `resps`) becomes one sample per element; a chat
  conversation becomes its last assistant turn.
- gold answer: `--answer-field`, else the problem readers' candidates (answer, gold,
  final_answer, ground_truth, expected_answer, target); or joined from `--problems FILE` by id.
- sample_index: `--sample-index-field` or `sample_index` if present, else numbered 0, 1, ... in
  row order within each problem. finish_reason: `stop` when absent. Other columns pass through.

    table = read_generations("nemo_output.jsonl", SampleFields())       # a ROLLOUTS table
    refs = read_references("teacher.jsonl")                              # problem_id, sample_index, completion, verdict
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from paced_curate.errors import InputError
from paced_curate.io import STDIO
from paced_curate.problems import (
    ANSWER_CANDIDATES,
    ID_CANDIDATES,
    PROMPT_CANDIDATES,
    FieldMap,
    answer_column,
    pick_column,
    read_problems,
)
from paced_curate.schema import FINISH_REASONS, GRADES, ROLLOUT_FIELDS, ROLLOUTS, VERDICTS, conform, read_metadata, row_name
from paced_curate.tables import Columns, guess_stage, paced_stage, read_columns, read_stage_table, shown

SAMPLE_ID_CANDIDATES = ID_CANDIDATES + ("doc_id",)
COMPLETION_CANDIDATES = ("completion", "generation", "generations", "response", "responses", "output", "outputs", "resps")
GRADE_ONLY = {f.name for f in GRADES.fields + GRADES.optional} - {f.name for f in ROLLOUT_FIELDS}
RowName = Callable[[int], str]
"""Names a table row's position in the input ("line 4", "row 3"): `tables.Columns.where`, `schema.row_name`."""

# What a verdict counts as when a file carries only a verdict: grading failures are left out of
# the pass rate, as `paced grade --errors exclude` (its default) would.
SCORED_VERDICTS = ("correct", "incorrect", "no_answer", "truncated")


@dataclass(frozen=True, kw_only=True)
class SampleFields:
    """Which columns of a generations (or graded) file hold what; None: found among common names."""

    id_field: str | None = None
    """Column with the problem id (also the join key with --problems)."""
    completion_field: str | None = None
    """Column with the completion text (or a list of completions, or a chat conversation)."""
    answer_field: str | None = None
    """Column with the gold answer (of the problem set, when --problems is given)."""
    sample_index_field: str | None = None
    """Column with the sample's index within its problem; default: sample_index, else row order."""
    problems: str | None = None
    """Problem set to take gold answers (and prompts, extra columns) from, joined by id."""
    split: str | None = None
    """Split of a Hugging Face dataset folder."""

    def is_default(self) -> bool:
        return all(value is None for value in (self.id_field, self.completion_field, self.answer_field, self.sample_index_field, self.problems))


# --- paced tables as they are ------------------------------------------------------------------


def read_generations(path: str, fields: SampleFields | None = None) -> pa.Table:
    """Read generations as a rollouts table (`schema.ROLLOUTS`); see `read_located_generations`."""
    return read_located_generations(path, fields)[0]


def read_located_generations(path: str, fields: SampleFields | None = None) -> tuple[pa.Table, RowName]:
    """Read generations as a rollouts table (`schema.ROLLOUTS`), whatever tool wrote them, and where each row came from.

    Args:
        path: a file, a folder or "-" (see the module docstring).
        fields: column mapping and the optional `--problems` join.

    Returns:
        A ROLLOUTS table, one row per sample, in input order (a row holding a list of K
        completions gives K rows); `completion_tokens`/`prompt_tokens` are null when unknown.
        And a function naming a sample's position in the input as the reader does ("line 4"
        of a JSONL or CSV file, "row 3" of a Parquet table), for later messages about it.

    Raises:
        InputError: a needed column is missing, a gold answer is empty, a generation's id is not
            in --problems, a (problem_id, sample_index) repeats, or a problem has two gold answers
            (message names file, line or row, key).
        SchemaError: a paced table that does not match its schema.
    """
    fields = fields or SampleFields()
    source = shown(path)
    if fields.is_default() and _on_disk_stage(path):
        return _checked(read_stage_table(path, ROLLOUTS), source, row_name)
    raw = read_columns(path, fields.split)
    if fields.is_default() and _stage(raw) is not None:
        return _checked(conform(raw.to_table(ROLLOUTS, source), ROLLOUTS, source, raw.where), source, raw.where)
    if raw.num_rows == 0:
        raise InputError(f"{source}: holds no generations")
    return _normalise(raw, fields, source)


def _on_disk_stage(path: str) -> bool:
    """Whether `path` is a paced output on disk (read with its manifest and shard checks)."""
    return path != STDIO and Path(path).exists() and paced_stage(path) is not None


def _stage(raw: Columns) -> str | None:
    """The paced stage an Arrow input (a pipe, a dataset) records in its schema metadata."""
    return read_metadata(pa.schema([], metadata=raw.metadata)).get("stage") if raw.metadata else None


def _checked(table: pa.Table, source: str, where: RowName) -> tuple[pa.Table, RowName]:
    check_unique_samples(table, source, where)
    check_one_gold(table, source, where)
    blank = pc.equal(pc.utf8_trim_whitespace(table.column("answer")), "")
    if pc.any(blank).as_py():
        index = pc.index(blank, True).as_py()
        value = table.column("answer")[index].as_py()
        raise InputError(f"{source} {where(index)}: column 'answer' (the gold answer) is {'empty' if not value else 'only whitespace'}")
    return table, where


def _normalise(raw: Columns, fields: SampleFields, path: str) -> tuple[pa.Table, RowName]:
    names = list(raw.data)
    id_col = pick_column(names, fields.id_field, SAMPLE_ID_CANDIDATES, "--id-field", path, required=False)
    completion_col = pick_column(names, fields.completion_field, COMPLETION_CANDIDATES, "--completion-field", path, required=True)
    index_col = pick_column(names, fields.sample_index_field, ("sample_index",), "--sample-index-field", path, required=False)
    prompt_candidates = tuple(c for c in PROMPT_CANDIDATES if c != completion_col)
    prompt_col = pick_column(names, None, prompt_candidates, "--prompt-field", path, required=False)
    answer_col = None
    if fields.problems is None:
        answer_col = pick_column(names, fields.answer_field, ANSWER_CANDIDATES, "--answer-field", path, required=True)
    _refuse_repeated_filters(raw, path)

    prompts = [_prompt_text(v) for v in raw.values(prompt_col)] if prompt_col else [""] * raw.num_rows
    if fields.problems is not None:
        if id_col is None:
            raise InputError(f"{path}: --problems joins by id, but found none of {', '.join(SAMPLE_ID_CANDIDATES)}; name it with --id-field")
        ids = _ids(raw, id_col, path)
        answers, prompts, extra = _join_problems(ids, prompts, fields, raw, path)
    else:
        answers = answer_column(raw.values(answer_col), path, answer_col, raw.where)
        if id_col is not None:
            ids = _ids(raw, id_col, path)
        elif prompt_col is not None:
            ids = [_content_id(p, a) for p, a in zip(prompts, answers)]
        else:
            raise InputError(
                f"{path}: found no id column ({', '.join(SAMPLE_ID_CANDIDATES)}) and no prompt column to derive one from; "
                "name the id column with --id-field"
            )
        extra = {}

    rows, completions = _expand(raw.values(completion_col), completion_col, path, raw.where)
    given_index = raw.values(index_col) if index_col else None
    if given_index is not None and any(isinstance(v, list) for v in raw.values(completion_col)):
        raise InputError(f"{path}: column {completion_col!r} holds lists of completions and {index_col!r} gives one index per row; drop one")
    sample_ids = [ids[r] for r in rows]
    indices = _sample_indices(sample_ids, [given_index[r] for r in rows] if given_index else None, index_col, path, raw.where, rows)
    finish = _finish_reasons(raw, rows, path)
    out = {
        "problem_id": pa.array(sample_ids, pa.string()),
        "sample_index": pa.array(indices, pa.int32()),
        "prompt": pa.array([prompts[r] for r in rows], pa.string()),
        "answer": pa.array([answers[r] for r in rows], pa.string()),
        "completion": pa.array(completions, pa.string()),
        "finish_reason": pa.array(finish, pa.string()),
        "completion_tokens": _optional_ints(raw, "completion_tokens", rows, path),
        "prompt_tokens": _optional_ints(raw, "prompt_tokens", rows, path),
        "error": pa.array(_errors(raw, rows, path), pa.string()),
    }
    mapped = {id_col, completion_col, index_col, answer_col, prompt_col, "finish_reason", "completion_tokens", "prompt_tokens", "error"}
    take = pa.array(rows, pa.int64())
    for name in names:
        # A verdict from another grader would clash with ours; with --problems, the gold answer
        # (and the prompt, where the rows have none) come from the problem set.
        if name in mapped or name in GRADE_ONLY or name in out:
            continue
        out[name] = _take(raw.arrow(name, path), take)
    for name, column in extra.items():
        out.setdefault(name, _take(column, take))

    def where(sample: int) -> str:  # the input row a sample came from (a row's K completions share it)
        return raw.where(rows[sample])

    table = conform(pa.table(out), ROLLOUTS, path, where)
    check_unique_samples(table, path, where)
    check_one_gold(table, path, where)
    return table, where


def _take(column, take: pa.Array):
    return column.take(take)


def _prompt_text(value) -> str:
    if isinstance(value, list):
        users = [m.get("content", "") for m in value if isinstance(m, dict) and m.get("role") == "user"]
        return users[-1] if users else ""
    return "" if value is None else str(value)


def _ids(raw: Columns, id_col: str, path: str) -> list[str]:
    ids = []
    for index, value in enumerate(raw.values(id_col)):
        if value is None or value == "":
            raise InputError(f"{path} {raw.where(index)}: column '{id_col}' (the id) is empty")
        ids.append(str(value))
    return ids


def _content_id(prompt: str, answer: str) -> str:
    # The same hash `problems.read_problems` gives a text problem without an id, so a generations
    # file and its problem set agree on ids.
    text = json.dumps({"prompt": prompt, "answer": answer}, sort_keys=True)
    return "p" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _refuse_repeated_filters(raw: Columns, path: str) -> None:
    # lm-eval writes each document once per filter (strict-match, flexible-extract) with the same
    # responses: counting every row would count each sample twice.
    if "filter" in raw.data and "doc_id" in raw.data:
        filters = sorted({str(v) for v in raw.values("filter")})
        if len(filters) > 1:
            raise InputError(
                f"{path}: holds each document once per lm-eval filter ({', '.join(filters)}); "
                "keep one filter's rows, or each sample would count more than once"
            )


def _expand(values: list, name: str, path: str, where) -> tuple[list[int], list[str]]:
    """One (row, completion) per sample: lists of completions and nested lists are flattened."""
    rows, completions = [], []
    for index, value in enumerate(values):
        for text in _completions(value, name, f"{path} {where(index)}"):
            rows.append(index)
            completions.append(text)
    return rows, completions


def _completions(value, name: str, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        answers = [m.get("content") for m in value if m.get("role") == "assistant"]
        if not answers or not isinstance(answers[-1], str):
            raise InputError(f"{where}: column {name!r} is a conversation without an assistant turn")
        return [answers[-1]]
    if isinstance(value, list):
        out = []
        for item in value:
            out.extend(_completions(item, name, where))
        if not out:
            raise InputError(f"{where}: column {name!r} is an empty list of completions")
        return out
    kind = "null" if value is None else type(value).__name__
    raise InputError(f"{where}: column {name!r} (the completion) is {kind}, expected text or a list of texts")


def _sample_indices(ids: list[str], given: list | None, name: str | None, path: str, where, rows: list[int]) -> list[int]:
    """The given indices (missing ones numbered after row order), else 0, 1, ... per problem."""
    counters: dict[str, int] = defaultdict(int)
    out = []
    for position, problem_id in enumerate(ids):
        value = given[position] if given is not None else None
        if value is None or (isinstance(value, str) and not value.strip()):
            out.append(counters[problem_id])
            counters[problem_id] += 1
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise InputError(f"{path} {where(rows[position])}: column {name!r} (the sample index) is {value!r}, expected a whole number") from None
        if number < 0 or number != float(value):
            raise InputError(f"{path} {where(rows[position])}: column {name!r} (the sample index) is {value!r}, expected a whole number >= 0")
        out.append(number)
    return out


def _finish_reasons(raw: Columns, rows: list[int], path: str) -> list[str]:
    if "finish_reason" not in raw.data:
        return ["stop"] * len(rows)
    values = raw.values("finish_reason")
    out = []
    for r in rows:
        value = values[r]
        if value is None or value == "":  # an empty CSV cell is a missing value
            out.append("stop")
        elif value in FINISH_REASONS:
            out.append(value)
        else:
            raise InputError(f"{path} {raw.where(r)}: column 'finish_reason' is {value!r}; allowed: {', '.join(FINISH_REASONS)}")
    return out


def _errors(raw: Columns, rows: list[int], path: str) -> list[str | None]:
    if "error" not in raw.data:
        return [None] * len(rows)
    values = raw.values("error")
    for r in rows:
        if values[r] is not None and not isinstance(values[r], str):
            raise InputError(f"{path} {raw.where(r)}: column 'error' is {values[r]!r}; paced reads it as the rollout's error message (text)")
    # An empty message is no error: a CSV cannot tell an empty cell from a missing value.
    return [values[r] or None for r in rows]


def _optional_ints(raw: Columns, name: str, rows: list[int], path: str) -> pa.Array:
    if name not in raw.data:
        return pa.nulls(len(rows), pa.int32())
    values = raw.values(name)
    out = []
    for r in rows:
        value = values[r]
        if value is None or value == "":
            out.append(None)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not number.is_integer() or number < 0:
            raise InputError(f"{path} {raw.where(r)}: column {name!r} is {value!r}, expected a whole number of tokens")
        out.append(int(number))
    return pa.array(out, pa.int32())


def _join_problems(ids: list[str], prompts: list[str], fields: SampleFields, raw: Columns, path: str):
    """Gold answers, prompts (where the generations have none) and the problems' extra columns, by id."""
    problems = read_problems(fields.problems, FieldMap(id_field=fields.id_field, answer_field=fields.answer_field, split=fields.split))
    position = {pid: i for i, pid in enumerate(problems.column("problem_id").to_pylist())}
    index = []
    for row, problem_id in enumerate(ids):
        if problem_id not in position:
            raise InputError(f"{path} {raw.where(row)}: problem id {problem_id!r} is not in {fields.problems}")
        index.append(position[problem_id])
    take = pa.array(index, pa.int64())
    answers = problems.column("answer").take(take).to_pylist()
    problem_prompts = problems.column("prompt").take(take).to_pylist()
    prompts = [own or theirs for own, theirs in zip(prompts, problem_prompts)]
    skip = {"problem_id", "prompt", "answer", "messages", *raw.data}
    extra = {name: problems.column(name).take(take) for name in problems.column_names if name not in skip}
    return answers, prompts, extra


# --- the uniqueness of samples ----------------------------------------------------------------


def check_unique_samples(table: pa.Table, source: str, where: RowName = row_name) -> None:
    """Refuse a table in which a (problem_id, sample_index) repeats.

    A repeated sample would count as extra evidence (p = 1/3 instead of 1/4 for a copied wrong
    sample), so it is an error, never silently counted. `where` names a table row's position
    in the input (`Columns.where`; default "row 3", 0-based).

    Raises:
        InputError: naming the first repeated key, how often it occurs, and where it is.
    """
    if table.num_rows == 0:
        return
    keys = table.select(["problem_id", "sample_index"])
    counts = keys.group_by(["problem_id", "sample_index"], use_threads=False).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts.column("count_all"), 1))
    if repeated.num_rows == 0:
        return
    first = repeated.slice(0, 1).to_pylist()[0]
    mask = pc.and_(pc.equal(keys.column("problem_id"), first["problem_id"]), pc.equal(keys.column("sample_index"), first["sample_index"]))
    rows = [i for i, hit in enumerate(mask.to_pylist()) if hit]
    raise repeated_sample_error(first["problem_id"], first["sample_index"], rows, repeated.num_rows, source, where)


def check_one_gold(table: pa.Table, source: str, where: RowName = row_name) -> None:
    """Refuse samples of one problem graded against different gold answers.

    A problem's pass rate needs one gold answer; two (e.g. a merge of two datasets that reuse
    ids) would grade its samples against whichever each row carries. `where` names a table
    row's position in the input, as in `check_unique_samples`.

    Raises:
        InputError: naming the first such problem_id, two of its gold answers and where they are.
    """
    if table.num_rows == 0:
        return
    keys = table.select(["problem_id", "answer"])
    golds = keys.group_by(["problem_id"], use_threads=False).aggregate([("answer", "count_distinct")])
    several = golds.filter(pc.greater(golds.column("answer_count_distinct"), 1))
    if several.num_rows == 0:
        return
    problem_id = several.column("problem_id")[0].as_py()
    rows = [i for i, hit in enumerate(pc.equal(keys.column("problem_id"), problem_id).to_pylist()) if hit]
    answers = keys.column("answer").to_pylist()
    first = rows[0]
    other = next(i for i in rows if answers[i] != answers[first])
    raise InputError(
        f"{source}: problem_id {problem_id!r} has different gold answers: {answers[first]!r} ({where(first)}) and "
        f"{answers[other]!r} ({where(other)}); a problem's samples must share one gold answer"
    )


def repeated_sample_error(
    problem_id: str, sample_index: int, rows: list[int], num_repeated: int, source: str, where: RowName = row_name
) -> InputError:
    """The error for a repeated sample key, naming the key, where it is (first three rows, named by `where`) and how many keys repeat."""
    more = f"; {num_repeated - 1:,} more keys repeat" if num_repeated > 1 else ""
    return InputError(
        f"{source}: sample (problem_id={problem_id!r}, sample_index={sample_index}) appears {len(rows)} times "
        f"({', '.join(where(r) for r in rows[:3])}){more}; each (problem_id, sample_index) must be unique"
    )


# --- graded samples from other tools (paced weight) --------------------------------------------


def read_verdicts(path: str, fields: SampleFields | None = None) -> pa.Table:
    """Read graded samples that another tool (or a hand-made file) wrote, for `paced weight`.

    Needs an id column and either `verdict` (one of schema.VERDICTS) or `correct` (true/false,
    1/0, "true"/"false"); `scored` is read when present, else a verdict counts when it is
    correct, incorrect, no_answer or truncated (timeout and error are left out, as `paced grade
    --errors exclude` does) and a `correct` value always counts. `sample_index` is read when
    present, else numbered in row order within each problem.

    Returns:
        A table of problem_id (string), sample_index (int32), verdict (string), scored (bool).

    Raises:
        InputError: no id or verdict column, a value that is not a verdict or a truth value
            (file, row, column), or a repeated (problem_id, sample_index).
    """
    fields = fields or SampleFields()
    raw = read_columns(path, fields.split)
    source = shown(path)
    if _stage(raw) is not None:
        graded = conform(raw.to_table(GRADES, source), GRADES, source, raw.where).select(["problem_id", "sample_index", "verdict", "scored"])
        check_unique_samples(graded, source, raw.where)
        return graded
    table = _graded_samples(raw, fields, source, with_completion=False)
    check_unique_samples(table, source, raw.where)
    return table


def read_references(path: str) -> pa.Table:
    """Read graded teacher samples for `paced export --references`, from any input.

    A paced grades table (Parquet with its metadata, or any format holding every grades
    column) is validated against `schema.GRADES`; any other table needs an id, a completion
    (one per row) and a verdict or `correct`, read as `read_verdicts` reads graded samples.

    Returns:
        A table of problem_id (string), sample_index (int32), completion (string), verdict (string).

    Raises:
        InputError: a needed column is missing, a value is not a verdict or a truth value, a
            row holds several completions, or a (problem_id, sample_index) repeats (file, row, column).
        SchemaError: a paced table that does not match the grades schema.
    """
    source = shown(path)
    where = row_name
    if _on_disk_stage(path):
        table = read_stage_table(path, GRADES)
    else:
        raw = read_columns(path)
        if raw.num_rows == 0:
            raise InputError(f"{source}: holds no graded samples")
        if _stage(raw) is not None or guess_stage(list(raw.data)) == "grades":
            table = conform(raw.to_table(GRADES, source), GRADES, source, raw.where)
        else:
            table = _graded_samples(raw, SampleFields(), source, with_completion=True)
        where = raw.where  # one table row per input row
    check_unique_samples(table, source, where)
    return table.select(["problem_id", "sample_index", "completion", "verdict"])


def _graded_samples(raw: Columns, fields: SampleFields, path: str, with_completion: bool) -> pa.Table:
    """problem_id, sample_index, verdict, scored (and completion) from a foreign graded table's columns."""
    if raw.num_rows == 0:
        raise InputError(f"{path}: holds no graded samples")
    names = list(raw.data)
    if with_completion:
        id_col = _reference_column(names, SAMPLE_ID_CANDIDATES, "the problem id", path)
    else:
        id_col = pick_column(names, fields.id_field, SAMPLE_ID_CANDIDATES, "--id-field", path, required=True)
    ids = _ids(raw, id_col, path)
    if "verdict" in names:
        verdicts = []
        for row, value in enumerate(raw.values("verdict")):
            if value not in VERDICTS:
                raise InputError(f"{path} {raw.where(row)}: column 'verdict' is {value!r}; allowed: {', '.join(VERDICTS)}")
            verdicts.append(value)
        scored = [v in SCORED_VERDICTS for v in verdicts]
    elif "correct" in names:
        truth = [_truth(v, path, raw.where(row)) for row, v in enumerate(raw.values("correct"))]
        verdicts = ["correct" if t else "incorrect" for t in truth]
        scored = [True] * len(truth)
    else:
        raise InputError(f"{path}: needs a 'verdict' column ({', '.join(VERDICTS)}) or a 'correct' column (true/false); columns: {', '.join(names)}")
    if "scored" in names:
        scored = [_truth(v, path, raw.where(row), "scored") for row, v in enumerate(raw.values("scored"))]
    index_col = pick_column(names, fields.sample_index_field, ("sample_index",), "--sample-index-field", path, required=False)
    given = raw.values(index_col) if index_col else None
    indices = _sample_indices(ids, given, index_col, path, raw.where, list(range(len(ids))))
    columns = {
        "problem_id": pa.array(ids, pa.string()),
        "sample_index": pa.array(indices, pa.int32()),
        "verdict": pa.array(verdicts, pa.string()),
        "scored": pa.array(scored, pa.bool_()),
    }
    if with_completion:
        completion_col = _reference_column(names, COMPLETION_CANDIDATES, "the completion", path)
        texts = []
        for row, value in enumerate(raw.values(completion_col)):
            found = _completions(value, completion_col, f"{path} {raw.where(row)}")
            if len(found) != 1:
                raise InputError(
                    f"{path} {raw.where(row)}: column {completion_col!r} holds {len(found)} completions but the row has one verdict; "
                    "grade them with 'paced grade' first"
                )
            texts.append(found[0])
        columns["completion"] = pa.array(texts, pa.string())
    return pa.table(columns)


def _reference_column(names: list[str], candidates: tuple[str, ...], what: str, path: str) -> str:
    """A references column by its common names; `paced export` has no flags to name them."""
    found = next((name for name in candidates if name in names), None)
    if found is None:
        raise InputError(
            f"{path}: found none of {', '.join(candidates)} ({what}); rename that column, or grade the samples with "
            f"'paced grade' (which names columns with --id-field and --completion-field) and pass its output (columns: {', '.join(names)})"
        )
    return found


def _truth(value, path: str, where: str, name: str = "correct") -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise InputError(f"{path} {where}: column '{name}' is {value!r}, expected true/false or 1/0")
