"""#24: `paced export --template/--system-prompt/--chat-template/--tokenizer/--prompt-format`.

Weights from samples another tool generated record no prompt format; the flags then say how the
student was prompted, and the trl, verl and llamafactory rows carry that prompt. With a record,
flags that contradict it are refused unless `--prompt-format flags`. With neither, one line on
stderr and a sentence in the dataset card say the rows carry the problems' own prompts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import assert_user_error, write_jsonl
from tests.test_export import make_inputs, make_references

QUESTION = "What is 4 + 4?"  # problem q04 of make_inputs
RECORD = {"template": "Q: {prompt}", "system_prompt": "Be brief.", "chat_template": "auto", "chat": "on"}


def _run(cli, tmp_path: Path, fmt: str, *flags, weights: Path | None = None, name: str = "out"):
    problems, plain = make_inputs(tmp_path, n=6, weights={f"q{i:02d}": 1.0 for i in range(6)})
    refs = make_references(tmp_path, {f"q{i:02d}": ["correct"] for i in range(6)})
    extra = ["--references", refs] if fmt != "verl" else []
    return cli("export", problems, weights or plain, "-o", tmp_path / name, "--format", fmt, *extra, *flags)


def _prompt_of_q04(tmp_path: Path, fmt: str, name: str = "out"):
    rows = pq.read_table(tmp_path / name / "train").to_pylist()
    if fmt == "trl":
        return next(r["prompt"] for r in rows if r["problem_id"] == "q04")
    if fmt == "verl":
        return next(r["prompt"] for r in rows if r["extra_info"]["problem_id"] == "q04")
    turns = next(r["messages"] for r in rows if r["problem_id"] == "q04")[:-1]
    return [{"role": t["role"], "content": t["content"][0]["value"]} for t in turns]


def _as_chat(fmt: str, prompt):
    """What each format holds for a prompt: trl keeps plain text as text, verl and llamafactory always hold turns."""
    return prompt if isinstance(prompt, list) or fmt == "trl" else [{"role": "user", "content": prompt}]


def _card(tmp_path: Path, name: str = "out") -> str:
    return (tmp_path / f"{name}.paced" / "README.md").read_text()


def _manifest(tmp_path: Path, name: str = "out") -> dict:
    return json.loads((tmp_path / f"{name}.paced" / "manifest.json").read_text())


# --- weights without a prompt record --------------------------------------------------------------

NO_RECORD = [
    # (flags, the q04 prompt, reason)
    ((), QUESTION, "no flag: the problem's own text"),
    (("--template", "Q: {prompt}", "--chat-template", "off"), "Q: What is 4 + 4?", "a template, plain text"),
    (("--template", "Q: {prompt}", "--system-prompt", "Sums.", "--chat-template", "off"), "Sums.\n\nQ: What is 4 + 4?", "plain text, system prompt prepended"),
    (("--template", "Q: {prompt}", "--system-prompt", "Sums.", "--chat-template", "on"),
     [{"role": "system", "content": "Sums."}, {"role": "user", "content": "Q: What is 4 + 4?"}], "chat turns"),
    (("--chat-template", "on"), [{"role": "user", "content": QUESTION + "\nPlease reason step by step, and put your final answer within \\boxed{}."}],
     "the rollout's default template where none is given"),
]


@pytest.mark.parametrize("fmt", ["trl", "verl", "llamafactory"])
@pytest.mark.parametrize(("flags", "expected", "reason"), NO_RECORD, ids=[c[2] for c in NO_RECORD])
def test_flags_give_the_prompt_when_the_weights_record_none(tmp_path, cli, fmt, flags, expected, reason):
    result = _run(cli, tmp_path, fmt, *flags)
    assert result.exit_code == 0, result.output
    assert _prompt_of_q04(tmp_path, fmt) == _as_chat(fmt, expected), reason
    manifest, card = _manifest(tmp_path), _card(tmp_path)
    if not flags:
        notes = [line for line in result.stderr.splitlines() if "records no prompt format" in line]
        assert len(notes) == 1 and "no --template/--system-prompt/--chat-template says how the student's prompts were rendered" in notes[0]
        assert manifest["prompt_format"] is None and manifest["prompt_source"] == "none"
        assert "Nothing says how the student's prompts were rendered" in card
    else:
        assert "records no prompt format" not in result.stderr
        assert manifest["prompt_source"] == "flags" and manifest["prompt_format_recorded"] is None
        assert "as the prompt flags given to `paced export` (the weights record none)" in card


def test_chat_template_auto_is_decided_by_the_tokenizer(tmp_path, cli, tiny_model):
    result = _run(cli, tmp_path, "trl", "--template", "Q: {prompt}", "--tokenizer", tiny_model)
    assert result.exit_code == 0, result.output
    assert _prompt_of_q04(tmp_path, "trl") == [{"role": "user", "content": "Q: What is 4 + 4?"}]  # the tiny tokenizer has a chat template
    assert _manifest(tmp_path)["prompt_format"] == {"template": "Q: {prompt}", "system_prompt": None, "chat_template": "auto", "chat": "on"}


FLAG_ERRORS = [
    (("--template", "Q: {prompt}"), "--chat-template auto (the default) applies the tokenizer's chat template if it has one: pass --tokenizer"),
    (("--chat-template", "auto", "--tokenizer", "{missing}"), "--tokenizer {missing}: not a tokenizer folder transformers can load"),
    (("--template", "no placeholder", "--chat-template", "off"), "--template must contain {prompt}"),
    (("--chat-template", "maybe"), "--chat-template must be one of auto, on, off (got 'maybe')"),
    (("--prompt-format", "rollout"), "--prompt-format must be record or flags (got 'rollout')"),
]


@pytest.mark.parametrize(("flags", "expected"), FLAG_ERRORS, ids=[c[1][:40] for c in FLAG_ERRORS])
def test_bad_prompt_flags_are_one_line(tmp_path, cli, flags, expected):
    missing = str(tmp_path / "no_tokenizer")
    flags = [f.replace("{missing}", missing) for f in flags]
    assert_user_error(_run(cli, tmp_path, "trl", *flags), expected.replace("{missing}", missing))


# --- weights with a prompt record ----------------------------------------------------------------


def _recorded_weights(tmp_path: Path) -> Path:
    from tests.test_export_weighting import _weights_with_record

    return _weights_with_record(tmp_path, 6, RECORD)


RECORDED_TURNS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q: What is 4 + 4?"}]


@pytest.mark.parametrize("fmt", ["trl", "verl", "llamafactory"])
@pytest.mark.parametrize("flags", [(), ("--template", "Q: {prompt}"), ("--system-prompt", "Be brief.", "--chat-template", "on"),
                                   ("--chat-template", "auto")], ids=["none", "same template", "same system and chat", "same auto"])
def test_flags_that_agree_with_the_record_are_accepted(tmp_path, cli, fmt, flags):
    result = _run(cli, tmp_path, fmt, *flags, weights=_recorded_weights(tmp_path))
    assert result.exit_code == 0, result.output
    assert _prompt_of_q04(tmp_path, fmt) == RECORDED_TURNS
    assert _manifest(tmp_path)["prompt_source"] == "record"
    assert "as the record `paced rollout` wrote when it prompted the student" in _card(tmp_path)


CONTRADICTIONS = [
    (("--template", "{prompt}?"), "--template '{prompt}?' contradicts the recorded template 'Q: {prompt}'; drop --template to export the recorded prompt, or pass --prompt-format flags to export yours"),
    (("--system-prompt", "Be long."), "--system-prompt 'Be long.' contradicts the recorded system prompt 'Be brief.'"),
    (("--chat-template", "off"), "--chat-template off contradicts the record (the rollout applied the chat template, with --chat-template auto)"),
    (("--template", "{prompt}?", "--chat-template", "off"), "; drop --template and --chat-template to export the recorded prompt"),
]


@pytest.mark.parametrize(("flags", "expected"), CONTRADICTIONS, ids=[" ".join(c[0]) for c in CONTRADICTIONS])
def test_flags_that_contradict_the_record_are_refused_in_one_line(tmp_path, cli, flags, expected):
    result = _run(cli, tmp_path, "trl", *flags, weights=_recorded_weights(tmp_path))
    assert_user_error(result, expected)
    assert "records the prompt its weights were measured on" in result.stderr
    assert not (tmp_path / "out").exists()


def test_auto_against_a_record_of_on_needs_the_tokenizer(tmp_path, cli, tiny_model):
    record = RECORD | {"chat_template": "on"}
    from tests.test_export_weighting import _weights_with_record

    weights = _weights_with_record(tmp_path, 6, record)
    result = _run(cli, tmp_path, "trl", "--chat-template", "auto", weights=weights)
    assert_user_error(result, "--chat-template auto cannot be checked without --tokenizer against the record")
    result = _run(cli, tmp_path, "trl", "--chat-template", "auto", "--tokenizer", tiny_model, weights=weights, name="out2")
    assert result.exit_code == 0, result.output  # the tiny tokenizer has a chat template: auto meant on


@pytest.mark.parametrize("fmt", ["trl", "verl", "llamafactory", "native"])
def test_prompt_format_flags_overrides_the_record_and_keeps_both(tmp_path, cli, fmt):
    flags = ("--prompt-format", "flags", "--template", "{prompt} =", "--chat-template", "off")
    result = _run(cli, tmp_path, fmt, *flags, weights=_recorded_weights(tmp_path))
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("NOTE: --prompt-format flags")]
    assert len(notes) == 1 and "not as" in notes[0] and "records the weights were measured" in notes[0], result.stderr
    manifest = _manifest(tmp_path)
    assert manifest["prompt_format"] == {"template": "{prompt} =", "system_prompt": None, "chat_template": "off", "chat": "off"}
    assert manifest["prompt_format_recorded"] == RECORD and manifest["prompt_source"] == "flags"
    assert "overriding the weights' record (template 'Q: {prompt}', system prompt 'Be brief.', chat template applied)" in _card(tmp_path)
    if fmt != "native":
        assert _prompt_of_q04(tmp_path, fmt) == _as_chat(fmt, "What is 4 + 4? =")
    else:  # native rows hold the problem; the manifest tells paced distill how to render it
        assert pq.read_table(tmp_path / "out" / "train").column("prompt").to_pylist()[0].startswith("What is")


# --- end to end: samples another tool generated, the flags reproduce the prompt the student saw ------


def test_flags_reproduce_the_prompt_of_samples_from_another_tool(tmp_path, cli, tiny_model):
    """The rollout runs with a ChatML template and a system prompt; its samples are handed on as plain JSONL (no
    record), graded and weighed. Exported with the same flags, the trl and verl prompts tokenize to exactly the
    prompt_tokens the student was shown (TRL and verl apply the tokenizer's chat template to the turns)."""
    from transformers import AutoTokenizer

    problems = write_jsonl(tmp_path / "p.jsonl", [{"id": f"q{i}", "question": f"{i}+{i + 2}=", "answer": str(2 * i + 2)} for i in range(3)])
    flags = ["--template", "Add: {prompt}", "--system-prompt", "Be brief.", "--chat-template", "on"]
    result = cli("rollout", problems, "--model", tiny_model, "--engine", "hf", "-k", "2", "--max-tokens", "4", "--dtype", "float32",
                 "-o", tmp_path / "r.parquet", *flags)
    assert result.exit_code == 0, result.output
    rollouts = pq.read_table(tmp_path / "r.parquet")
    prompt_tokens = dict(zip(rollouts.column("problem_id").to_pylist(), rollouts.column("prompt_tokens").to_pylist()))
    foreign = [{"problem_id": r["problem_id"], "question": r["prompt"], "generation": r["completion"], "expected_answer": r["answer"]}
               for r in rollouts.to_pylist()]
    write_jsonl(tmp_path / "other_tool.jsonl", foreign)
    for command in (["grade", tmp_path / "other_tool.jsonl", "-o", tmp_path / "g.parquet", "--workers", "1"],
                    ["weight", tmp_path / "g.parquet", "-o", tmp_path / "w.parquet", "--kernel", "uniform"]):
        result = cli(*command)
        assert result.exit_code == 0, result.output
    assert b"prompt_format" not in (pq.read_schema(tmp_path / "w.parquet").metadata or {}).get(b"paced.provenance", b"")
    refs = make_references(tmp_path, {f"q{i}": ["correct"] for i in range(3)})
    for fmt in ("trl", "verl"):
        extra = ["--references", refs] if fmt == "trl" else []
        result = cli("export", problems, tmp_path / "w.parquet", "-o", tmp_path / fmt, "--format", fmt, "--keep-zero", *extra, *flags)
        assert result.exit_code == 0, result.output
        assert "records no prompt format" not in result.stderr
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    for fmt, key in (("trl", lambda r: r["problem_id"]), ("verl", lambda r: r["extra_info"]["problem_id"])):
        rows = pq.read_table(tmp_path / fmt / "train").to_pylist()
        assert len(rows) == 3
        for row in rows:
            ids = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
            assert len(ids) == prompt_tokens[key(row)], (fmt, row["prompt"])
