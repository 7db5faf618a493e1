"""Trainers people already run, fed PACED weights: thin layers tested against the real library.

    from paced_curate.integrations.trl import PacedSFTTrainer   # TRL's SFTTrainer, weighted

Each module imports its library only when it is imported itself, so `paced` runs without them.
"""
