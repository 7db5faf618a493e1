"""Killing a process with everything it started (torchrun's ranks, a Ray driver's daemons) (#17)."""

from __future__ import annotations


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants, wherever their process groups or sessions are."""
    import psutil

    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
