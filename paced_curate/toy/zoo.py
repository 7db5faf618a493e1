"""The built-in teacher and student: their shapes, training mixtures and budgets.

Chosen by measurement on a 2-core CPU (README, "The built-in example"). The teacher (0.8M
parameters, 3 layers of width 128) is pretrained on addition chains and products (two digits by one). The student is narrow
(0.14M parameters, 2 layers of width 64) and pretrained on additions and differences only:
it never sees a product, so products are beyond its reach, and its capacity, not its
training time, limits it, so it slips now and then on every addition step and its pass rate
spreads over [0, 1] along the ladder. (Short-trained students sit on a sharp, seed-dependent
learning transition and give all-or-nothing pass rates.) Both use head dim 32, the smallest
vLLM's CPU attention accepts.

The `fast` variants (for `paced demo --fast` and the tests) train in about a minute on 2-4
term chains; they are weak, but good enough to exercise every stage.
"""

from __future__ import annotations

from paced_curate.toy.models import TinyModelSpec
from paced_curate.toy.pretrain import PretrainSpec

SHAPE = dict(hidden_size=128, num_heads=4, num_kv_heads=2, intermediate_size=512, max_positions=256)
NARROW = dict(hidden_size=64, num_heads=2, num_kv_heads=1, intermediate_size=256, max_positions=256)
TEACHER_SKILLS = (("add", 0.6), ("mul", 0.4))
STUDENT_SKILLS = (("add", 0.8), ("sub", 0.2))
"""The student never sees `mul` (beyond its reach); only the student learns `sub` (the probe), here, in pretraining."""

TEACHER = PretrainSpec(name="teacher", model=TinyModelSpec(num_layers=3, init_seed=1, **SHAPE), steps=500, batch_size=48, lr=3e-3, terms=(2, 7), skills=TEACHER_SKILLS, data_seed=1000)
STUDENT = PretrainSpec(name="student", model=TinyModelSpec(num_layers=2, init_seed=2, **NARROW), steps=400, batch_size=64, lr=3e-3, terms=(2, 7), skills=STUDENT_SKILLS, data_seed=2000)

FAST_TEACHER = PretrainSpec(name="teacher-fast", model=TinyModelSpec(num_layers=2, init_seed=1, **SHAPE), steps=400, batch_size=32, lr=3e-3, warmup_steps=20, terms=(2, 4), skills=TEACHER_SKILLS, data_seed=1000)
FAST_STUDENT = PretrainSpec(name="student-fast", model=TinyModelSpec(num_layers=2, init_seed=2, **SHAPE), steps=150, batch_size=32, lr=3e-3, warmup_steps=20, terms=(2, 4), skills=STUDENT_SKILLS, data_seed=2000)


def teacher_spec(fast: bool = False) -> PretrainSpec:
    return FAST_TEACHER if fast else TEACHER


def student_spec(fast: bool = False) -> PretrainSpec:
    return FAST_STUDENT if fast else STUDENT
