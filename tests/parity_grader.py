"""A real grader plugin for the online PACED tests (#25): `--reweight-grader tests.parity_grader:parity`.

Not a fake: the random tiny test models cannot solve arithmetic, so a rule that calls about half
of their samples correct (by the parity of the completion's length) gives the posterior evidence
of both kinds to move on. Kept free of imports, so each grading worker starts at once.
"""


def parity(completion: str, gold: str) -> bool:
    """Correct when the completion has an even number of characters."""
    return len(completion) % 2 == 0
