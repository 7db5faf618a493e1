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

import heapq
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

    Copy k of a problem with c copies gets the key (k + u) / c, with u seeded per problem, so
    each problem's copies spread evenly through the order. Rows are then placed in key order,
    except that the next row never repeats the problem just placed (the next problem in key
    order goes first), and a problem holding more than half of the rows still to place goes
    now (else it could not be kept apart later). This always succeeds when no problem has more
    than half the rows (rounded up); otherwise the unavoidable neighbours are left, and the
    caller counts them (`adjacent_pairs`).

    Args:
        problem_of_row: [rows] an integer problem label per row.
        seed: seeds the offsets and the tie-breaks.

    Returns:
        [rows] a permutation of range(rows).
    """
    rng = np.random.default_rng([seed, 2])
    labels = np.asarray(problem_of_row)
    unique, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    offsets = rng.random(unique.size)
    queues: list[list[int]] = [[] for _ in unique]
    for row, label in enumerate(inverse):
        queues[label].append(row)
    # Each problem's next copy sorts at (k + u) / c; a heap holds one live entry per problem
    # (older entries are skipped when they surface), and another finds the largest remainder.
    current = offsets / counts
    ties = rng.random(unique.size)
    by_key = [(current[p], ties[p], p) for p in range(unique.size)]
    heapq.heapify(by_key)
    by_count = [(-int(counts[p]), p) for p in range(unique.size)]
    heapq.heapify(by_count)
    remaining = counts.astype(np.int64).copy()
    taken = np.zeros(unique.size, dtype=np.int64)
    order: list[int] = []
    last = -1
    for left in range(labels.size, 0, -1):
        while -by_count[0][0] != remaining[by_count[0][1]]:
            heapq.heapreplace(by_count, (-int(remaining[by_count[0][1]]), by_count[0][1]))
        biggest = by_count[0][1]
        if 2 * remaining[biggest] > left and biggest != last:
            pick = biggest
        else:
            pick = _first_live(by_key, current, remaining, exclude=last)
        order.append(queues[pick][taken[pick]])
        taken[pick] += 1
        remaining[pick] -= 1
        current[pick] = (taken[pick] + offsets[pick]) / counts[pick]
        if remaining[pick]:
            heapq.heappush(by_key, (current[pick], ties[pick], pick))
        last = pick
    return np.array(order, dtype=np.int64)


def _first_live(heap: list, current: np.ndarray, remaining: np.ndarray, exclude: int) -> int:
    """The problem with the smallest live key other than `exclude` (or `exclude` if it is the only one left)."""
    held = []
    pick = exclude
    while heap:
        key, _, problem = heap[0]
        if remaining[problem] == 0 or key != current[problem]:
            heapq.heappop(heap)  # a stale entry
        elif problem == exclude:
            held.append(heapq.heappop(heap))
        else:
            pick = problem
            break
    for entry in held:
        heapq.heappush(heap, entry)
    return pick


def adjacent_pairs(problem_of_row: np.ndarray) -> int:
    """Neighbouring rows that belong to the same problem."""
    labels = np.asarray(problem_of_row)
    return int(np.sum(labels[1:] == labels[:-1]))
