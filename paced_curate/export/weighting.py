"""How an export's rows carry the PACED weights: per-row shares, normalisation, or weighted copies.

Row weights (`--weights-as column`, the default). A problem with R rows (one per teacher
reference) gives each row w / R, so its rows sum to its weight whatever R; then every row is
multiplied by one factor so that the mean row weight over the train split's rows is 1
(`--normalize rows`), since those are the rows a trainer averages over.

Weighted copies (`--weights-as copies`). Problem i appears c_i times, where c_i rounds its
exact share s_i = w_i * N / sum(w) by systematic sampling (Madow 1949): with one seeded
u ~ U[0, 1) and the cumulative shares S_i, c_i = floor(S_i + u) - floor(S_{i-1} + u). So every
c_i is floor(s_i) or ceil(s_i) (within one of its share), the total is exactly N, and
E[c_i] = s_i exactly: a trainer that samples rows uniformly optimises, in expectation over
the rounding, the same objective as the weighted loss.

    weights = row_weights(problem_ids, problem_weights)
    counts = copy_counts(np.array([0.5, 1.0, 1.5]), total=6, seed=0)      # e.g. [1, 2, 3]
    order = spread_order(np.repeat(np.arange(3), counts), seed=0)      # no problem twice in a row
"""

from __future__ import annotations

from collections import Counter

import numpy as np

NORMALIZATIONS = ("rows", "none")
WEIGHTS_AS = ("column", "copies")


def row_weights(problem_ids: list[str], weights: np.ndarray) -> np.ndarray:
    """Each row's share of its problem's weight: w_p / (rows of problem p).

    Args:
        problem_ids: [rows] each row's problem id.
        weights: [rows] the weight of each row's problem.

    Returns:
        [rows] float64; the rows of a problem sum to its weight.
    """
    rows_of = Counter(problem_ids)
    return np.asarray(weights, dtype=np.float64) / np.array([rows_of[pid] for pid in problem_ids], dtype=np.float64)


def normalizing_factor(weights: np.ndarray, how: str) -> float:
    """The factor that makes the mean of `weights` 1 ("rows"), or 1.0 ("none" or all-zero weights)."""
    if how == "none" or weights.size == 0 or not np.sum(weights) > 0:
        return 1.0
    return float(weights.size / np.sum(weights))


def copy_counts(weights: np.ndarray, total: int, seed: int) -> np.ndarray:
    """Copies of each problem: systematic rounding of the shares w_i * total / sum(w).

    Args:
        weights: [problems] nonnegative problem weights, not all zero.
        total: N, the number of rows to write.
        seed: seeds the offset u (numpy `default_rng`).

    Returns:
        [problems] int64 counts: each floor or ceil of its share, summing to `total`.

    Example:
        >>> copy_counts(np.array([1.0, 1.0, 2.0]), total=8, seed=0).tolist()
        [2, 2, 4]
    """
    weights = np.asarray(weights, dtype=np.float64)
    shares = weights * total / weights.sum()
    u = np.random.default_rng([seed, 1]).random()
    # Integer shares stay exact; float round-off must not turn 2.0 into 1.9999 + u.
    cumulative = np.concatenate([[0.0], np.cumsum(shares)])
    cumulative[-1] = total
    marks = np.floor(cumulative + u + 1e-9).astype(np.int64)
    return np.diff(marks)


def spread_order(problem_of_row: np.ndarray, seed: int) -> np.ndarray:
    """A seeded order of rows in which no two rows of the same problem are next to each other.

    Each problem's copies are first spread evenly through the order (copy k of a problem with
    c copies sorts at (k + u) / c, with u seeded per problem), then any two neighbours left
    from one problem are separated by a swap with a later row. Impossible only when one problem
    has more than half the rows (plus one); such neighbours are left and counted by the caller.

    Args:
        problem_of_row: [rows] an integer problem label per row.
        seed: seeds the offsets.

    Returns:
        [rows] a permutation of range(rows).
    """
    rng = np.random.default_rng([seed, 2])
    labels = np.asarray(problem_of_row)
    num = labels.size
    unique, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    offsets = rng.random(unique.size)
    rank = np.zeros(num, dtype=np.int64)
    seen = np.zeros(unique.size, dtype=np.int64)
    for row, label in enumerate(inverse):
        rank[row] = seen[label]
        seen[label] += 1
    keys = (rank + offsets[inverse]) / counts[inverse]
    order = np.lexsort((rng.random(num), keys))
    placed = labels[order]
    for i in range(1, num):
        if placed[i] != placed[i - 1]:
            continue
        for j in range(i + 1, num):
            fits_here = placed[j] != placed[i - 1] and (i + 1 >= num or placed[j] != placed[i + 1] or j == i + 1)
            fits_there = placed[i] != placed[j - 1] and (j + 1 >= num or placed[i] != placed[j + 1])
            if fits_here and fits_there:
                order[[i, j]] = order[[j, i]]
                placed[[i, j]] = placed[[j, i]]
                break
    return order


def adjacent_pairs(problem_of_row: np.ndarray) -> int:
    """Neighbouring rows that belong to the same problem."""
    labels = np.asarray(problem_of_row)
    return int(np.sum(labels[1:] == labels[:-1]))
