"""Connecting to a Ray cluster for `--ray ADDRESS` (rollout and grade), and leaving it as found.

    with ray_cluster("local"):      # start a one-machine cluster, shut it down afterwards
        ...
    with ray_cluster("auto"):       # join the cluster this machine belongs to (`ray start` ran here)
        ...
    with ray_cluster("ray://head:10001"):   # any address `ray.init(address=...)` accepts
        ...

When Ray is already initialised in this process (a notebook, a test fixture, a driver script),
that connection is used as it is and left running. Ray is imported only here, and only when
`--ray` is given, so the rest of paced never needs it installed.
"""

from __future__ import annotations

import contextlib
import os

from paced_curate.errors import ConfigError, PacedError

LOCAL = "local"
AUTO = "auto"
LOCAL_OBJECT_STORE_BYTES = 1 << 30
"""`--ray local`: rows of text need little room; Ray's default (30% of RAM) would reserve far more /dev/shm."""


def import_ray():
    """`ray` and `ray.data`, or a ConfigError saying how to install them."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError("--ray needs Ray Data: pip install 'paced-curate[ray]' (or 'ray[data]')") from None
    return ray


@contextlib.contextmanager
def ray_cluster(address: str):
    """Connect to the cluster at `address` for the duration of the block.

    Args:
        address: "local" (start a cluster on this machine with its CPUs and GPUs), "auto"
            (the running cluster this machine is part of), or an address such as
            "10.0.0.1:6379" or "ray://head:10001".

    Raises:
        ConfigError: Ray is not installed.
        PacedError: no cluster answers at `address`.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    options = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": True}
    if address == LOCAL:
        options |= {"address": "local", "object_store_memory": LOCAL_OBJECT_STORE_BYTES}
    else:
        options["address"] = address
    # Ray Data's own progress bars would interleave with paced's; paced shows its own.
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise PacedError(f"--ray {address}: cannot connect to a Ray cluster: {error}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def quiet_data_context():
    """Ray Data's context for paced's jobs: no progress bars (paced shows its own), default otherwise."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    return context
