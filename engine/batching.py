"""Micro-batching: concurrent embedding requests for one engine run as one `embed_batch` call.

Embedding several clips in one forward pass costs much less per clip than one at a time
(GE2E: about half, on one thread), so a process that serves several requests at once does
more work per second when it gathers them. The rule keeps single requests as fast as before:

- A request that finds the batcher idle runs at once, alone: no waiting for company.
- Requests arriving while a batch runs queue up; when the batch ends, the oldest of them
  leads the next batch, which takes up to `max_size` queued requests (after an optional
  `wait_seconds` for more to come). No extra thread: the leader is one of the waiting
  request threads, so a caller never runs work that comes after its own result.
- An engine error fails the batch's items one by one: each is embedded alone again, and
  only the items that fail alone fail (a clip too short for the network, say).

Batching never changes a result beyond float rounding: each engine's `embed_batch` only
groups what the network computes identically (GE2E's fixed windows, 3D-Speaker's equal
lengths). Engine-agnostic and free of Django: callers see the batch size of their result and
the process-wide counts (`BatchStats`), and export them as they like.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: What a batcher calls: several waveforms -> (n, dim) vectors (SpeakerEngine.embed_batch).
BatchFunction = Callable[[Sequence[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class BatchedVector:
    vector: np.ndarray
    #: How many requests were embedded together with this one (itself included).
    batch_size: int


class _Pending:
    """One request: its waveform, then its vector or error; `ready` is set when it has one,
    or when it was chosen to lead the next batch (`lead`)."""

    __slots__ = ("batch_size", "error", "lead", "ready", "vector", "waveform")

    def __init__(self, waveform: np.ndarray):
        self.waveform = waveform
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None
        self.batch_size = 0
        self.lead = False
        self.ready = threading.Event()


class MicroBatcher:
    """Gathers concurrent `embed` calls into batches for `embed_batch`. Thread-safe."""

    def __init__(self, embed_batch: BatchFunction, *, max_size: int, wait_seconds: float = 0.0):
        if max_size < 1:
            raise ValueError("max_size must be 1 or more")
        self._embed_batch = embed_batch
        self.max_size = max_size
        self.wait_seconds = max(wait_seconds, 0.0)
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._busy = False
        #: Batch size -> number of batches of that size run so far.
        self._sizes: Counter[int] = Counter()

    def embed(self, waveform: np.ndarray) -> BatchedVector:
        """One waveform -> its vector, computed alone or in a batch with concurrent calls.
        Raises what embedding this waveform alone raises."""
        if self.max_size == 1:  # batching off: exactly the engine's one-at-a-time path
            vector = self._embed_batch([waveform])[0]
            self._count(1)
            return BatchedVector(vector, 1)
        item = _Pending(waveform)
        with self._lock:
            self._queue.append(item)
            leads = not self._busy
            self._busy = True
        if not leads:
            item.ready.wait()
            leads = item.lead  # woken to lead the next batch, or with the result
        if leads:
            self._lead(promoted=item.lead)
        if item.error is not None:
            raise item.error
        return BatchedVector(item.vector, item.batch_size)

    def queued(self) -> int:
        """Requests waiting for the running batch to end."""
        with self._lock:
            return len(self._queue)

    def batch_sizes(self) -> dict[int, int]:
        """Batch size -> how many batches of that size this batcher ran."""
        with self._lock:
            return dict(self._sizes)

    def _lead(self, *, promoted: bool) -> None:
        # An idle batcher's first request runs at once; a batch that formed while another
        # ran may wait a little longer for company (the requests just answered come back).
        if promoted and self.wait_seconds:
            time.sleep(self.wait_seconds)
        with self._lock:
            batch = self._queue[: self.max_size]
            del self._queue[: self.max_size]
        try:
            self._run(batch)
        finally:
            for item in batch:  # interrupted (KeyboardInterrupt, SystemExit): say so, not None
                if item.vector is None and item.error is None:
                    item.error = RuntimeError("the batch was interrupted")
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                else:
                    successor = None
                    self._busy = False
            if successor is not None:
                successor.ready.set()
            for item in batch:
                item.ready.set()

    def _run(self, batch: list[_Pending]) -> None:
        self._count(len(batch))
        try:
            vectors = self._embed_batch([item.waveform for item in batch])
            if len(vectors) != len(batch):
                raise RuntimeError(f"embed_batch gave {len(vectors)} vectors for {len(batch)}")
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
            # Which item broke the batch is unknown: each one alone says whether it was it.
            for item in batch:
                self._run_alone(item)
            return
        for item, vector in zip(batch, vectors, strict=True):
            item.vector, item.batch_size = vector, len(batch)

    def _run_alone(self, item: _Pending) -> None:
        try:
            item.vector, item.batch_size = self._embed_batch([item.waveform])[0], 1
        except Exception as exc:
            item.error = exc

    def _count(self, size: int) -> None:
        with self._lock:
            self._sizes[size] += 1
