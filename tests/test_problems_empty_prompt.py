"""An empty prompt is refused like an empty gold answer, not sent to the student.

A problem whose prompt is empty or only whitespace (a blank cell, a column holding something
else, a chat whose user turn lost its text) used to be rolled out on the template alone: K
samples of nothing, graded against the gold, weighted and exported as if it were a problem.
Every command that reads problems now refuses it in one line naming file, row and what is
empty; prompts that only look empty (`0`, a chat with an empty system turn) are kept.
"""

from __future__ import annotations

import json

import pytest

from paced_curate.errors import InputError
from paced_curate.problems import read_problems
from tests.conftest import assert_user_error


def jsonl(*rows: dict) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


GOOD = {"id": "a", "question": "1 + 1 =", "answer": "2"}

# (file name, contents, the message)
REFUSED = [
    ("empty.jsonl", jsonl(GOOD, {"id": "b", "question": "", "answer": "2"}), "empty.jsonl line 2: the prompt is empty"),
    ("spaces.jsonl", jsonl({"id": "b", "question": "   ", "answer": "2"}), "spaces.jsonl line 1: the prompt is only whitespace ('   ')"),
    ("newline.jsonl", jsonl({"id": "b", "problem": "\n", "answer": "2"}), "newline.jsonl line 1: the prompt is only whitespace ('\\n')"),
    ("tab.json", json.dumps([GOOD, {"id": "b", "question": "\t", "answer": "2"}]), "tab.json row 1: the prompt is only whitespace ('\\t')"),
    ("spaces.csv", 'id,question,answer\na,1 + 1 =,2\nb,"  ",3\n', "spaces.csv line 3: the prompt is only whitespace ('  ')"),
    (
        "chat.jsonl",
        jsonl({"id": "b", "messages": [{"role": "user", "content": ""}], "answer": "2"}),
        "chat.jsonl line 1: chat prompt's last user turn is empty",
    ),
    (
        "chat_spaces.jsonl",
        jsonl({"id": "b", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " \n"}], "answer": "2"}),
        "chat_spaces.jsonl line 1: chat prompt's last user turn is only whitespace (' \\n')",
    ),
]

KEPT = [
    ("zero.jsonl", jsonl({"id": "b", "question": "0", "answer": "0"}), "0"),
    ("padded.jsonl", jsonl({"id": "b", "question": "  2 + 2 =  ", "answer": "4"}), "  2 + 2 =  "),
    (
        "empty_system.jsonl",
        jsonl({"id": "b", "messages": [{"role": "system", "content": ""}, {"role": "user", "content": "2 + 2 ="}], "answer": "4"}),
        "2 + 2 =",
    ),
]


@pytest.mark.parametrize(("name", "text", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_an_empty_prompt_is_refused(tmp_path, monkeypatch, name, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError) as error:
        read_problems(name)
    assert str(error.value) == message


@pytest.mark.parametrize(("name", "text", "prompt"), KEPT, ids=[k[0] for k in KEPT])
def test_a_prompt_that_only_looks_empty_is_kept(tmp_path, monkeypatch, name, text, prompt):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(text)
    assert read_problems(name).column("prompt").to_pylist() == [prompt]


@pytest.mark.parametrize("command", ["rollout", "export"])
def test_every_command_that_reads_problems_refuses_it(cli, tmp_path, monkeypatch, tiny_model, command):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.jsonl").write_text(jsonl(GOOD, {"id": "b", "question": " ", "answer": "2"}))
    if command == "rollout":
        result = cli("rollout", "p.jsonl", "--model", tiny_model, "--engine", "hf", "-k", "1", "-o", "out")
    else:
        (tmp_path / "w.jsonl").write_text(jsonl({"problem_id": "a", "n_samples": 2, "n_correct": 1, "pass_rate": 0.5, "weight": 1.0}))
        result = cli("export", "p.jsonl", "w.jsonl", "-o", "out")
    assert_user_error(result, "p.jsonl line 2: the prompt is only whitespace (' ')")
    assert not (tmp_path / "out").exists()
