"""Messages say what they mean: "an int", not "a int"; online PACED does not promise probes in an
rkl stage that a run does not have."""

from __future__ import annotations


import pyarrow as pa
import pytest

from paced_curate.distill.config import DistillConfig
from paced_curate.distill.reweight import zero_weight_probing
from paced_curate.errors import InputError, SchemaError, a_or_an
from paced_curate.problems import read_problems
from paced_curate.schema import EXPORT, GRADES, WEIGHTS, check_stage

ARTICLES = [
    ("int", "an int"),
    ("float", "a float"),
    ("bool", "a bool"),
    ("dict", "a dict"),
    ("list", "a list"),
    ("str", "a str"),
    ("ndarray", "a ndarray"),
    ("'export'", "an 'export'"),
    ("'estimate'", "an 'estimate'"),
    ("'rollouts'", "a 'rollouts'"),
    ("'grades'", "a 'grades'"),
    ("'llamafactory'", "a 'llamafactory'"),
    ("'verl'", "a 'verl'"),
    ("object", "an object"),
    ("uint8", "a uint8"),
    ("unicode string", "a unicode string"),
    ("undefined value", "an undefined value"),
    ("Int64", "an Int64"),
]


@pytest.mark.parametrize("noun, expected", ARTICLES)
def test_the_article_fits_the_noun(noun, expected):
    assert a_or_an(noun) == expected


# (JSON value in the file, what the message calls it)
PROMPTS = [("5", "an int"), ("1.5", "a float"), ("true", "a bool"), ('{"text": "x"}', "a dict")]
ANSWERS = [("[1, 2]", "a list"), ('{"value": 1}', "a dict"), ("true", "a bool")]


@pytest.mark.parametrize("value, called", PROMPTS)
def test_a_prompt_of_the_wrong_type_is_named_with_its_article(tmp_path, value, called):
    path = tmp_path / "p.jsonl"
    path.write_text(f'{{"id": "a", "prompt": {value}, "answer": "1"}}\n')
    with pytest.raises(InputError, match=f"line 1: the prompt is {called}, expected text or chat messages$"):
        read_problems(str(path))


@pytest.mark.parametrize("value, called", ANSWERS)
def test_an_answer_of_the_wrong_type_is_named_with_its_article(tmp_path, value, called):
    path = tmp_path / "p.jsonl"
    path.write_text(f'{{"id": "a", "prompt": "x", "answer": {value}}}\n')
    with pytest.raises(InputError, match=f"column 'answer' \\(the gold answer\\) is {called}, expected text or a number$"):
        read_problems(str(path))


@pytest.mark.parametrize("stage, spec, expected", [
    ("export", GRADES, "t: is an 'export' table, expected a 'grades' table"),
    ("weights", EXPORT, "t: is a 'weights' table, expected an 'export' table"),
    ("grades", WEIGHTS, "t: is a 'grades' table, expected a 'weights' table"),
])
def test_a_table_of_another_stage_is_named_with_its_article(stage, spec, expected):
    schema = pa.schema([], metadata={b"paced.stage": stage.encode()})
    with pytest.raises(SchemaError) as raised:
        check_stage(schema, spec, "t")
    assert str(raised.value).startswith(expected)


def _config(loss: str, **options) -> DistillConfig:
    return DistillConfig(shards="d", student="s", teacher="t", output="o", loss=loss, reweight="online", **options)


@pytest.mark.parametrize("config, expected", [
    (_config("fkl", reweight_every=5), "not probed without an rkl stage (--loss fkl)"),
    (_config("akl", reweight_every=5), "not probed without an rkl stage (--loss akl)"),
    (_config("rkl"), "probed at --explore 0.1 in the rkl stage"),
    (_config("fkl-then-rkl", explore=0.25), "probed at --explore 0.25 in the rkl stage"),
    (_config("fkl-then-rkl", reweight_every=5), "probed at --explore 0.1 in the rkl stage"),
], ids=["fkl", "akl", "rkl", "fkl-then-rkl --explore", "fkl-then-rkl --reweight-every"])
def test_online_paced_says_weight_0_problems_are_probed_only_with_an_rkl_stage(config, expected):
    assert zero_weight_probing(config) == expected
