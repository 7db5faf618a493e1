"""Problem sets: any input the one reader takes (`tables`: JSONL, JSON, CSV, Parquet, a folder, a pipe).

`read_problems` returns the same table (`schema.PROBLEMS`): `problem_id`, `prompt`, `answer`,
`messages` when the prompt is a chat, and every other column passed through. Field names are
found among common ones or set with `--id-field`, `--prompt-field`, `--answer-field`.
Problems without ids get a stable content hash; duplicate ids are an error.

    table = read_problems("math.jsonl", FieldMap(prompt_field="problem"))
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from dataclasses import dataclass

import pyarrow as pa

from paced_curate.errors import InputError, a_or_an
from paced_curate.schema import MESSAGE, PROBLEMS, conform
# The one reader (`tables`) reads every table; `parquet_folder_files` is named here for older imports.
from paced_curate.tables import Columns, parquet_folder_files, read_columns, shown  # noqa: F401

ID_CANDIDATES = ("problem_id", "id", "unique_id", "uid", "uuid")
PROMPT_CANDIDATES = ("prompt", "problem", "question", "messages", "input")
SOURCE_MESSAGES = "source_messages"
ANSWER_CANDIDATES = ("answer", "gold", "final_answer", "ground_truth", "expected_answer", "target")


@dataclass(frozen=True, kw_only=True)
class FieldMap:
    """Which input columns hold the id, the prompt and the gold answer."""

    id_field: str | None = None
    """Column with unique problem ids; by default the first of problem_id, id, unique_id, uid, uuid, else a content hash."""
    prompt_field: str | None = None
    """Column with the prompt (text or chat messages); by default the first of prompt, problem, question, messages, input."""
    answer_field: str | None = None
    """Column with the gold answer; by default the first of answer, gold, final_answer, ground_truth, expected_answer, target."""
    split: str | None = None
    """Split of a Hugging Face dataset folder; needed only when it has several."""


def read_problems(path: str, fields: FieldMap | None = None) -> pa.Table:
    """Read a problem set and normalise it to the problems schema.

    Args:
        path: any input `tables.read_columns` takes: a .jsonl/.ndjson, .json, .csv, .parquet or
            .arrow file, a folder of Parquet files, a local Hugging Face dataset folder, or "-".
        fields: column mapping; see `FieldMap`.

    Returns:
        A table with `problem_id`, `prompt`, `answer` (strings), `messages` for chat prompts,
        and the other input columns.

    Raises:
        InputError: the file is missing, empty or malformed, a mapped column is missing, a
            value is null or of the wrong kind, or ids repeat. The message names file and row.
    """
    fields = fields or FieldMap()
    return problems_from_columns(read_columns(path, fields.split), fields, shown(path))


def problems_from_columns(raw: Columns, fields: FieldMap | None, source: str) -> pa.Table:
    """A problems table from columns the one reader read (`read_problems` once the input is read).

    Raises:
        InputError: as `read_problems`.
    """
    if raw.num_rows == 0:
        raise InputError(f"{source}: holds no problems")
    return _normalise(raw, fields or FieldMap(), source)


def pick_column(names: list[str], chosen: str | None, candidates: tuple[str, ...], flag: str, path: str, required: bool) -> str | None:
    if chosen is not None:
        if chosen not in names:
            raise InputError(f"{path}: has no column {chosen!r} ({flag}); columns: {', '.join(names)}")
        return chosen
    for name in candidates:
        if name in names:
            return name
    if required:
        raise InputError(
            f"{path}: found none of {', '.join(candidates)}; name the column with {flag} (columns: {', '.join(names)})"
        )
    return None


def _normalise(raw: Columns, fields: FieldMap, path: str) -> pa.Table:
    names = list(raw.data)
    id_col = pick_column(names, fields.id_field, ID_CANDIDATES, "--id-field", path, required=False)
    prompt_col = pick_column(names, fields.prompt_field, PROMPT_CANDIDATES, "--prompt-field", path, required=True)
    answer_col = pick_column(names, fields.answer_field, ANSWER_CANDIDATES, "--answer-field", path, required=True)

    if raw.text_only:
        _refuse_chat_as_text(raw, prompt_col, path)
    prompts, messages = _prompt_columns(raw.values(prompt_col), path, raw.where)
    answers = answer_column(raw.values(answer_col), path, answer_col, raw.where)
    if id_col is not None:
        ids = []
        for index, value in enumerate(raw.values(id_col)):
            if value is None or value == "":
                raise InputError(f"{path} {raw.where(index)}: column '{id_col}' (the id) is empty")
            ids.append(str(value))
    else:
        ids = [_content_id(p, m, a) for p, m, a in zip(prompts, messages or [None] * len(prompts), answers)]
    _check_unique(ids, path, raw.where, derived=id_col is None)

    out = {"problem_id": pa.array(ids, pa.string()), "prompt": pa.array(prompts, pa.string()), "answer": pa.array(answers, pa.string())}
    if messages is not None:
        out["messages"] = pa.array(messages, pa.list_(MESSAGE))
    for name in names:
        if name in (id_col, prompt_col, answer_col):
            continue
        # `messages` always means the chat prompt the student sees. When the prompt comes from a
        # text column (OpenR1-Math: `problem` and `messages`), the conversation, worked solution
        # included, is kept as `source_messages` and never rendered.
        target = SOURCE_MESSAGES if name == "messages" else name
        if target in out:
            raise InputError(f"{path}: column {name!r} clashes with the mapped {target} column; rename one of them")
        out[target] = raw.arrow(name, path)
    return conform(pa.table(out), PROBLEMS, path)


def _refuse_chat_as_text(raw: Columns, name: str, path: str) -> None:
    """A CSV cell cannot hold chat turns: one written there as text must not become a text prompt.

    pandas writes a list of messages to CSV as its repr ("[{'role': 'user', ...}]"); read as text,
    the student would be prompted with that string.
    """
    for index, value in enumerate(raw.values(name)):
        text = (value or "").lstrip()
        if text.startswith("[{") and ("'role'" in text or '"role"' in text):
            raise InputError(
                f"{path} {raw.where(index)}: column {name!r} holds chat turns written as text, which a CSV file cannot hold; "
                "use JSONL, JSON or Parquet"
            )


def prompt_turns(messages: list[dict]) -> list[dict] | None:
    """The chat turns a student is prompted with: everything up to and including the last user turn.

    What follows the last user turn (an assistant's worked solution, in chat SFT dumps) is the
    answer, never part of the prompt.

    Args:
        messages: the conversation, a list of {"role", "content"} dicts.

    Returns:
        The prefix that ends with the last user turn, or None when there is no user turn.

    Example:
        >>> prompt_turns([{"role": "user", "content": "2+3?"}, {"role": "assistant", "content": "5"}])
        [{'role': 'user', 'content': '2+3?'}]
    """
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    return None if last_user is None else list(messages[: last_user + 1])


def _prompt_columns(values: list, path: str, row_name) -> tuple[list[str], list | None]:
    is_chat = any(isinstance(value, list) for value in values)
    prompts, messages = [], [] if is_chat else None
    for index, value in enumerate(values):
        if value is None:
            raise InputError(f"{path} {row_name(index)}: the prompt is null")
        if is_chat:
            if not all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value) or not value:
                raise InputError(f"{path} {row_name(index)}: chat prompt must be a list of {{role, content}} messages")
            turns = prompt_turns(value)
            if turns is None:
                roles = ", ".join(m["role"] for m in value)
                raise InputError(f"{path} {row_name(index)}: chat prompt has no user turn (roles: {roles}); the prompt ends at the last user turn")
            if not turns[-1]["content"].strip():
                raise InputError(f"{path} {row_name(index)}: chat prompt's last user turn is {_emptiness(turns[-1]['content'])}")
            messages.append([{"role": m["role"], "content": m["content"]} for m in turns])
            prompts.append(turns[-1]["content"])
        elif isinstance(value, str):
            if not value.strip():
                # Nothing to solve: the student would be sampled on the template alone.
                raise InputError(f"{path} {row_name(index)}: the prompt is {_emptiness(value)}")
            prompts.append(value)
        else:
            raise InputError(f"{path} {row_name(index)}: the prompt is {a_or_an(type(value).__name__)}, expected text or chat messages")
    return prompts, messages


def _emptiness(value: str) -> str:
    return "empty" if not value else f"only whitespace ({value!r})"


def answer_column(values: list, path: str, name: str, row_name) -> list[str]:
    """Gold answers as text, refusing values that cannot be right.

    Raises:
        InputError: a value is null, NaN, empty or whitespace only (nothing could be graded
            correct against it, and an empty box would be), or not text or a number; the
            message names file, row and column.
    """
    answers = []
    for index, value in enumerate(values):
        where = f"{path} {row_name(index)}: column '{name}' (the gold answer)"
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise InputError(f"{where} is null")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InputError(f"{where} is {a_or_an(type(value).__name__)}, expected text or a number")
        if isinstance(value, str) and not value.strip():
            raise InputError(f"{where} is empty" if not value else f"{where} is only whitespace ({value!r})")
        answers.append(value if isinstance(value, str) else str(value))
    return answers


def _content_id(prompt: str, messages, answer: str) -> str:
    text = json.dumps({"prompt": messages if messages is not None else prompt, "answer": answer}, sort_keys=True)
    return "p" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_unique(ids: list[str], path: str, row_name, derived: bool) -> None:
    seen: dict[str, list[int]] = defaultdict(list)
    for index, problem_id in enumerate(ids):
        seen[problem_id].append(index)
    repeated = [(pid, rows) for pid, rows in seen.items() if len(rows) > 1]
    if not repeated:
        return
    shown = "; ".join(f"{pid!r} at {', '.join(row_name(r) for r in rows[:3])}" for pid, rows in repeated[:3])
    more = f"; and {len(repeated) - 3} more" if len(repeated) > 3 else ""
    what = "identical problems (same prompt and answer)" if derived else "duplicate problem ids"
    raise InputError(f"{path}: {what}: {shown}{more}")
