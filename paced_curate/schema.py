"""The data contract: one Arrow schema per stage table, validated on read.

Each stage writes its table with these types and records `paced.schema_version`,
`paced.stage` and `paced.provenance` (JSON) in the schema metadata. `conform` checks a table
that is read back (names, types, nulls, allowed values, version) and casts compatible types
(large_string to string, int64 to int32, ...), so later code can rely on the declared schema.

    table = conform(pq.read_table(path), GRADES, source=str(path))
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from paced_curate.errors import SchemaError, a_or_an

SCHEMA_VERSION = "1"
FINISH_REASONS = ("stop", "length", "error")
VERDICTS = ("correct", "incorrect", "no_answer", "truncated", "timeout", "error")
JUDGE_VERDICTS = ("correct", "incorrect", "invalid", "unreadable", "failed")
"""What a verifier model said of a sample (`paced grade --judge`, grade/judge.py)."""

MESSAGE = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])


@dataclass(frozen=True)
class TableSpec:
    """A stage's table: required fields, optional fields, and whether other columns pass through."""

    stage: str
    fields: tuple[pa.Field, ...]
    optional: tuple[pa.Field, ...] = ()
    passthrough: bool = False
    allowed_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    produced_by: str = ""
    """The command that makes this table, named in error messages."""

    @property
    def schema(self) -> pa.Schema:
        """The required fields as an Arrow schema (without metadata)."""
        return pa.schema(list(self.fields))

    def schema_for(self, names: list[str]) -> pa.Schema:
        """The declared schema of the given columns: required ones plus the optional ones present."""
        declared = {f.name: f for f in self.fields + self.optional}
        return pa.schema([declared[name] for name in names if name in declared])

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


def _f(name: str, type_: pa.DataType, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


PROBLEMS = TableSpec(
    stage="problems",
    fields=(_f("problem_id", pa.string()), _f("prompt", pa.string()), _f("answer", pa.string())),
    optional=(_f("messages", pa.list_(MESSAGE), nullable=True),),
    passthrough=True,
    produced_by="a problem file (jsonl, json, csv, parquet or a local Hugging Face dataset)",
)

ROLLOUT_FIELDS = (
    _f("problem_id", pa.string()),
    _f("sample_index", pa.int32()),
    _f("prompt", pa.string()),
    _f("answer", pa.string()),
    _f("completion", pa.string()),
    _f("finish_reason", pa.string()),
    # Null when unknown: generations written by another tool rarely record token counts.
    _f("completion_tokens", pa.int32(), nullable=True),
    _f("prompt_tokens", pa.int32(), nullable=True),
    _f("error", pa.string(), nullable=True),
)

# Rollouts and grades carry the problem set's other columns (difficulty, source, ...) so that
# later stages can group by them without a join.
ROLLOUTS = TableSpec(
    stage="rollouts",
    fields=ROLLOUT_FIELDS,
    passthrough=True,
    allowed_values={"finish_reason": FINISH_REASONS},
    produced_by="paced rollout",
)

GRADES = TableSpec(
    stage="grades",
    fields=ROLLOUT_FIELDS
    + (
        _f("extracted_answer", pa.string(), nullable=True),
        _f("verdict", pa.string()),
        _f("grader", pa.string()),
        _f("scored", pa.bool_()),
    ),
    # Optional: present only when asked for (--audit GRADER; --judge), so older tables still read.
    optional=(
        _f("audit_verdict", pa.string(), nullable=True),
        _f("rule_verdict", pa.string(), nullable=True),
        _f("judge_verdict", pa.string(), nullable=True),
        _f("judge_reply", pa.string(), nullable=True),
    ),
    passthrough=True,
    allowed_values={"finish_reason": FINISH_REASONS, "verdict": VERDICTS, "rule_verdict": VERDICTS, "judge_verdict": JUDGE_VERDICTS},
    produced_by="paced grade",
)

WEIGHTS = TableSpec(
    stage="weights",
    fields=(
        _f("problem_id", pa.string()),
        _f("n_samples", pa.int32()),
        _f("n_correct", pa.int32()),
        _f("n_excluded", pa.int32()),
        _f("n_scored", pa.int32()),
        _f("pass_rate", pa.float64(), nullable=True),
        _f("ci_low", pa.float64(), nullable=True),
        _f("ci_high", pa.float64(), nullable=True),
        _f("weight_raw", pa.float64()),
        _f("weight", pa.float64()),
    ),
    produced_by="paced weight",
)

EXPORT = TableSpec(
    stage="export",
    fields=(
        _f("problem_id", pa.string()),
        _f("prompt", pa.string()),
        _f("answer", pa.string()),
        _f("weight", pa.float64()),
        _f("pass_rate", pa.float64(), nullable=True),
        _f("n_samples", pa.int32()),
        _f("n_correct", pa.int32()),
    ),
    optional=(_f("reference", pa.string(), nullable=True), _f("messages", pa.list_(MESSAGE), nullable=True)),
    passthrough=True,
    produced_by="paced export --format native",
)

SPECS = {spec.stage: spec for spec in (PROBLEMS, ROLLOUTS, GRADES, WEIGHTS, EXPORT)}


def stage_metadata(stage: str, provenance: dict | None = None) -> dict[bytes, bytes]:
    """Schema metadata that marks a table as a paced stage table."""
    metadata = {b"paced.schema_version": SCHEMA_VERSION.encode(), b"paced.stage": stage.encode()}
    if provenance is not None:
        metadata[b"paced.provenance"] = json.dumps(provenance, sort_keys=True, default=str).encode()
    return metadata


def read_metadata(schema: pa.Schema) -> dict:
    """The paced metadata of a schema: `schema_version`, `stage` and `provenance` when present."""
    raw = schema.metadata or {}
    out = {}
    for key in ("schema_version", "stage"):
        if f"paced.{key}".encode() in raw:
            out[key] = raw[f"paced.{key}".encode()].decode()
    if b"paced.provenance" in raw:
        out["provenance"] = json.loads(raw[b"paced.provenance"])
    return out


def _compatible(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Whether `actual` can be cast to `expected` without changing meaning."""
    if actual == expected:
        return True
    strings = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
    if any(f(expected) for f in strings):
        return any(f(actual) for f in strings) or pa.types.is_null(actual)
    if pa.types.is_integer(expected):
        return pa.types.is_integer(actual) or pa.types.is_null(actual)
    if pa.types.is_floating(expected):
        return pa.types.is_floating(actual) or pa.types.is_integer(actual) or pa.types.is_null(actual)
    if pa.types.is_boolean(expected):
        return pa.types.is_boolean(actual) or pa.types.is_null(actual)
    if pa.types.is_list(expected) or pa.types.is_large_list(expected):
        return pa.types.is_list(actual) or pa.types.is_large_list(actual) or pa.types.is_null(actual)
    return False


def _type_name(type_: pa.DataType) -> str:
    return {"large_string": "string", "string_view": "string"}.get(str(type_), str(type_))


def check_stage(schema: pa.Schema, spec: TableSpec, source: str) -> None:
    """Refuse a table that declares another stage or another schema version."""
    meta = read_metadata(schema)
    stage = meta.get("stage")
    if stage is not None and stage != spec.stage:
        hint = f" (make one with '{spec.produced_by}')" if spec.produced_by else ""
        raise SchemaError(f"{source}: is {a_or_an(repr(stage))} table, expected {a_or_an(repr(spec.stage))} table{hint}")
    version = meta.get("schema_version")
    if version is not None and version != SCHEMA_VERSION:
        raise SchemaError(
            f"{source}: written with paced schema version {version}; this paced reads version "
            f"{SCHEMA_VERSION}: re-create it with this version's '{spec.produced_by}'"
        )


def check_schema(schema: pa.Schema, spec: TableSpec, source: str) -> None:
    """Check column names and types; raise one `SchemaError` that lists every problem."""
    check_stage(schema, spec, source)
    problems = []
    missing = [f.name for f in spec.fields if f.name not in schema.names]
    if missing:
        problems.append("missing column" + ("s " if len(missing) > 1 else " ") + ", ".join(f"'{m}'" for m in missing))
    for expected in spec.fields + spec.optional:
        if expected.name in schema.names:
            actual = schema.field(expected.name).type
            if not _compatible(actual, expected.type):
                problems.append(
                    f"column '{expected.name}' has type {_type_name(actual)}, expected {_type_name(expected.type)}"
                )
    if not spec.passthrough:
        known = {f.name for f in spec.fields + spec.optional}
        extra = [name for name in schema.names if name not in known]
        if extra:
            problems.append("unexpected column" + ("s " if len(extra) > 1 else " ") + ", ".join(f"'{e}'" for e in extra))
    if problems:
        raise SchemaError(f"{source}: not a valid {spec.stage} table: " + "; ".join(problems))


def row_name(index: int) -> str:
    """How messages name row `index` of an Arrow or Parquet table: "row 0" is its first row (pyarrow's index).

    Text inputs name their rows by file line instead (`tables.Columns.where`).
    """
    return f"row {index}"


def conform(table: pa.Table, spec: TableSpec, source: str, where: Callable[[int], str] = row_name) -> pa.Table:
    """Validate `table` against `spec` and cast it to the declared types.

    Args:
        table: the table as read.
        spec: the stage's `TableSpec`.
        source: file name (or "stdin") used in error messages.
        where: names a row's position in the input ("row 3"; "line 4" for a text file).

    Returns:
        The table with declared columns first, in declared types, and passthrough columns after.

    Raises:
        SchemaError: a column is missing or mistyped, a required value is null, a value is not
            allowed, or the table belongs to another stage or schema version.
    """
    check_schema(table.schema, spec, source)
    declared = [f for f in spec.fields + spec.optional if f.name in table.schema.names]
    columns, fields = [], []
    for expected in declared:
        column = table.column(expected.name)
        if column.type != expected.type:
            try:
                column = column.cast(expected.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise SchemaError(
                    f"{source}: column '{expected.name}' cannot be read as {_type_name(expected.type)}: {error}"
                ) from None
        if not expected.nullable and column.null_count:
            row = pc.index(column.is_null(), True).as_py()
            raise SchemaError(f"{source} {where(row)}: column '{expected.name}' is null")
        allowed = spec.allowed_values.get(expected.name)
        if allowed is not None:
            bad = pc.invert(pc.is_in(column, value_set=pa.array(allowed)))
            if expected.nullable:  # a null is "not asked" (judge_verdict), never a bad value
                bad = pc.and_(bad, pc.is_valid(column))
            if pc.any(bad).as_py():
                row = pc.index(bad, True).as_py()
                value = column[row].as_py()
                raise SchemaError(
                    f"{source} {where(row)}: column '{expected.name}' has value {value!r}; "
                    f"allowed: {', '.join(allowed)}"
                )
        columns.append(column)
        fields.append(expected)
    names = {f.name for f in fields}
    for name in table.schema.names:
        if name not in names:
            columns.append(table.column(name))
            fields.append(table.schema.field(name))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=table.schema.metadata))


def build_table(rows: list[dict], spec: TableSpec, metadata: dict[bytes, bytes] | None = None) -> pa.Table:
    """Build a table from row dicts with the declared schema, rejecting unknown or missing keys.

    pyarrow silently drops unknown keys and turns missing keys into nulls; this refuses both,
    since either means a bug in the stage that built the rows.
    """
    if not rows:
        return spec.schema.empty_table().replace_schema_metadata(metadata)
    names = list(rows[0])
    schema = spec.schema_for(names)
    expected = set(schema.names)
    for index, row in enumerate(rows):
        keys = set(row)
        assert keys == expected, f"row {index} has keys {sorted(keys ^ expected)} that differ from the schema"
    missing = [f.name for f in spec.fields if f.name not in expected]
    assert not missing, f"rows lack required columns {missing}"
    return pa.Table.from_pylist(rows, schema=schema.with_metadata(metadata))
