"""`paced distill` data: export rows -> prompt/response tokens, masks, weights, batch order, bad inputs.

Also holds the builders the other distill tests import: a tiny student/teacher pair and a real
native export made with `paced export`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from paced_curate.distill.data import (
    batch_indices,
    check_same_vocab,
    collate,
    load_examples,
    micro_batches,
    read_train_split,
)
from paced_curate.errors import ConfigError, InputError
from paced_curate.export import ExportConfig, run_export
from paced_curate.io import write_table
from paced_curate.rollout.prompts import PromptFormat, render
from paced_curate.schema import GRADES, WEIGHTS, build_table
from tests.conftest import write_jsonl
from tests.test_schema import GRADE_ROW, WEIGHT_ROW

SHORT = PromptFormat(template="{prompt}=", chat_template="off")
"""A short plain prompt, to keep the tiny model's sequences short in tests that do not test prompts."""


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run the tiny models on one thread: a second one gains little at this size and, on a shared
    2-core machine, spends most of its time waiting for the other processes (seen: 50x slower)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Tiny Qwen2 models with the character tokenizer: a student, a wider teacher, and one with another vocabulary."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from paced_curate.toy.models import TinyModelSpec, build_tiny_model

    root = tmp_path_factory.mktemp("distill_models")
    student = build_tiny_model(root / "student", TinyModelSpec(init_seed=0))
    teacher = build_tiny_model(root / "teacher", TinyModelSpec(init_seed=1, hidden_size=192, intermediate_size=384))
    other = build_tiny_model(root / "other_vocab", TinyModelSpec(init_seed=2))
    tokenizer = AutoTokenizer.from_pretrained(other)
    tokenizer.add_tokens(["<|think|>"], special_tokens=True)
    tokenizer.save_pretrained(other)
    # Its embedding grows with the vocabulary, so the folder is a usable model (#24's model check).
    model = AutoModelForCausalLM.from_pretrained(other)
    model.resize_token_embeddings(len(tokenizer))
    model.save_pretrained(other)
    return {"student": student, "teacher": teacher, "other_vocab": other}


def make_export(
    tmp_path: Path, n: int = 8, references: bool = True, name: str = "data", weights: list[float] | None = None, fmt: str = "native",
    *, values: list[int] | None = None, refs: list[int] | None = None, prompt_record: dict | None = None,
) -> Path:
    """A native export of n problems 'What is v + v?' (v = i, or values[i]) with weights (i + 1) / n and references '\\boxed{2v}'.

    refs: correct teacher references per problem (default one each; the export keeps up to max(refs) per problem).
    prompt_record: the rollout's prompt record (`rollout.prompt_record`), carried in the weights' provenance as
    `paced weight` writes it, so the export records it; None: an export without a record.
    """
    values = list(range(n)) if values is None else values
    n = len(values)
    problems = write_jsonl(
        tmp_path / f"{name}_problems.jsonl",
        [{"id": f"q{i:02d}", "question": f"What is {v} + {v}?", "answer": str(2 * v)} for i, v in enumerate(values)],
    )
    weights = weights or [(i + 1) / n for i in range(n)]
    rows = [WEIGHT_ROW | {"problem_id": f"q{i:02d}", "weight_raw": w, "weight": w} for i, w in enumerate(weights)]
    weights_path = tmp_path / f"{name}_weights.parquet"
    provenance = None if prompt_record is None else {"prompt_format": prompt_record}
    write_table(build_table(rows, WEIGHTS), str(weights_path), WEIGHTS, provenance=provenance)
    graded = None
    refs = refs or [1] * n
    if references:
        samples = [
            GRADE_ROW | {"problem_id": f"q{i:02d}", "sample_index": k, "completion": f"{v}+{v}=\\boxed{{{2 * v}}}" + "." * k}
            for i, v in enumerate(values) for k in range(refs[i])
        ]
        graded = tmp_path / f"{name}_teacher.parquet"
        write_table(build_table(samples, GRADES), str(graded), GRADES)
    output = tmp_path / name
    run_export(ExportConfig(
        problems=str(problems), weights=str(weights_path), references=None if graded is None else str(graded), output=str(output),
        format=fmt, drop_zero=False, normalize="none", refs_per_problem=max(refs),
    ))
    return output


def short_examples(data: Path, models: dict) -> list:
    """The export's examples with the short plain prompt (weights on, max length 512)."""
    table = read_train_split(str(data), need_reference=True)
    return load_examples(table, str(data), tokenizer_of(models["student"]), SHORT, use_weights=True, max_length=512)[0]


def tokenizer_of(path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def test_prompts_render_as_rollout_does_and_responses_are_reference_plus_eos(tmp_path, models):
    data = make_export(tmp_path, n=4)
    tokenizer = tokenizer_of(models["student"])
    fmt = PromptFormat(system_prompt="Be brief.")
    examples, report = load_examples(read_train_split(str(data), need_reference=True), str(data), tokenizer, fmt, use_weights=True, max_length=512)
    assert report.rows == 4 and not report.skipped_long_prompts and report.truncated_references == 0
    by_id = {e.problem_id: e for e in examples}
    _, expected_prompt, _ = render(fmt, tokenizer, "What is 3 + 3?", None)
    assert by_id["q03"].prompt_ids == expected_prompt
    assert tokenizer.decode(by_id["q03"].prompt_ids).startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert by_id["q03"].response_ids == tokenizer("3+3=\\boxed{6}", add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    assert by_id["q03"].weight == 4 / 4 and by_id["q00"].weight == 1 / 4
    assert report.response_tokens == sum(len(e.response_ids) for e in examples)


def test_weights_off_gives_every_example_weight_one(tmp_path, models):
    data = make_export(tmp_path, n=4)
    table = read_train_split(str(data), need_reference=True)
    examples, _ = load_examples(table, str(data), tokenizer_of(models["student"]), SHORT, use_weights=False, max_length=512)
    assert [e.weight for e in examples] == [1.0] * 4


def test_collate_masks_exactly_the_positions_that_predict_response_tokens(tmp_path, models):
    data = make_export(tmp_path, n=3)
    examples = short_examples(data, models)
    batch = collate(examples, [e.response_ids for e in examples], pad_id=1)
    for row, example in enumerate(examples):
        length = len(example.prompt_ids) + len(example.response_ids)
        ids = batch.input_ids[row].tolist()
        assert ids[:length] == example.prompt_ids + example.response_ids and set(ids[length:]) <= {1}
        predicted = [ids[t + 1] for t in range(batch.input_ids.shape[1]) if batch.loss_mask[row, t]]
        assert predicted == example.response_ids
        assert batch.attention_mask[row].sum().item() == length
    assert batch.num_tokens == sum(len(e.response_ids) for e in examples) == len(batch.token_problem)
    assert Counter(batch.token_problem.tolist()) == {row: len(e.response_ids) for row, e in enumerate(examples)}
    assert batch.weights.tolist() == pytest.approx([e.weight for e in examples])


def test_long_references_are_cut_and_prompts_that_leave_no_room_are_skipped_and_counted(tmp_path, models):
    data = make_export(tmp_path, n=12)
    tokenizer = tokenizer_of(models["student"])
    table = read_train_split(str(data), need_reference=True)
    short = len(render(SHORT, tokenizer, "What is 0 + 0?", None)[1])
    assert len(render(SHORT, tokenizer, "What is 10 + 10?", None)[1]) == short + 2
    examples, report = load_examples(table, str(data), tokenizer, SHORT, use_weights=True, max_length=short + 1)
    assert sorted(report.skipped_long_prompts) == ["q10", "q11"]
    assert report.truncated_references == 10
    assert [len(e.response_ids) for e in examples] == [1] * 10
    with pytest.raises(InputError, match="no prompt fits in --max-length 4 tokens"):
        load_examples(table, str(data), tokenizer, SHORT, use_weights=True, max_length=4)


def test_every_epoch_is_a_seeded_permutation_and_batches_run_across_epochs():
    epoch_0 = [i for step in range(3) for i in batch_indices(step, 4, 12, seed=5)]
    assert sorted(epoch_0) == list(range(12))
    assert epoch_0 != list(range(12))
    across = batch_indices(2, 5, 12, seed=5)  # positions 10..14: two from epoch 0, three from epoch 1
    assert across[:2] == [i for s in range(3) for i in batch_indices(s, 4, 12, seed=5)][10:]
    assert batch_indices(7, 4, 12, seed=5) == batch_indices(7, 4, 12, seed=5) != batch_indices(7, 4, 12, seed=6)
    assert sorted(i for step in range(3, 6) for i in batch_indices(step, 4, 12, seed=5)) == list(range(12))


def test_micro_batches_cover_the_batch_longest_first(tmp_path, models):
    data = make_export(tmp_path, n=12)
    examples = short_examples(data, models)
    chunks = micro_batches(examples, 5)
    assert [len(c) for c in chunks] == [5, 5, 2]
    lengths = [e.length() for c in chunks for e in c]
    assert lengths == sorted(lengths, reverse=True)
    assert sorted(e.row for c in chunks for e in c) == list(range(12))


def test_tokenizer_mismatch_names_the_first_differing_token(models):
    student, teacher, other = (tokenizer_of(models[name]) for name in ("student", "teacher", "other_vocab"))
    check_same_vocab(student, teacher, "t/")  # same character vocabulary: accepted
    expected = r"^--teacher o/: its tokenizer differs from the student's \(the teacher has token '<\|think\|>' \(id 260\) that the student lacks\)"
    with pytest.raises(ConfigError, match=expected):
        check_same_vocab(student, other, "o/")
    with pytest.raises(ConfigError, match=r"token '<\|think\|>' \(student id 260\) is not in the teacher's vocabulary"):
        check_same_vocab(other, student, "s/")


def test_missing_folder_non_export_and_other_formats_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"nowhere: no such folder; pass the output of 'paced export --format native'"):
        read_train_split(str(tmp_path / "nowhere"), need_reference=False)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.parquet").write_bytes(b"")
    with pytest.raises(InputError, match=r"plain/x.parquet: is not a Parquet file: it is empty"):  # read as export rows (#24)
        read_train_split(str(tmp_path / "plain"), need_reference=False)
    trl = make_export(tmp_path, n=3, name="trl", fmt="trl")
    with pytest.raises(InputError, match=r"trl: is a 'trl' export; re-export with --format native"):
        read_train_split(str(trl), need_reference=True)


def test_fkl_needs_a_reference_column_and_rkl_does_not(tmp_path):
    data = make_export(tmp_path, n=3, references=False)
    with pytest.raises(InputError, match=r"data: has no 'reference' column, which --loss fkl needs .*--references, or use --loss rkl$"):
        read_train_split(str(data), need_reference=True)
    assert read_train_split(str(data), need_reference=False).num_rows == 3


def test_export_manifest_records_the_files_a_resume_checks(tmp_path):
    from paced_curate.distill.data import train_digest

    first = make_export(tmp_path, n=3, name="a")
    same = make_export(tmp_path, n=3, name="b")
    other = make_export(tmp_path, n=4, name="c")
    assert json.loads((tmp_path / "a.paced" / "manifest.json").read_text())["splits"]["train"]["files"]
    assert train_digest(str(first)) == train_digest(str(same)) != train_digest(str(other))


NOTE_CASES = [
    # export options, whether --weights off gets the note, reason
    (dict(drop_zero=True), True, "weight-0 problems were dropped: a hard filter, not the baseline"),
    (dict(drop_zero=False), False, "--keep-zero: every problem is there, --weights off is the baseline"),
]


@pytest.mark.parametrize(("options", "noted"), [(o, n) for o, n, _ in NOTE_CASES], ids=[r for _, _, r in NOTE_CASES])
def test_weights_off_on_an_export_that_dropped_problems_says_so(tmp_path, options, noted):
    """#14: `paced distill --weights off` on a default export trains on the filtered set only."""
    from paced_curate.distill.data import unweighted_note

    problems = write_jsonl(tmp_path / "p.jsonl", [{"id": f"q{i}", "question": f"{i}+{i}", "answer": str(2 * i)} for i in range(4)])
    rows = [WEIGHT_ROW | {"problem_id": f"q{i}", "weight_raw": w, "weight": w} for i, w in enumerate([0.0, 1.0, 0.0, 2.0])]
    weights = tmp_path / "w.parquet"
    write_table(build_table(rows, WEIGHTS), str(weights), WEIGHTS)
    run_export(ExportConfig(problems=str(problems), weights=str(weights), output=str(tmp_path / "data"), **options))
    note = unweighted_note(str(tmp_path / "data"))
    if noted:
        assert note is not None and "\n" not in note
        assert "left out 2 weight-0 problems" in note and "--keep-zero" in note and "--kernel uniform" in note
    else:
        assert note is None
    assert unweighted_note(str(tmp_path / "nowhere")) is None


REFS_CASES = [
    # correct references per problem (the export keeps up to max of them), weights, reason
    ([1, 2, 3], "off", "R = 3: problems the teacher solves 1, 2 and 3 times each weigh 1 in total"),
    ([3, 3, 1, 2], "off", "repeated counts: every problem still sums to 1"),
    ([1, 2, 3], "on", "weights on: the export's w / R shares sum to the problem's weight"),
]


@pytest.mark.parametrize(("refs", "weights"), [(r, w) for r, w, _ in REFS_CASES], ids=[r for _, _, r in REFS_CASES])
def test_each_problem_weighs_the_same_total_whatever_its_number_of_references_21(tmp_path, models, refs, weights):
    """#21: `--weights off` with --refs-per-problem R > 1 gave a problem weight 1 per reference (up to R)."""
    import torch

    from paced_curate.distill.losses import weighted_problem_loss

    problem_weights = [0.5 + i for i in range(len(refs))]
    data = make_export(tmp_path, values=list(range(len(refs))), refs=refs, weights=problem_weights)
    table = read_train_split(str(data), need_reference=True)
    examples, _ = load_examples(table, str(data), tokenizer_of(models["student"]), SHORT, use_weights=weights == "on", max_length=512)
    rows = Counter(e.problem_id for e in examples)
    assert [rows[f"q{i:02d}"] for i in range(len(refs))] == refs, "the export kept every correct reference"
    totals = {pid: sum(e.weight for e in examples if e.problem_id == pid) for pid in rows}
    expected = {f"q{i:02d}": (problem_weights[i] if weights == "on" else 1.0) for i in range(len(refs))}
    assert totals == pytest.approx(expected)
    # The batch objective: a problem's rows with the same per-token KL k_p add up to w_p * k_p, once per problem.
    kl_of = {f"q{i:02d}": float(i + 1) for i in range(len(refs))}
    batch = collate(examples, [e.response_ids for e in examples], pad_id=1)
    per_token = torch.tensor([kl_of[examples[row].problem_id] for row in batch.token_problem.tolist()])
    loss = weighted_problem_loss(per_token, batch.token_problem, batch.weights, batch_size=len(refs))
    assert loss.item() == pytest.approx(sum(expected[p] * kl_of[p] for p in kl_of) / len(refs))


def test_copies_of_a_row_in_one_global_batch_are_numbered_in_stream_order_21(tmp_path, models):
    """Batches span epochs, so a row can be in one twice; each copy is numbered over the whole global batch."""
    from paced_curate.distill.data import global_batch
    from paced_curate.distill.train import rkl_seed_key

    examples = short_examples(make_export(tmp_path, n=3), models)
    indices = batch_indices(0, 8, 3, seed=4)  # positions 0..7: three epochs' worth of 3 examples
    batch = global_batch(examples, 0, 8, seed=4)
    assert [e.row for e in batch] == [examples[i].row for i in indices]
    assert [e.copy for e in batch] == [indices[:k].count(i) for k, i in enumerate(indices)]
    assert sorted((e.row, e.copy) for e in batch) == [(r, c) for r in range(3) for c in range(3 if r in indices[6:] else 2)]
    # Every copy draws its own rkl sample, and the first copy keeps the key it had before copies were numbered.
    keys = [rkl_seed_key(0, e) for e in batch]
    assert len(set(keys)) == 8 and keys[0] == f"rkl:step0:row{batch[0].row}"
    assert all(e.copy == 0 for e in global_batch(examples, 0, 3, seed=4)), "one epoch per batch: no copies"
