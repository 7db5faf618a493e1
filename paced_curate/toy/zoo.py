"""The built-in teacher and student: their shapes, training mixtures and budgets.

Chosen by measurement on a 2-core CPU with one torch thread (README, "The built-in example").
The teacher (0.77M parameters, 3 layers of width 128, 500 steps of 48, about 4 minutes) is
pretrained on addition chains and products (two digits by one); at temperature 1 it solves
0.98 of 2-3 term chains, 0.87 of 6-7 term chains and 0.84 of products. The student is narrow
(0.14M parameters, 2 layers of width 64, 400 steps of 64, about 70 seconds) and pretrained on
additions and differences (the probe) only: it never sees a product (pass rate 0), its
capacity, not its training time, limits it, so its pass rate falls along the ladder (0.37 of
2-3 term chains, 0.08 of 4-5, 0.04 of 6-7), and it solves 0.19 of the probe. (Short-trained
students sit on a sharp, seed-dependent learning transition and give all-or-nothing pass
rates.) Both use head dim 32, the smallest vLLM's CPU attention accepts.

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
