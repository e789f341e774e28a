"""Replica-wide state shared by every gunicorn worker, in memory the master maps before forking.

Why shared memory and not prometheus_client's multiprocess files: the hot path of a request may
spend a few microseconds on bookkeeping, and file-backed metrics cost far more. Why not one lock:
a worker killed while holding it would freeze the replica. So:

- Admission is a POSIX semaphore of `max_replica_concurrency` units (an atomic try-acquire): with
  a limit of N, N+k simultaneous requests give exactly k rejections, whichever worker they reach.
- Every worker owns one slot of counters that only it writes (from its event loop thread, so no
  locks): pid, ready flag, in-flight count, whether it accepts connections (balancing.py),
  requests by status, latency histogram, prediction tracker counts, batch sizes. Readers
  (/metrics, /healthz) sum the slots; a torn read costs one sample.
- The master gives each worker its slot before forking it (`reserve_slot`) and, when the worker
  exits, folds its counters into the retired slot 0 (so counters never go down), returns the
  admission units its in-flight requests held (so a killed worker leaks no capacity) and frees
  the slot (`retire`).
- Tracker class labels are replica-wide: one table of labels cut to LABEL_BYTES, appended under a
  lock when a label is first seen (rare). The one exception to "no locks", so it is bounded: a
  worker killed while holding the lock would hold it forever, so the others wait at most
  LABEL_LOCK_WAIT for it and then count new labels as "_other" (labels already known are still
  counted; the hazard costs new classes, never serving).
"""

from __future__ import annotations

import bisect
import multiprocessing
import multiprocessing.sharedctypes
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from operator import add

# Request latency buckets (seconds), Prometheus' usual spread stretched for slow models.
LATENCY_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5)
LATENCY_BUCKETS += (1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Regression tracker buckets: values of unknown scale, so decades on both sides of zero.
_DECADES = tuple(10.0**e for e in range(-2, 5))
VALUE_BUCKETS = (*(-d for d in reversed(_DECADES)), 0.0, *_DECADES)
# Server-side batching: requests per batch, powers of two up to 1024 (max_batch_size's maximum).
BATCH_BUCKETS: tuple[float, ...] = tuple(float(2**e) for e in range(11))
MAX_CLASSES = 256  # distinct classification labels tracked; later ones count as "_other"
LABEL_BYTES = 64
OTHER_CLASS = "_other"
LABEL_LOCK_WAIT = 0.1  # seconds; see Scoreboard._register_label

# Integer fields of a slot, in order.
PID, READY, IN_FLIGHT, ACCEPTING = range(4)
STATUS_BASE = 4  # counts of statuses 100..599
STATUS_FIRST, STATUS_LAST = 100, 599
LATENCY_BASE = STATUS_BASE + (STATUS_LAST - STATUS_FIRST + 1)
CLASS_BASE = LATENCY_BASE + len(LATENCY_BUCKETS) + 1  # + the +Inf bucket
VALUE_BASE = CLASS_BASE + MAX_CLASSES + 1  # + the _other class
BATCH_BASE = VALUE_BASE + len(VALUE_BUCKETS) + 1  # + the +Inf bucket
INT_FIELDS = BATCH_BASE + len(BATCH_BUCKETS) + 1  # + the +Inf bucket
# Float fields of a slot.
LATENCY_SUM, VALUE_SUM, BATCH_SUM = range(3)
FLOAT_FIELDS = 3

RETIRED = 0  # slot 0 holds the totals of workers that exited


def normalise_label(label: str) -> str:
    """A class label as the shared table stores it: at most LABEL_BYTES of UTF-8, never ending
    in part of a character or in NUL (padding), lone surrogates replaced."""
    cut = label.encode("utf-8", "replace")[:LABEL_BYTES]
    return cut.decode("utf-8", "ignore").rstrip("\0")


@dataclass(frozen=True)
class Snapshot:
    """Replica-wide sums, as /metrics and /healthz report them."""

    processes_ready: int
    in_flight: int
    statuses: dict[int, int]
    latency_buckets: list[int]  # cumulative, one per LATENCY_BUCKETS bound, then +Inf
    latency_sum: float
    classes: dict[str, int]
    value_buckets: list[int]  # cumulative, as latency_buckets
    value_sum: float
    batch_buckets: list[int]  # cumulative, as latency_buckets
    batch_sum: float

    # Every observation lands in exactly one bucket: the counts are the +Inf buckets.
    @property
    def latency_count(self) -> int:
        return self.latency_buckets[-1]

    @property
    def value_count(self) -> int:
        return self.value_buckets[-1]


class Scoreboard:
    def __init__(self, processes: int, max_concurrency: int) -> None:
        self.processes = processes
        self.max_concurrency = max_concurrency
        # Spare slots: a replacement may be forked before its predecessor is reaped.
        self.slots = 1 + 2 * processes
        self._ints_raw = multiprocessing.sharedctypes.RawArray("q", self.slots * INT_FIELDS)
        self._floats_raw = multiprocessing.sharedctypes.RawArray("d", self.slots * FLOAT_FIELDS)
        # memoryview indexing is several times faster than ctypes array indexing.
        self._ints = memoryview(self._ints_raw).cast("B").cast("q")
        self._floats = memoryview(self._floats_raw).cast("B").cast("d")
        self._admission = multiprocessing.BoundedSemaphore(max_concurrency)
        self._ready_once = multiprocessing.sharedctypes.RawValue("b", 0)
        self._ready_boots = multiprocessing.sharedctypes.RawValue("q", 0)  # workers that got ready
        self._labels = multiprocessing.sharedctypes.RawArray("c", MAX_CLASSES * LABEL_BYTES)
        self._label_count = multiprocessing.sharedctypes.RawValue("i", 0)
        self._label_lock = multiprocessing.Lock()
        self._label_lock_lost = False  # see _register_label
        self._label_index: dict[str, int] = {}  # this process' cache of the shared table
        self.slot = -1  # the slot this worker owns (set in the worker after fork)
        self._base = 0

    # -- master side -----------------------------------------------------------------------------

    def reserve_slot(self) -> int:
        """Master, before forking a worker: picks a free slot and marks it taken."""
        for slot in range(1, self.slots):
            if self._ints[slot * INT_FIELDS + PID] == 0:
                self._ints[slot * INT_FIELDS + PID] = -1
                return slot
        raise RuntimeError("no free scoreboard slot (more live workers than expected)")

    def retire(self, slot: int) -> None:
        """Master, after a worker exited: keeps its counts, frees its capacity and its slot."""
        base = slot * INT_FIELDS
        for _ in range(max(0, self._ints[base + IN_FLIGHT])):
            self._admission.release()
        for field in range(STATUS_BASE, INT_FIELDS):
            self._ints[RETIRED * INT_FIELDS + field] += self._ints[base + field]
        for field in range(FLOAT_FIELDS):
            self._floats[RETIRED * FLOAT_FIELDS + field] += self._floats[
                slot * FLOAT_FIELDS + field
            ]
            self._floats[slot * FLOAT_FIELDS + field] = 0.0
        for field in range(INT_FIELDS):
            self._ints[base + field] = 0  # PID last of all: 0 makes the slot free

    # -- worker side (event loop thread only) ----------------------------------------------------

    def claim(self, slot: int, pid: int) -> None:
        self.slot = slot
        self._base = slot * INT_FIELDS
        self._ints[self._base + PID] = pid

    def set_ready(self) -> None:
        self._ints[self._base + READY] = 1
        self._ready_boots.value += 1
        if self.processes_ready() >= self.processes:
            self._ready_once.value = 1

    def set_accepting(self, accepting: bool) -> None:
        self._ints[self._base + ACCEPTING] = int(accepting)

    def fewest_elsewhere(self) -> int | None:
        """The fewest requests in flight in another process that accepts connections and has
        its predictor ready; None when there is no such process."""
        ints = self._ints
        fewest = None
        for slot in range(1, self.slots):
            base = slot * INT_FIELDS
            if (
                base != self._base
                and ints[base + PID] > 0
                and ints[base + ACCEPTING]
                and ints[base + READY]
                and (fewest is None or ints[base + IN_FLIGHT] < fewest)
            ):
                fewest = ints[base + IN_FLIGHT]
        return fewest

    def try_admit(self) -> bool:
        """Takes one unit of replica-wide concurrency; False means answer 503 at once."""
        if not self._admission.acquire(False):
            return False
        self._ints[self._base + IN_FLIGHT] += 1
        return True

    def release(self) -> None:
        self._ints[self._base + IN_FLIGHT] -= 1
        self._admission.release()

    def record(self, status: int, seconds: float) -> None:
        ints = self._ints
        base = self._base
        if STATUS_FIRST <= status <= STATUS_LAST:
            ints[base + STATUS_BASE + status - STATUS_FIRST] += 1
        ints[base + LATENCY_BASE + bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._floats[self.slot * FLOAT_FIELDS + LATENCY_SUM] += seconds

    def record_class(self, label: str) -> None:
        # The cache holds only normalised labels (normalising is idempotent), so a hit on the
        # label as given is right; a miss normalises first: the shared table stores labels cut
        # to LABEL_BYTES, and every process must count a long label under the one cut form.
        index = self._label_index.get(label)
        if index is None:
            label = normalise_label(label)
            index = self._label_index.get(label)
            if index is None:
                index = self._register_label(label)
        self._ints[self._base + CLASS_BASE + index] += 1

    def record_batch(self, size: int) -> None:
        """One batch of `size` requests handed to predict (server-side batching)."""
        self._ints[self._base + BATCH_BASE + bisect.bisect_left(BATCH_BUCKETS, size)] += 1
        self._floats[self.slot * FLOAT_FIELDS + BATCH_SUM] += size

    def record_value(self, value: float) -> None:
        self._ints[self._base + VALUE_BASE + bisect.bisect_left(VALUE_BUCKETS, value)] += 1
        self._floats[self.slot * FLOAT_FIELDS + VALUE_SUM] += value

    def _register_label(self, label: str) -> int:
        """`label` is normalised. Appends it to the shared table unless another process did."""
        if self._label_lock_lost:
            return MAX_CLASSES
        # A worker killed while holding the lock (SIGKILL, the OOM killer) would hold it forever:
        # never wait for it. Registration takes microseconds, so a lock held for LABEL_LOCK_WAIT
        # is lost for good; new labels then count as _other in this process instead of
        # freezing its event loop.
        if not self._label_lock.acquire(timeout=LABEL_LOCK_WAIT):
            self._label_lock_lost = True
            return MAX_CLASSES
        try:
            self._sync_labels()
            index = self._label_index.get(label)
            if index is None:
                count = self._label_count.value
                if count >= MAX_CLASSES:
                    return MAX_CLASSES  # the _other class
                encoded = label.encode("utf-8")
                self._labels[count * LABEL_BYTES : count * LABEL_BYTES + len(encoded)] = encoded
                self._label_count.value = count + 1
                self._label_index[label] = index = count
        finally:
            self._label_lock.release()
        return index

    def _sync_labels(self) -> None:
        for index in range(len(self._label_index), self._label_count.value):
            raw = self._labels[index * LABEL_BYTES : (index + 1) * LABEL_BYTES]
            self._label_index[raw.rstrip(b"\0").decode("utf-8", "ignore")] = index

    # -- readers ---------------------------------------------------------------------------------

    def _live_slots(self) -> Iterator[int]:
        for slot in range(1, self.slots):
            if self._ints[slot * INT_FIELDS + PID] > 0:
                yield slot

    def processes_ready(self) -> int:
        return sum(self._ints[slot * INT_FIELDS + READY] for slot in self._live_slots())

    def was_ready(self, slot: int) -> bool:
        """Master: the worker of `slot` initialised its predictor."""
        return bool(self._ints[slot * INT_FIELDS + READY])

    def ready_boots(self) -> int:
        """How many workers initialised their predictor so far (changes whenever one does)."""
        return int(self._ready_boots.value)

    def served_once(self) -> bool:
        """Every process initialised its predictor once: the replica is past its first boot."""
        return bool(self._ready_once.value)

    def healthy(self) -> bool:
        """Every process initialised its predictor once, and at least one is serving now (a
        replacement worker re-initialising does not take the whole replica out of service)."""
        return bool(self._ready_once.value) and self.processes_ready() > 0

    def snapshot(self) -> Snapshot:
        ints, floats = self._ints, self._floats
        slots = [RETIRED, *self._live_slots()]
        # Field-wise sums over whole slots at once: /metrics stays cheap with 100 processes.
        totals = [0] * INT_FIELDS
        float_totals = [0.0] * FLOAT_FIELDS
        for slot in slots:
            totals = list(map(add, totals, ints[slot * INT_FIELDS : (slot + 1) * INT_FIELDS]))
            float_totals = list(
                map(add, float_totals, floats[slot * FLOAT_FIELDS : (slot + 1) * FLOAT_FIELDS])
            )
        in_flight = totals[IN_FLIGHT]  # the retired slot's is always 0

        self._sync_labels()
        classes = {label: totals[CLASS_BASE + index] for label, index in self._label_index.items()}
        classes[OTHER_CLASS] = totals[CLASS_BASE + MAX_CLASSES]
        statuses = {
            STATUS_FIRST + offset: count
            for offset, count in enumerate(totals[STATUS_BASE:LATENCY_BASE])
            if count
        }
        latency_end = LATENCY_BASE + len(LATENCY_BUCKETS) + 1
        value_end = VALUE_BASE + len(VALUE_BUCKETS) + 1
        batch_end = BATCH_BASE + len(BATCH_BUCKETS) + 1
        return Snapshot(
            processes_ready=totals[READY],  # the retired slot's is always 0
            in_flight=in_flight,
            statuses=statuses,
            latency_buckets=list(accumulate(totals[LATENCY_BASE:latency_end])),
            latency_sum=float_totals[LATENCY_SUM],
            classes={label: count for label, count in classes.items() if count},
            value_buckets=list(accumulate(totals[VALUE_BASE:value_end])),
            value_sum=float_totals[VALUE_SUM],
            batch_buckets=list(accumulate(totals[BATCH_BASE:batch_end])),
            batch_sum=float_totals[BATCH_SUM],
        )
