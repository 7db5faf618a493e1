"""Arrow IPC pipes: `-o -` writes a stream on stdout, `-` reads one from stdin.

    stream = ArrowStdout()          # claims stdout: fd 1 now goes to stderr, the data to a duplicate
    stream.write(part)              # record batches as they are ready (the first fixes the schema)
    stream.close()                  # end-of-stream marker, flush, close: the reader sees EOF now
    table = read_ipc_stdin()        # the whole stream; `stdin_schema()` keeps its metadata

The stream's schema metadata carries what a part file's does (stage, schema version,
provenance with the prompt record), so a stage reads a pipe as it reads a file.
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO

import pyarrow as pa

from paced_curate.errors import InputError, PacedError

# A `-o -` stream must end with everything written: its last buffer and the end-of-stream
# marker flushed and the descriptor closed, explicitly, when the stage ends. Leaving that to
# the interpreter's shutdown lost the tail of every vLLM rollout (#26): `import vllm` keeps a
# caught ImportError in a module global (`_torchcodec_import_exc` in
# vllm/multimodal/media/audio.py, when torchcodec is absent), and that exception's traceback
# pins every frame that was on the stack when vLLM was first imported, locals included. The
# rollout's stream writer was such a local, so the buffered file it held was never finalized at
# exit and its last <= 8 KiB never reached the pipe. CPython does not promise to finalize
# objects at exit, so no stream here depends on it: `ArrowStdout.close` and `write_ipc`
# flush and close the data descriptor themselves, and the next stage sees end-of-file at once
# instead of when this process (and vLLM's shutdown) is over.

_claimed_stdout: BinaryIO | None = None
_stdout_closed = False
_runner_buffer: BinaryIO | None = None
"""The last in-process runner buffer claimed (it has no descriptor of its own to close)."""
_stdin_schema: pa.Schema | None = None


def claim_stdout() -> BinaryIO:
    """Return a binary stream on the real stdout and send everything else printed there to stderr.

    vLLM's workers and some libraries print to stdout; in `paced ... -o - | paced ...` that
    would corrupt the Arrow stream. So the real stdout is duplicated for the data (a descriptor
    no child process inherits) and file descriptor 1 is pointed at stderr, for this process and
    every child it starts. The stream is closed by `release_stdout`.

    Raises:
        PacedError: this process already wrote and closed its stdout stream.
    """
    global _claimed_stdout, _runner_buffer
    if _claimed_stdout is not None:
        runner_buffer = _claimed_stdout is _runner_buffer
        if not _claimed_stdout.closed and (not runner_buffer or _claimed_stdout is getattr(sys.stdout, "buffer", None)):
            return _claimed_stdout
        # An earlier in-process runner's buffer (a command that failed before releasing it): not ours any more.
        _claimed_stdout = None
    if _stdout_closed:
        raise PacedError("stdout: this process already wrote its Arrow stream; one '-o -' per process")
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        # Not a real file descriptor (an in-process test runner): write to the buffer as is.
        _claimed_stdout = _runner_buffer = sys.stdout.buffer
        return _claimed_stdout
    sys.stdout.flush()
    data_fd = os.dup(fd)
    os.dup2(sys.stderr.fileno(), fd)
    _claimed_stdout = os.fdopen(data_fd, "wb")
    return _claimed_stdout


def release_stdout() -> None:
    """Flush the claimed stdout stream and close its descriptor, so the reader sees end-of-file.

    A stream on an in-process runner's buffer (no descriptor of its own) is flushed only.
    """
    global _claimed_stdout, _stdout_closed
    stream, _claimed_stdout = _claimed_stdout, None
    if stream is None:
        return
    stream.flush()
    if stream is not getattr(sys.stdout, "buffer", None):
        stream.close()
        _stdout_closed = True


class ArrowStdout:
    """The Arrow IPC stream of a `-o -` command: record batches written as they come, then closed.

    The stream's schema, with its metadata (stage, schema version, provenance and the prompt
    record), is the first table's; every later table must have the same columns.

        stream = ArrowStdout()
        stream.write(part)      # one or more record batches per call
        stream.close()          # end-of-stream marker, flush, close the descriptor
    """

    def __init__(self) -> None:
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None

    def write(self, table: pa.Table) -> None:
        """Append `table`'s rows; the first call fixes the stream's schema (metadata included)."""
        if self._writer is None:
            self._writer = pa.ipc.new_stream(claim_stdout(), table.schema)
        self._writer.write_table(table)

    def close(self, schema: pa.Schema | None = None) -> None:
        """End the stream and close stdout's data descriptor.

        Args:
            schema: the schema of an empty stream, when nothing was written (a reader then
                gets a table with no rows rather than no stream at all).
        """
        if self._writer is None and schema is not None:
            self._writer = pa.ipc.new_stream(claim_stdout(), schema)
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        release_stdout()


def write_ipc(table: pa.Table, sink: BinaryIO | pa.NativeFile | None = None) -> None:
    """Write `table` (schema metadata included) as a whole Arrow IPC stream.

    Args:
        table: the table.
        sink: where to write (flushed, left open); default stdout, which is then closed
            (`ArrowStdout.close`).
    """
    if sink is None:
        stream = ArrowStdout()
        stream.write(table)
        stream.close()
        return
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    sink.flush()


def read_ipc_stdin() -> pa.Table:
    """Read an Arrow IPC stream from stdin (its schema is kept for `stdin_schema`)."""
    global _stdin_schema
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError("stdin: '-' reads an Arrow stream from a pipe, but nothing is piped in")
    try:
        table = pa.ipc.open_stream(sys.stdin.buffer).read_all()
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"stdin: not an Arrow IPC stream (pipe in a paced '-o -' output): {error}") from None
    _stdin_schema = table.schema
    return table


def stdin_schema() -> pa.Schema | None:
    """The schema (with its paced metadata: provenance, prompt record) of the stream last read from stdin.

    Readers that keep only some columns of a piped table (`paced weight -`) take the upstream
    provenance from here. None when this process has read no stream.
    """
    return _stdin_schema
