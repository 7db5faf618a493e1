#!/usr/bin/env bash
# The PACED pipeline as shell commands: estimate (rollout -> grade -> weight) -> teacher references -> export -> distill.
#
#   examples/run_pipeline.sh PROBLEMS.jsonl STUDENT_DIR TEACHER_DIR WORK_DIR
#
# PROBLEMS is a MATH-style JSONL ({"unique_id", "problem", "answer", ...} per line); STUDENT_DIR and
# TEACHER_DIR are local Hugging Face model folders sharing a tokenizer vocabulary. Every step is
# resumable: rerun the script after a crash and finished work is skipped. Override the sizes with
# environment variables, e.g. K=16 MAX_TOKENS=4096 STEPS=2000 LR=1e-5 examples/run_pipeline.sh ...
# ADAPTIVE=1 samples adaptively (paced estimate --adaptive) instead of a fixed K.
set -euo pipefail

if [[ $# -ne 4 ]]; then
    echo "usage: $0 PROBLEMS.jsonl STUDENT_DIR TEACHER_DIR WORK_DIR" >&2
    exit 2
fi
problems=$1 student=$2 teacher=$3 work=$4
PACED=${PACED:-paced}
K=${K:-8}
MAX_TOKENS=${MAX_TOKENS:-2048}
STEPS=${STEPS:-1000}
LR=${LR:-1e-5}
BATCH=${BATCH:-32}
# MATH-style field names; change these to match your file.
FIELDS=(--id-field "${ID_FIELD:-unique_id}" --prompt-field "${PROMPT_FIELD:-problem}" --answer-field "${ANSWER_FIELD:-answer}")
# The default prompt asks for the final answer in \boxed{}; TEMPLATE replaces it (and turns the chat template off).
PROMPT=()
if [[ -n ${TEMPLATE:-} ]]; then PROMPT=(--template "$TEMPLATE" --chat-template off); fi
mkdir -p "$work"

# 1-2. K student samples per problem (vLLM), a verdict for each (math-verify), then the pass rates and
# PACED weights w(p) = p(1-p), in one resumable command: work/rollouts, work/graded, work/weights.parquet.
ESTIMATE=(-k "$K")
if [[ -n ${ADAPTIVE:-} ]]; then ESTIMATE=(--adaptive); fi
$PACED estimate "$problems" "${FIELDS[@]}" --model "$student" -o "$work" "${ESTIMATE[@]}" --max-tokens "$MAX_TOKENS" "${PROMPT[@]}" --seed 0 --timeout 5 ${ROLLOUT_ARGS:-}

# 3. Teacher references, only for the problems the weights train on (work/teacher_problems.parquet:
# weight > 0; the estimate step printed how much teacher generation that saves). Two samples each, graded.
$PACED rollout "$work/teacher_problems.parquet" --model "$teacher" -o "$work/teacher_rollouts" -k 2 --max-tokens "$MAX_TOKENS" "${PROMPT[@]}" --seed 0 ${ROLLOUT_ARGS:-}
$PACED grade "$work/teacher_rollouts" -o "$work/teacher_graded" --timeout 5

# 4. Weighted shards with the references (native format, for paced distill; --format trl|verl for other trainers).
$PACED export "$problems" "$work/weights.parquet" "${FIELDS[@]}" --references "$work/teacher_graded" -o "$work/data"

# 5. Distill: forward KL on the references, then reverse KL on the student's own samples.
$PACED distill "$work/data" --student "$student" --teacher "$teacher" -o "$work/run" \
    --loss fkl-then-rkl --max-steps "$STEPS" --batch-size "$BATCH" --lr "$LR" --rkl-max-tokens "$MAX_TOKENS" "${PROMPT[@]}" ${DISTILL_ARGS:-}

echo "done: the trained student is in $work/run/final" >&2
