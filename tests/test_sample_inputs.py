"""Issue #12, sections 1 and 5: `paced grade` and `paced weight` read what people have, and refuse
data that cannot be right (empty gold answers, repeated samples), with one-line errors.

The fixtures are shaped like real files: NeMo-Skills output (`generation`, `expected_answer`,
no id, one file per seed concatenated), lm-eval samples (`doc_id`, `resps` nested lists,
`filtered_resps`, `target`, one row per filter), open-r1 dumps (`problem`, `solution`,
`answer`, a list of `generations` per row, `messages`), and a `datasets` export.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paced_curate.errors import InputError
from paced_curate.io import read_table, write_table
from paced_curate.problems import read_problems
from paced_curate.samples import SampleFields, read_generations, read_verdicts
from paced_curate.schema import GRADES, ROLLOUTS, WEIGHTS, build_table, stage_metadata
from paced_curate.weight import WeightConfig, count_samples, run_weight
from tests.conftest import assert_user_error, write_jsonl
from tests.test_schema import GRADE_ROW, ROLLOUT_ROW

KEY = ["problem_id", "sample_index", "answer", "completion"]


def nemo_skills(path: Path) -> Path:
    """Two seeds of NeMo-Skills math output, concatenated: no id, no sample index."""
    rows = []
    for seed, (first, second) in enumerate([("\\boxed{5}", "\\boxed{2}"), ("So \\boxed{6}", "\\boxed{3}")]):
        rows += [
            {"problem": "What is 2+3?", "expected_answer": "5", "generation": first, "predicted_answer": first[-2], "symbolic_correct": seed == 0, "num_generated_tokens": 7},
            {"problem": "What is 1+1?", "expected_answer": 2, "generation": second, "predicted_answer": second[-2], "symbolic_correct": seed == 0, "num_generated_tokens": 5},
        ]
    return write_jsonl(path, rows)


def lm_eval(path: Path, filters=("none",)) -> Path:
    """lm-eval `samples_<task>.jsonl`: one row per (doc, filter); `resps` is [[k responses]]."""
    rows = []
    for flt in filters:
        for doc_id, (target, responses) in enumerate([("18", ["... so \\boxed{18}", "The answer is 17"]), ("3", ["\\boxed{3}", "\\boxed{3}"])]):
            rows.append({
                "doc_id": doc_id, "doc": {"question": f"question {doc_id}", "answer": f"#### {target}"}, "target": target,
                "arguments": {"gen_args_0": {"arg_0": f"Q: question {doc_id}\nA:", "arg_1": {"until": ["Q:"]}}},
                "resps": [responses], "filtered_resps": [responses], "filter": flt, "metrics": ["exact_match"],
                "doc_hash": "abc", "prompt_hash": "def", "target_hash": "ghi", "exact_match": 1.0,
            })
    return write_jsonl(path, rows)


def open_r1(path: Path) -> Path:
    """An OpenR1-Math dump: a list of generations per problem, and the chat `messages` with the solution."""
    rows = [
        {
            "uuid": "u-1", "problem": "Find x if 2x+1=13.", "solution": "2x = 12 so x = 6.", "answer": "6",
            "generations": ["<think>2x=12</think> x = \\boxed{6}", "x = \\boxed{7}", "\\boxed{6}"],
            "correctness_math_verify": [True, False, True],
            "messages": [{"role": "user", "content": "Find x if 2x+1=13."}, {"role": "assistant", "content": "x = \\boxed{6}"}],
        },
        {
            "uuid": "u-2", "problem": "What is 3*3?", "solution": "9", "answer": "9",
            "generations": ["\\boxed{9}"], "correctness_math_verify": [True],
            "messages": [{"role": "user", "content": "What is 3*3?"}, {"role": "assistant", "content": "\\boxed{9}"}],
        },
    ]
    return write_jsonl(path, rows)


def datasets_export(path: Path) -> Path:
    import datasets

    rows = [{"id": "a", "question": "1+1", "answer": "2", "response": "\\boxed{2}"}, {"id": "a", "question": "1+1", "answer": "2", "response": "\\boxed{3}"}]
    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


def keys(table: pa.Table) -> list[tuple]:
    return [tuple(row[k] for k in KEY) for row in table.select(KEY).to_pylist()]


def _nemo_id(prompt, answer):
    from paced_curate.samples import _content_id

    return _content_id(prompt, answer)


READ_CASES = [
    # (name, make, fields, expected (problem_id, sample_index, answer, completion) rows)
    ("nemo-skills: no id, seeds concatenated, numbered by row order per problem", nemo_skills, SampleFields(), [
        (_nemo_id("What is 2+3?", "5"), 0, "5", "\\boxed{5}"),
        (_nemo_id("What is 1+1?", "2"), 0, "2", "\\boxed{2}"),
        (_nemo_id("What is 2+3?", "5"), 1, "5", "So \\boxed{6}"),
        (_nemo_id("What is 1+1?", "2"), 1, "2", "\\boxed{3}"),
    ]),
    ("lm-eval: doc_id, target, resps [[k responses]] expand into k samples", lm_eval, SampleFields(), [
        ("0", 0, "18", "... so \\boxed{18}"), ("0", 1, "18", "The answer is 17"), ("1", 0, "3", "\\boxed{3}"), ("1", 1, "3", "\\boxed{3}"),
    ]),
    ("open-r1: uuid, one row per problem with a list of generations", open_r1, SampleFields(), [
        ("u-1", 0, "6", "<think>2x=12</think> x = \\boxed{6}"), ("u-1", 1, "6", "x = \\boxed{7}"), ("u-1", 2, "6", "\\boxed{6}"), ("u-2", 0, "9", "\\boxed{9}"),
    ]),
    ("open-r1 messages as completions: the assistant's worked solution (teacher references)", open_r1, SampleFields(completion_field="messages"), [
        ("u-1", 0, "6", "x = \\boxed{6}"), ("u-2", 0, "9", "\\boxed{9}"),
    ]),
    ("a datasets.save_to_disk folder", datasets_export, SampleFields(), [("a", 0, "2", "\\boxed{2}"), ("a", 1, "2", "\\boxed{3}")]),
]


@pytest.mark.parametrize("name, make, fields, expected", READ_CASES, ids=[c[0].split(":")[0] for c in READ_CASES])
def test_generations_from_other_tools_become_samples(tmp_path, name, make, fields, expected):
    path = make(tmp_path / ("data" if make is datasets_export else "gen.jsonl"))
    table = read_generations(str(path), fields)
    assert keys(table) == expected, name
    assert set(table.column("finish_reason").to_pylist()) == {"stop"}, "a missing finish_reason counts as stop"
    assert table.column("completion_tokens").null_count == table.num_rows or make is nemo_skills


def test_other_columns_pass_through_and_lists_repeat_per_sample(tmp_path):
    table = read_generations(str(open_r1(tmp_path / "r1.jsonl")))
    assert table.column("solution").to_pylist() == ["2x = 12 so x = 6."] * 3 + ["9"]
    assert table.column("prompt").to_pylist() == ["Find x if 2x+1=13."] * 3 + ["What is 3*3?"]
    lm = read_generations(str(lm_eval(tmp_path / "lm.jsonl")))
    assert lm.column("filtered_resps").to_pylist()[0] == [["... so \\boxed{18}", "The answer is 17"]]


def test_every_file_format_gives_the_same_samples(tmp_path):
    rows = [
        {"problem_id": "p1", "completion": "\\boxed{2}", "answer": "2", "source": "x"},
        {"problem_id": "p1", "completion": "\\boxed{3}", "answer": "2", "source": "x"},
        {"problem_id": "p2", "completion": "no idea", "answer": "5", "source": "y"},
    ]
    paths = {"jsonl": write_jsonl(tmp_path / "g.jsonl", rows)}
    paths["json"] = tmp_path / "g.json"
    paths["json"].write_text(json.dumps(rows))
    paths["csv"] = tmp_path / "g.csv"
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    paths["parquet"] = tmp_path / "g.parquet"
    pq.write_table(pa.Table.from_pylist(rows), paths["parquet"])
    (tmp_path / "folder").mkdir()
    pq.write_table(pa.Table.from_pylist(rows[:2]), tmp_path / "folder" / "a.parquet")
    pq.write_table(pa.Table.from_pylist(rows[2:]), tmp_path / "folder" / "b.parquet")
    paths["parquet folder"] = tmp_path / "folder"
    expected = [("p1", 0, "2", "\\boxed{2}"), ("p1", 1, "2", "\\boxed{3}"), ("p2", 0, "5", "no idea")]
    for kind, path in paths.items():
        table = read_generations(str(path))
        assert keys(table) == expected, kind
        assert table.column("source").to_pylist() == ["x", "x", "y"], kind


def test_gold_answers_join_from_the_problem_set_by_id(tmp_path):
    problems = write_jsonl(tmp_path / "problems.jsonl", [
        {"id": "q1", "question": "1+1", "answer": "2", "difficulty": "easy"},
        {"id": "q2", "question": "9*9", "answer": "81", "difficulty": "hard"},
    ])
    generations = write_jsonl(tmp_path / "gen.jsonl", [{"id": "q2", "output": "\\boxed{81}"}, {"id": "q1", "output": "\\boxed{3}"}, {"id": "q2", "output": "80"}])
    table = read_generations(str(generations), SampleFields(problems=str(problems)))
    assert keys(table) == [("q2", 0, "81", "\\boxed{81}"), ("q1", 0, "2", "\\boxed{3}"), ("q2", 1, "81", "80")]
    assert table.column("prompt").to_pylist() == ["9*9", "1+1", "9*9"]
    assert table.column("difficulty").to_pylist() == ["hard", "easy", "hard"]
    stray = write_jsonl(tmp_path / "stray.jsonl", [{"id": "q1", "output": "1"}, {"id": "q9", "output": "2"}])
    with pytest.raises(InputError, match=r"stray.jsonl line 2: problem id 'q9' is not in .*problems.jsonl"):
        read_generations(str(stray), SampleFields(problems=str(problems)))


def test_paced_rollouts_are_read_as_they_are(tmp_path):
    rows = [ROLLOUT_ROW | {"problem_id": "p", "sample_index": i} for i in (3, 1)]
    write_table(build_table(rows, ROLLOUTS), str(tmp_path / "r.parquet"), ROLLOUTS)
    table = read_generations(str(tmp_path / "r.parquet"))
    assert table.column("sample_index").to_pylist() == [3, 1]
    assert table.column("completion_tokens").to_pylist() == [9, 9]


def test_grade_end_to_end_on_nemo_skills_output_gives_the_right_pass_rates(cli, tmp_path):
    path = nemo_skills(tmp_path / "output.jsonl")
    result = cli("grade", path, "-o", tmp_path / "graded.parquet", "--workers", "1", "--json")
    assert result.exit_code == 0, result.output
    graded = read_table(str(tmp_path / "graded.parquet"), GRADES)
    assert graded.column("verdict").to_pylist() == ["correct", "correct", "incorrect", "incorrect"]
    assert graded.column("predicted_answer").to_pylist() == ["5", "2", "6", "3"], "other columns pass through"
    weights = run_weight(WeightConfig(graded=str(tmp_path / "graded.parquet"))).table
    assert sorted(weights.column("pass_rate").to_pylist()) == [0.5, 0.5]


# --- paced weight reads graded samples from other tools ----------------------------------------


VERDICT_CASES = [
    ("verdict column", [{"id": "a", "verdict": "correct"}, {"id": "a", "verdict": "incorrect"}, {"id": "a", "verdict": "timeout"}, {"id": "b", "verdict": "no_answer"}],
     {"a": (3, 1, 2), "b": (1, 0, 1)}),
    ("correct as bool", [{"id": "a", "correct": True}, {"id": "a", "correct": False}, {"id": "b", "correct": True}], {"a": (2, 1, 2), "b": (1, 1, 1)}),
    ("correct as 0/1 with scored", [{"id": "a", "correct": 1, "scored": True}, {"id": "a", "correct": 0, "scored": False}], {"a": (2, 1, 1)}),
    ("lm-eval style doc_id and string truth", [{"doc_id": 0, "correct": "true"}, {"doc_id": 0, "correct": "False"}], {"0": (2, 1, 2)}),
]


@pytest.mark.parametrize("name, rows, expected", VERDICT_CASES, ids=[c[0] for c in VERDICT_CASES])
def test_weight_reads_graded_samples_from_other_tools(tmp_path, name, rows, expected):
    """expected: problem -> (n_samples, n_correct, n_scored)."""
    for suffix in ("jsonl", "csv"):
        path = tmp_path / f"graded.{suffix}"
        if suffix == "jsonl":
            write_jsonl(path, rows)
        else:
            with open(path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
                writer.writeheader()
                writer.writerows(rows)
        counts = count_samples(str(path)).to_pylist()
        assert {r["problem_id"]: (r["n_samples"], r["n_correct"], r["n_scored"]) for r in counts} == expected, (name, suffix)


def test_parquet_without_paced_metadata_is_read_by_its_columns(tmp_path):
    pq.write_table(pa.table({"problem_id": ["a", "a", "b"], "correct": [True, False, False]}), tmp_path / "g.parquet")
    assert [r["n_correct"] for r in count_samples(str(tmp_path / "g.parquet")).to_pylist()] == [1, 0]


# --- errors name the format, file, row and column -----------------------------------------------


def test_jsonl_named_parquet_names_the_real_format(cli, tmp_path):
    path = write_jsonl(tmp_path / "gen.parquet", [{"problem_id": "a", "completion": "x", "answer": "1"}])
    expected = f"{path}: is not a Parquet file: it holds JSON lines; name it .jsonl"
    assert_user_error(cli("grade", path, "-o", tmp_path / "g", "--workers", "1"), expected)
    assert_user_error(cli("weight", path, "-o", tmp_path / "w.parquet"), expected)
    assert_user_error(cli("inspect", path), "is not a Parquet file: it holds JSON lines")


BAD_GENERATIONS = [
    ("no completion column", [{"id": "a", "text": "x", "answer": "1"}], SampleFields(),
     "found none of completion, generation, generations, response, responses, output, outputs, resps; name the column with --completion-field"),
    ("completion is null", [{"id": "a", "completion": None, "answer": "1"}], SampleFields(), "line 1: column 'completion' (the completion) is null"),
    ("empty list of generations", [{"id": "a", "generations": [], "answer": "1"}], SampleFields(), "line 1: column 'generations' is an empty list of completions"),
    ("chat without an assistant turn", [{"id": "a", "messages": [{"role": "user", "content": "q"}], "answer": "1"}], SampleFields(completion_field="messages"),
     "line 1: column 'messages' is a conversation without an assistant turn"),
    ("no id and no prompt", [{"completion": "x", "answer": "1"}], SampleFields(), "found no id column"),
    ("--problems without an id", [{"completion": "x"}], SampleFields(problems="p.jsonl"), "--problems joins by id"),
    ("unknown finish reason", [{"id": "a", "completion": "x", "answer": "1", "finish_reason": "content_filter"}], SampleFields(),
     "line 1: column 'finish_reason' is 'content_filter'; allowed: stop, length, error"),
    ("sample index not a number", [{"id": "a", "completion": "x", "answer": "1", "sample_index": "first"}], SampleFields(),
     "line 1: column 'sample_index' (the sample index) is 'first', expected a whole number"),
    ("lm-eval rows repeated per filter", None, SampleFields(), "holds each document once per lm-eval filter (flexible-extract, strict-match)"),
    ("one problem, two gold answers", [{"id": "a", "completion": "x", "answer": "1"}, {"id": "b", "completion": "y", "answer": "5"},
                                      {"id": "a", "completion": "z", "answer": "2"}], SampleFields(),
     "problem_id 'a' has different gold answers: '1' (line 1) and '2' (line 3)"),
    ("ids 1 and '1' with two gold answers", [{"id": 1, "completion": "x", "answer": "1"}, {"id": "1", "completion": "z", "answer": "3"}], SampleFields(),
     "problem_id '1' has different gold answers: '1' (line 1) and '3' (line 2)"),
]


@pytest.mark.parametrize("name, rows, fields, expected", BAD_GENERATIONS, ids=[c[0] for c in BAD_GENERATIONS])
def test_bad_generations_are_one_line_errors_naming_file_and_row(tmp_path, name, rows, fields, expected):
    path = lm_eval(tmp_path / "g.jsonl", ("strict-match", "flexible-extract")) if rows is None else write_jsonl(tmp_path / "g.jsonl", rows)
    with pytest.raises(InputError) as caught:
        read_generations(str(path), fields)
    assert str(caught.value).startswith(str(path)), str(caught.value)
    assert expected in str(caught.value), name


# --- section 5: gold answers that cannot be right -------------------------------------------------

EMPTY_GOLD = [(None, "is null"), ("", "is empty"), ("  ", "is only whitespace ('  ')"), ("\n", "is only whitespace ('\\n')")]


@pytest.mark.parametrize("gold, problem", EMPTY_GOLD, ids=["None", "empty", "spaces", "newline"])
def test_empty_gold_answer_is_refused_in_problem_sets_and_generations(tmp_path, gold, problem):
    good = {"id": "a", "prompt": "1+1", "answer": "2", "completion": "\\boxed{2}"}
    bad = {"id": "b", "prompt": "2+2", "answer": gold, "completion": "\\boxed{}"}
    jsonl = write_jsonl(tmp_path / "rows.jsonl", [good, bad])
    expected = f"{jsonl} line 2: column 'answer' (the gold answer) {problem}"
    for read in (read_problems, read_generations):
        with pytest.raises(InputError) as caught:
            read(str(jsonl))
        assert str(caught.value) == expected, read.__name__


def test_nan_gold_answer_from_a_dataframe_is_refused(tmp_path):
    # pandas writes a missing number as NaN, which str() would turn into the answer "nan".
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "prompt": ["x", "y"], "answer": [2.0, float("nan")], "completion": ["2", "3"]}), path)
    for read in (read_problems, read_generations):
        with pytest.raises(InputError, match=r"rows.parquet row 1: column 'answer' \(the gold answer\) is null"):
            read(str(path))


def test_empty_gold_in_a_paced_rollouts_table_and_through_problems_join(cli, tmp_path):
    rows = [ROLLOUT_ROW | {"problem_id": "a"}, ROLLOUT_ROW | {"problem_id": "b", "answer": " "}]
    write_table(build_table(rows, ROLLOUTS), str(tmp_path / "r.parquet"), ROLLOUTS)
    assert_user_error(cli("grade", tmp_path / "r.parquet", "-o", tmp_path / "g", "--workers", "1"),
                      f"{tmp_path / 'r.parquet'} row 1: column 'answer' (the gold answer) is only whitespace")
    problems = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "x", "answer": "\t"}])
    generations = write_jsonl(tmp_path / "gen.jsonl", [{"id": "a", "completion": "\\boxed{}"}])
    with pytest.raises(InputError, match=r"p.jsonl line 1: column 'answer' \(the gold answer\) is only whitespace"):
        read_generations(str(generations), SampleFields(problems=str(problems)))


# --- section 5: a repeated (problem_id, sample_index) ----------------------------------------------


def _rollouts(rows):
    return build_table([ROLLOUT_ROW | r for r in rows], ROLLOUTS, stage_metadata("rollouts"))


def test_repeated_sample_in_one_file_is_an_error_naming_the_key(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [
        {"id": "p", "completion": "a", "answer": "1", "sample_index": 0},
        {"id": "p", "completion": "b", "answer": "1", "sample_index": 1},
        {"id": "p", "completion": "a", "answer": "1", "sample_index": 0},
    ])
    with pytest.raises(InputError) as caught:
        read_generations(str(path))
    assert str(caught.value) == f"{path}: sample (problem_id='p', sample_index=0) appears 2 times (line 1, line 3); each (problem_id, sample_index) must be unique"


def test_repeated_sample_after_numbering_is_an_error(tmp_path):
    # Line 2 has no index: numbered by order within p it becomes 0, which line 1 already is.
    path = write_jsonl(tmp_path / "g.jsonl", [
        {"id": "p", "completion": "a", "answer": "1", "sample_index": 0},
        {"id": "p", "completion": "b", "answer": "1", "sample_index": None},
    ])
    with pytest.raises(InputError, match=r"sample \(problem_id='p', sample_index=0\) appears 2 times \(line 1, line 2\)"):
        read_generations(str(path))


def test_repeated_sample_across_part_files_is_refused_by_grade_weight_and_inspect(cli, tmp_path):
    graded = tmp_path / "graded"
    graded.mkdir()
    grade, meta = dict(GRADE_ROW), stage_metadata("grades")
    # Two samples of p, the wrong one copied into a second part: counted, p would be 1/3, not 1/2.
    pq.write_table(build_table([grade | {"problem_id": "p", "sample_index": 0, "verdict": "incorrect"}, grade | {"problem_id": "p", "sample_index": 1}], GRADES, meta), graded / "part-00000.parquet")
    pq.write_table(build_table([grade | {"problem_id": "p", "sample_index": 0, "verdict": "incorrect"}], GRADES, meta), graded / "part-00001.parquet")
    key = "sample (problem_id='p', sample_index=0) appears 2 times (row 0, row 2)"
    assert_user_error(cli("weight", graded, "-o", tmp_path / "w.parquet"), key)
    assert_user_error(cli("inspect", graded), key)
    rollouts = tmp_path / "rollouts"
    rollouts.mkdir()
    pq.write_table(_rollouts([{"problem_id": "p", "sample_index": 0}]), rollouts / "part-00000.parquet")
    pq.write_table(_rollouts([{"problem_id": "q", "sample_index": 0}, {"problem_id": "p", "sample_index": 0}]), rollouts / "part-00001.parquet")
    assert_user_error(cli("grade", rollouts, "-o", tmp_path / "g", "--workers", "1"), "sample (problem_id='p', sample_index=0) appears 2 times (row 0, row 2)")


def test_repeated_sample_in_a_graded_jsonl_is_refused_by_weight(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [{"id": "p", "sample_index": 1, "correct": 1}, {"id": "p", "sample_index": 1, "correct": 0}])
    with pytest.raises(InputError, match=r"sample \(problem_id='p', sample_index=1\) appears 2 times \(line 1, line 2\)"):
        read_verdicts(str(path))


def test_with_problems_the_rows_own_answer_column_does_not_replace_the_joined_gold(tmp_path):
    problems = write_jsonl(tmp_path / "problems.jsonl", [{"id": "q1", "question": "1+1", "answer": "2"}])
    generations = write_jsonl(tmp_path / "gen.jsonl", [{"id": "q1", "completion": "\\boxed{2}", "answer": "wrong gold"}])
    table = read_generations(str(generations), SampleFields(problems=str(problems)))
    assert table.column("answer").to_pylist() == ["2"]


def _arrow_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_foreign_tables_piped_on_stdin_are_read_by_their_columns(cli, tmp_path):
    generations = pa.table({"doc_id": [0, 0, 1], "resps": [["\\boxed{2}"], ["\\boxed{3}"], ["\\boxed{5}"]], "target": ["2", "2", "5"]})
    result = cli("grade", "-", "-o", tmp_path / "graded", "--workers", "1", input=_arrow_stream(generations))
    assert result.exit_code == 0, result.output
    graded = read_table(str(tmp_path / "graded"), GRADES)
    assert graded.select(["problem_id", "sample_index", "verdict"]).to_pylist() == [
        {"problem_id": "0", "sample_index": 0, "verdict": "correct"},
        {"problem_id": "0", "sample_index": 1, "verdict": "incorrect"},
        {"problem_id": "1", "sample_index": 0, "verdict": "correct"},
    ]
    verdicts = pa.table({"id": ["a", "a", "b"], "correct": [True, False, False]})
    result = cli("weight", "-", "-o", tmp_path / "w.parquet", "--kernel", "uniform", input=_arrow_stream(verdicts))
    assert result.exit_code == 0, result.output
    weights = read_table(str(tmp_path / "w.parquet"), WEIGHTS)
    assert weights.select(["problem_id", "n_correct", "pass_rate"]).to_pylist() == [
        {"problem_id": "a", "n_correct": 1, "pass_rate": 0.5}, {"problem_id": "b", "n_correct": 0, "pass_rate": 0.0},
    ]
