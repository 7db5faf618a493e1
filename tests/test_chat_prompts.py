"""Issue #12, section 6: a chat dataset never leaks its answer into the prompt.

The prompt is the conversation up to and including the last user turn; a trailing assistant
turn (the worked solution chat SFT dumps carry) is never sent to the student, whichever engine
renders it (local tokenizer for hf and vLLM, or the server's template for openai).
"""

from __future__ import annotations

import pytest

from paced_curate.errors import InputError
from paced_curate.io import read_table
from paced_curate.problems import read_problems
from paced_curate.rollout import RolloutConfig, run_rollout
from paced_curate.rollout.prompts import PromptFormat, render
from paced_curate.rollout.runner import _requests
from paced_curate.schema import ROLLOUTS
from tests.conftest import write_jsonl

SYSTEM = {"role": "system", "content": "You are a careful tutor."}
USER = {"role": "user", "content": "What is 2+3?"}
SOLUTION = {"role": "assistant", "content": "2 + 3 = 5, so the answer is \\boxed{5}."}
FOLLOW_UP = {"role": "user", "content": "And 2+4?"}
SECOND_SOLUTION = {"role": "assistant", "content": "That is \\boxed{6}."}

LAYOUTS = [
    # (name, messages, expected prompt turns, expected prompt text)
    ("system, user, assistant: the solution is cut", [SYSTEM, USER, SOLUTION], [SYSTEM, USER], USER["content"]),
    ("two exchanges: the prompt ends at the second user turn", [USER, SOLUTION, FOLLOW_UP, SECOND_SOLUTION], [USER, SOLUTION, FOLLOW_UP], FOLLOW_UP["content"]),
    ("user only: unchanged", [USER], [USER], USER["content"]),
    ("system and user, no answer: unchanged", [SYSTEM, USER], [SYSTEM, USER], USER["content"]),
    ("ends with a user turn after an exchange: unchanged", [USER, SOLUTION, FOLLOW_UP], [USER, SOLUTION, FOLLOW_UP], FOLLOW_UP["content"]),
]


@pytest.mark.parametrize("name, messages, turns, text", LAYOUTS, ids=[c[0].split(":")[0] for c in LAYOUTS])
def test_the_prompt_stops_at_the_last_user_turn(tmp_path, name, messages, turns, text):
    table = read_problems(str(write_jsonl(tmp_path / "p.jsonl", [{"id": "x", "messages": messages, "answer": "5"}])))
    assert table.column("messages").to_pylist() == [turns], name
    assert table.column("prompt").to_pylist() == [text], name


@pytest.mark.parametrize("messages", [[SOLUTION], [SYSTEM, SOLUTION]], ids=["assistant only", "system and assistant"])
def test_a_chat_without_a_user_turn_is_refused(tmp_path, messages):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": "x", "messages": [USER], "answer": "5"}, {"id": "y", "messages": messages, "answer": "5"}])
    with pytest.raises(InputError) as caught:
        read_problems(str(path))
    roles = ", ".join(m["role"] for m in messages)
    assert str(caught.value) == f"{path} line 2: chat prompt has no user turn (roles: {roles}); the prompt ends at the last user turn"


def test_openr1_layout_text_prompt_wins_and_the_conversation_is_kept_aside(tmp_path):
    """OpenR1-Math rows carry `problem` (text) and `messages` ([user, assistant solution])."""
    row = {"problem": USER["content"], "solution": SOLUTION["content"], "answer": "5", "messages": [USER, SOLUTION]}
    table = read_problems(str(write_jsonl(tmp_path / "p.jsonl", [row])))
    assert "messages" not in table.column_names, "a `messages` column would be rendered as the chat prompt"
    assert table.column("prompt").to_pylist() == [USER["content"]]
    assert table.column("source_messages").to_pylist() == [[USER, SOLUTION]]
    # --prompt-field messages picks the conversation instead, cut at the last user turn.
    from paced_curate.problems import FieldMap

    chat = read_problems(str(tmp_path / "p.jsonl"), FieldMap(prompt_field="messages"))
    assert chat.column("messages").to_pylist() == [[USER]]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def _leaked(text: str, messages: list[dict], turns: list[dict]) -> list[str]:
    """The turns after the last user turn (the answer) that appear in `text`."""
    return [m["content"] for m in messages[len(turns):] if m["content"] in text]


@pytest.mark.parametrize("chat_template", ["on", "off"])
@pytest.mark.parametrize("name, messages, turns, text", LAYOUTS, ids=[c[0].split(":")[0] for c in LAYOUTS])
def test_what_is_sent_to_the_engine_never_holds_the_answer(tmp_path, tiny_model, tokenizer, chat_template, name, messages, turns, text):
    problems = read_problems(str(write_jsonl(tmp_path / "p.jsonl", [{"id": "x", "messages": messages, "answer": "5"}])))
    config = RolloutConfig(problems="p.jsonl", model=str(tiny_model), output="out", engine="hf", prompt_format=PromptFormat(chat_template=chat_template))
    # The Requests the hf and vLLM engines receive (text and token ids), built by the rollout runner.
    (request,) = list(_requests(config, problems, [0], tokenizer))
    assert messages[len(turns):] or messages == turns
    assert not _leaked(request.prompt_text, messages, turns), (name, request.prompt_text)
    assert not _leaked(tokenizer.decode(request.prompt_ids), messages, turns), name
    assert text in request.prompt_text
    # With no local tokenizer (openai engine), the messages the server renders.
    _, _, sent = render(PromptFormat(chat_template=chat_template), None, problems.column("prompt")[0].as_py(), problems.column("messages")[0].as_py())
    assert sent == turns


def test_render_refuses_messages_without_a_user_turn_even_in_memory(tokenizer):
    with pytest.raises(InputError, match="has no user turn"):
        render(PromptFormat(chat_template="on"), tokenizer, "", [SYSTEM, SOLUTION])


def test_a_real_rollout_prompts_with_the_question_only(tmp_path, tiny_model, tokenizer):
    rows = [{"id": "a", "messages": [SYSTEM, USER, SOLUTION], "answer": "5"}, {"id": "b", "messages": [USER, SOLUTION, FOLLOW_UP, SECOND_SOLUTION], "answer": "6"}]
    problems = write_jsonl(tmp_path / "chat.jsonl", rows)
    config = RolloutConfig(problems=str(problems), model=str(tiny_model), output=str(tmp_path / "out"), engine="hf", samples=1, max_tokens=2)
    run_rollout(config)
    table = read_table(str(tmp_path / "out"), ROLLOUTS)
    for row, turns in zip(table.to_pylist(), [[SYSTEM, USER], [USER, SOLUTION, FOLLOW_UP]]):
        sent = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        assert row["prompt_tokens"] == len(tokenizer(sent, add_special_tokens=False).input_ids), row["problem_id"]
        assert row["messages"] == turns
