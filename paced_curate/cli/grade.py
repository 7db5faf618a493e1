"""paced grade: a verdict for every sample."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from paced_curate.cli.app import app, fails_cleanly, print_json
from paced_curate.cli.options import AnswerFieldOption, AsJsonOption, IdFieldOption, OverwriteOption, WorkersOption
from paced_curate.errors import ConfigError


@app.command("grade")
@fails_cleanly
def grade_command(
    rollouts: Annotated[str, typer.Argument(help="Generations: paced rollouts, any tool's .jsonl/.json/.csv/.parquet, a folder, or - for a pipe.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Output folder (resumable), NAME.parquet (one file), or - for an Arrow stream.")],
    grader: Annotated[str, typer.Option(help="math, exact, numeric, choice, or module:function for your own grader.")] = "math",
    workers: WorkersOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds per sample; past it the worker is killed and the verdict is 'timeout'.")] = 5.0,
    truncated: Annotated[str, typer.Option(help="Truncated samples (finish_reason=length): wrong (count as failures) or exclude.")] = "wrong",
    errors: Annotated[str, typer.Option(help="Grading failures (timeout, error): exclude (from the pass rate) or wrong.")] = "exclude",
    tolerance: Annotated[Optional[float], typer.Option(help="numeric grader: absolute or relative tolerance (default 1e-6).")] = None,
    audit: Annotated[
        str,
        typer.Option(help="math-verify: read a bounded sample with math-verify alone and report the disagreement and what it does to "
                     "pass rates and weights; a grader name: grade every sample with it too (audit_verdict column); none: no audit."),
    ] = "math-verify",
    audit_samples: Annotated[int, typer.Option("--audit-samples", help="Most samples the math-verify audit reads (whole problems); 0: all.")] = 200,
    reasoning_tags: Annotated[
        Optional[list[str]],
        typer.Option(
            "--reasoning-tags",
            help="Reasoning-trace tags OPEN,CLOSE (repeat for several pairs; 'none' turns it off): only the text after the "
            "last closing tag is graded; an unclosed trace is no_answer. Default: <think>,</think> and "
            "<|begin_of_thought|>,<|end_of_thought|>.",
        ),
    ] = None,
    answer_format: Annotated[
        str, typer.Option("--answer-format", help="any: last box, else 'answer is ...', else the grader's fallback; boxed: the last \\boxed{} only.")
    ] = "any",
    rows_per_part: Annotated[int, typer.Option("--rows-per-part", help="Rows per part file of the output directory; with -o -, rows per record batch of the stream.")] = 20000,
    overwrite: OverwriteOption = False,
    problems: Annotated[Optional[str], typer.Option("--problems", help="Problem set to join gold answers from, by id.")] = None,
    id_field: IdFieldOption = None,
    completion_field: Annotated[Optional[str], typer.Option("--completion-field", help="Column holding the completion(s).")] = None,
    answer_field: AnswerFieldOption = None,
    sample_index_field: Annotated[
        Optional[str], typer.Option("--sample-index-field", help="Column holding the sample index (default: row order per problem).")
    ] = None,
    ray: Annotated[Optional[str], typer.Option(help="Grade as Ray CPU tasks: local, auto, or a cluster address (#17).")] = None,
    judge: Annotated[
        Optional[str],
        typer.Option(help="A verifier model's OpenAI base URL (e.g. http://127.0.0.1:8000/v1): asked where the rules say incorrect or no_answer."),
    ] = None,
    judge_model: Annotated[Optional[str], typer.Option("--judge-model", help="The verifier's served model name (xVerify, CompassVerifier, ...).")] = None,
    judge_prompt: Annotated[
        Optional[str], typer.Option("--judge-prompt", help="A file with the judge's prompt template: {question}, {answer}, {response}, {gold}.")
    ] = None,
    judge_concurrency: Annotated[int, typer.Option("--judge-concurrency", help="Most judge requests in flight.")] = 8,
    judge_max_tokens: Annotated[int, typer.Option("--judge-max-tokens", help="Longest judge reply, in tokens.")] = 64,
    as_json: AsJsonOption = False,
) -> None:
    """Give every sample a verdict (math-verify by default) with a hard timeout per sample.

    Example: paced grade rollouts/ -o graded/ --grader math --workers 4 --timeout 5 --judge http://127.0.0.1:8000/v1 --judge-model verifier
    """
    from paced_curate.grade import GradeConfig, run_grade
    from paced_curate.grade.summary import render_grade_summary
    from paced_curate.samples import SampleFields

    if as_json and output == "-":
        raise ConfigError("--json and -o - both write to stdout; choose one")
    config = GradeConfig(
        rollouts=rollouts, output=output, grader=grader, timeout=timeout, truncated=truncated, errors=errors,
        tolerance=tolerance, audit=None if audit == "none" else audit, audit_samples=audit_samples, rows_per_part=rows_per_part, overwrite=overwrite, answer_format=answer_format,
        fields=SampleFields(
            id_field=id_field, completion_field=completion_field, answer_field=answer_field, sample_index_field=sample_index_field, problems=problems,
        ),
        ray=ray, judge=judge, judge_model=judge_model, judge_prompt=judge_prompt,
        judge_concurrency=judge_concurrency, judge_max_tokens=judge_max_tokens,
        **({} if workers is None else {"workers": workers}),
        **({} if reasoning_tags is None else {"reasoning_tags": tuple(reasoning_tags)}),
    )
    result = run_grade(config)
    render_grade_summary(result.to_dict())
    if as_json:
        print_json(result.to_dict())
