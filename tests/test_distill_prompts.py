"""#26: `paced distill` trains on the prompt the weights were measured on (the export's prompt record).

A table of records x flags x `--prompt-format` against `prompt_plan` (what is used, what is
refused and with which line), then the real chain: `paced rollout` (transformers engine, the
tiny student and its ChatML template) -> grade -> weight -> export -> distill, whose training
prompts and evaluation prompts are the rollout's token for token, with no flag repeated.
"""

from __future__ import annotations

import json

import pytest

from paced_curate.distill import DistillConfig, run_distill
from paced_curate.distill.prompts import prompt_plan, read_prompt_record
from paced_curate.errors import ConfigError
from paced_curate.rollout.prompt_record import prompt_record
from paced_curate.rollout.prompts import DEFAULT_TEMPLATE, PromptFormat, render
from tests.conftest import assert_user_error, write_jsonl
from tests.test_distill_data import make_export, models, one_torch_thread, tokenizer_of  # noqa: F401 (fixtures)

PLAIN = {"template": "Q: {prompt}\nA:", "system_prompt": None, "chat_template": "off", "chat": "off"}
"""A rollout that sent plain text (no chat template)."""
CHAT = {"template": "Add: {prompt}", "system_prompt": "Be brief.", "chat_template": "auto", "chat": "on"}
"""A rollout whose tokenizer's chat template applied (auto), with a system prompt."""
SERVER = {"template": "{prompt}", "system_prompt": None, "chat_template": "auto", "chat": "messages"}
"""A rollout against a server with no local tokenizer: only problems with chat messages went as chat turns."""
WAY_OUT = "to train on the recorded prompt, or pass --prompt-format flags to train on yours"

PLANS = [
    # record, flags, student tokenizer has a chat template, expected (source, template, system prompt, chat) or error, reason
    (PLAIN, {}, True, ("record", "Q: {prompt}\nA:", None, "off"), "no flags: the record"),
    (PLAIN, {"template": "Q: {prompt}\nA:", "chat_template": "off"}, True, ("record", "Q: {prompt}\nA:", None, "off"), "flags that repeat the record"),
    (PLAIN, {"template": "{prompt}="}, True,
     "records the prompt its weights were measured on, and --template '{prompt}=' contradicts the recorded template 'Q: {prompt}\\nA:'; "
     f"drop --template {WAY_OUT}", "another template"),
    (PLAIN, {"chat_template": "auto"}, True,
     "--chat-template auto contradicts the record (the rollout used no chat template, with --chat-template off)",
     "auto would apply the student's chat template; the rollout used none"),
    (PLAIN, {"chat_template": "auto"}, False, ("record", "Q: {prompt}\nA:", None, "off"), "auto on a tokenizer without one is off: agrees"),
    (CHAT, {"chat_template": "on", "system_prompt": "Be brief."}, True, ("record", "Add: {prompt}", "Be brief.", "on"), "on = the applied auto"),
    (CHAT, {"chat_template": "off"}, True,
     "--chat-template off contradicts the record (the rollout applied the chat template, with --chat-template auto)", "plain text for chat"),
    (CHAT, {"system_prompt": ""}, True, "--system-prompt '' contradicts the recorded system prompt 'Be brief.'", "no system prompt for one"),
    (PLAIN, {"system_prompt": "Hi."}, True, "--system-prompt 'Hi.' contradicts the recorded system prompt (none)", "a system prompt for none"),
    (PLAIN, {"template": "{prompt}=", "system_prompt": "Hi."}, True, f"drop --template and --system-prompt {WAY_OUT}", "two flags, one line"),
    (CHAT, {}, False, "records prompts rendered with a chat template, but the tokenizer of --student s has none",
     "a student that cannot render the recorded chat"),
    (SERVER, {}, True, ("record", "{prompt}", None, "rows with chat messages"), "server rollout: chat turns only where the problem had them"),
    (SERVER, {"chat_template": "on"}, True, "--chat-template on contradicts the record (the rollout sent chat turns only for problems",
     "every problem as chat for a rollout that sent most as text"),
    (PLAIN, {"template": "{prompt}=", "prompt_format": "flags"}, True, ("flags", "{prompt}=", None, "auto"), "flags mode: the flags win"),
    (None, {"template": "{prompt}="}, True, ("flags", "{prompt}=", None, "auto"), "no record: the flags"),
    (None, {}, True, ("flags", DEFAULT_TEMPLATE, None, "auto"), "no record, no flags: rollout's defaults"),
]


def config(**flags) -> DistillConfig:
    return DistillConfig(shards="data/", student="s", teacher="t", output="o", **flags)


@pytest.fixture(scope="module")
def tokenizers(models) -> dict[bool, object]:
    """The student's tokenizer (it has a ChatML chat template) and the same tokenizer without one."""
    with_chat, without = tokenizer_of(models["student"]), tokenizer_of(models["student"])
    without.chat_template = None
    assert with_chat.chat_template
    return {True: with_chat, False: without}


@pytest.mark.parametrize(("record", "flags", "has_chat", "expected"), [c[:4] for c in PLANS], ids=[c[4] for c in PLANS])
def test_the_recorded_prompt_is_used_and_contradicting_flags_are_refused(tokenizers, record, flags, has_chat, expected):
    if isinstance(expected, str):
        with pytest.raises(ConfigError) as error:
            prompt_plan(config(**flags), record, tokenizers[has_chat])
        assert expected in str(error.value) and "\n" not in str(error.value)
        return
    plan, note = prompt_plan(config(**flags), record, tokenizers[has_chat])
    used = plan.as_dict()
    assert (used["source"], used["template"], used["system_prompt"], used["chat_template"]) == expected
    assert used["recorded"] == record
    if record is None:
        assert note.startswith("NOTE: data/ records no prompt format") and "\n" not in note
    elif plan.source == "flags":
        assert note.startswith("NOTE: --prompt-format flags: prompts are rendered from the flags") and "run.json records both" in note
    else:
        assert note is None


def test_a_server_rollouts_record_gives_chat_turns_to_problems_with_messages_only(tokenizers):
    plan, _ = prompt_plan(config(), SERVER, tokenizers[True])
    turns = [{"role": "user", "content": "What is 2 + 2?"}]
    assert plan.format_for(turns).chat_template == "on" and plan.format_for(None).chat_template == "off"
    _, ids, _ = render(plan.format_for(turns), tokenizers[True], "What is 2 + 2?", turns)
    assert tokenizers[True].decode(ids).startswith("<|im_start|>user\nWhat is 2 + 2?<|im_end|>")


def test_the_cli_refuses_a_contradicting_flag_in_one_line_and_flags_mode_records_both(tmp_path, models, cli):
    data = make_export(tmp_path, n=4, prompt_record=PLAIN)
    assert read_prompt_record(str(data)) == PLAIN
    common = ["distill", data, "--student", models["student"], "--teacher", models["teacher"], "--max-steps", "1", "--batch-size", "4"]
    refused = cli(*common, "-o", tmp_path / "refused", "--template", "{prompt}=")
    assert_user_error(refused, f"--template '{{prompt}}=' contradicts the recorded template 'Q: {{prompt}}\\nA:'; drop --template {WAY_OUT}")
    assert not (tmp_path / "refused").exists()

    chosen = cli(*common, "-o", tmp_path / "flags", "--template", "{prompt}=", "--prompt-format", "flags")
    assert chosen.exit_code == 0, chosen.output
    assert "NOTE: --prompt-format flags: prompts are rendered from the flags (template '{prompt}='" in chosen.stderr
    run = json.loads((tmp_path / "flags" / "run.json").read_text())
    assert run["prompt"] == {"source": "flags", "template": "{prompt}=", "system_prompt": None, "chat_template": "auto", "recorded": PLAIN}
    assert run["settings"]["prompt_format"] == "flags"


def test_an_export_without_a_record_says_so_once_and_uses_the_flags(tmp_path, models, cli):
    data = make_export(tmp_path, n=4)
    done = cli("distill", data, "--student", models["student"], "--teacher", models["teacher"], "--max-steps", "1", "--batch-size", "4",
               "-o", tmp_path / "run", "--template", "{prompt}=", "--chat-template", "off")
    assert done.exit_code == 0, done.output
    notes = [line for line in done.stderr.splitlines() if "records no prompt format" in line]
    assert notes == [f"NOTE: {data} records no prompt format (an older paced, or weights that came through a pipe), so prompts are "
                     "rendered from the flags: template '{prompt}=', no system prompt, chat template off"]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["prompt"]["source"] == "flags"


FORMATS = [
    (PromptFormat(template="Add: {prompt}", system_prompt="Be brief.", chat_template="auto"), "ChatML turns with a system prompt"),
    (PromptFormat(template="{prompt}\nAnswer:", system_prompt="Sums.", chat_template="off"), "plain text, system prompt prepended"),
]


@pytest.mark.parametrize("fmt", [f for f, _ in FORMATS], ids=[r for _, r in FORMATS])
def test_distill_trains_and_evaluates_on_the_rollouts_prompts_without_repeating_its_flags(tmp_path, models, fmt, monkeypatch):
    """rollout -> grade -> weight -> export -> distill with no prompt flag: the prompts are the rollout's token for token."""
    import paced_curate.distill.evaluate as evaluate
    from paced_curate.distill.data import load_examples, read_train_split
    from paced_curate.export import ExportConfig, run_export
    from paced_curate.grade import GradeConfig, run_grade
    from paced_curate.io import read_table, write_table
    from paced_curate.rollout import RolloutConfig, run_rollout
    from paced_curate.schema import GRADES, ROLLOUTS, build_table
    from paced_curate.weight import WeightConfig, run_weight
    from tests.test_schema import GRADE_ROW

    student = models["student"]
    questions = {f"q{i}": f"{i}+{i + 2}=" for i in range(3)}
    problems = write_jsonl(tmp_path / "p.jsonl", [{"id": pid, "question": q, "answer": "0"} for pid, q in questions.items()])
    run_rollout(RolloutConfig(
        problems=str(problems), model=str(student), output=str(tmp_path / "rollouts"), engine="hf", samples=2, max_tokens=4,
        dtype="float32", prompt_format=fmt,
    ))
    run_grade(GradeConfig(rollouts=str(tmp_path / "rollouts"), output=str(tmp_path / "graded"), workers=1))
    run_weight(WeightConfig(graded=str(tmp_path / "graded"), output=str(tmp_path / "weights.parquet"), kernel="uniform"))
    references = tmp_path / "teacher.parquet"
    write_table(build_table([GRADE_ROW | {"problem_id": pid, "completion": "\\boxed{0}"} for pid in questions], GRADES), str(references), GRADES)
    data = tmp_path / "data"
    run_export(ExportConfig(problems=str(problems), weights=str(tmp_path / "weights.parquet"), references=str(references), output=str(data), drop_zero=False))

    tokenizer = tokenizer_of(student)
    assert read_prompt_record(str(data)) == prompt_record(fmt, tokenizer)
    rollouts = read_table(str(tmp_path / "rollouts"), ROLLOUTS)
    prompt_tokens = dict(zip(rollouts.column("problem_id").to_pylist(), rollouts.column("prompt_tokens").to_pylist()))
    plan, note = prompt_plan(config(), read_prompt_record(str(data)), tokenizer)
    examples, _ = load_examples(read_train_split(str(data), need_reference=True), str(data), tokenizer, plan, use_weights=True, max_length=512)
    assert note is None and len(examples) == 3
    for example in examples:
        assert example.prompt_ids == render(fmt, tokenizer, questions[example.problem_id], None)[1]
        assert len(example.prompt_ids) == prompt_tokens[example.problem_id]
    # Not what the flags' defaults give: repeating nothing used to train on another prompt.
    assert examples[0].prompt_ids != render(PromptFormat(), tokenizer, questions[examples[0].problem_id], None)[1]

    seen = []
    real = evaluate.evaluate_student

    def recording(model, tok, eval_problems, settings, autocast=None):
        seen.append(settings.prompt_format)
        return real(model, tok, eval_problems, settings, autocast)

    monkeypatch.setattr(evaluate, "evaluate_student", recording)
    run_distill(DistillConfig(
        shards=str(data), student=str(student), teacher=str(models["teacher"]), output=str(tmp_path / "run"), max_steps=1, batch_size=3,
        eval_problems=str(problems), eval_samples=1, eval_max_tokens=4, eval_workers=1, eval_every=0, checkpoint_every=0,
    ))
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())["prompt"]
    assert recorded["source"] == "record" and recorded["template"] == fmt.template and recorded["system_prompt"] == fmt.system_prompt
    assert len(seen) == 2 and all(render(f, tokenizer, "1+3=", None) == render(fmt, tokenizer, "1+3=", None) for f in seen)
