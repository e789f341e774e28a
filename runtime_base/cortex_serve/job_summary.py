"""A job's outcome: the summary of its batches (what `--summary-file` gets as JSON) and the
runner's exit statuses.

A worker's summary is what it handled; `Summary.merge` makes the job's from its separate workers'
(`cortex-build run --image` runs them as containers)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

OK, FAILED, BAD_JOB, INIT_FAILED = 0, 1, 2, 3


@dataclass
class FailedBatch:
    batch_id: str
    index: int
    receive_count: int
    error: str
    items: list[Any]


@dataclass
class Summary:
    job_id: str
    batches: int
    items: int
    succeeded: int = 0
    failed: list[FailedBatch] = field(default_factory=list)
    items_succeeded: int = 0
    seconds: float = 0.0
    on_job_complete: str = "not run"  # "succeeded", "failed: ...", "not defined", "not run"
    timed_out: bool = False

    @property
    def items_per_second(self) -> float:
        return self.items_succeeded / self.seconds if self.seconds > 0 else 0.0

    def status(self) -> int:
        bad = self.failed or self.timed_out or self.on_job_complete.startswith("failed")
        return FAILED if bad else OK

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["items_per_second"] = round(self.items_per_second, 3)
        data["failed_batches"] = data.pop("failed")
        data["failed"] = len(self.failed)
        data["exit_status"] = self.status()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Summary:
        """A summary written by `to_json` (a worker's --summary-file)."""
        return cls(
            job_id=data["job_id"],
            batches=data["batches"],
            items=data["items"],
            succeeded=data["succeeded"],
            failed=[FailedBatch(**failed) for failed in data["failed_batches"]],
            items_succeeded=data["items_succeeded"],
            seconds=data["seconds"],
            on_job_complete=data["on_job_complete"],
            timed_out=data["timed_out"],
        )

    @classmethod
    def merge(cls, parts: list[Summary], on_job_complete: str) -> Summary:
        """The job's summary from its separate workers' (each ran its share of the batches at
        the same time as the others), with the outcome of on_job_complete run after them."""
        return cls(
            job_id=parts[0].job_id if parts else "",
            batches=sum(part.batches for part in parts),
            items=sum(part.items for part in parts),
            succeeded=sum(part.succeeded for part in parts),
            failed=sorted((f for part in parts for f in part.failed), key=lambda f: f.index),
            items_succeeded=sum(part.items_succeeded for part in parts),
            seconds=max((part.seconds for part in parts), default=0.0),
            on_job_complete=on_job_complete,
            timed_out=any(part.timed_out for part in parts),
        )

    def lines(self) -> list[str]:
        result = [
            f"job {self.job_id}: {self.succeeded} of {self.batches} batches succeeded, "
            f"{len(self.failed)} failed; {self.items_succeeded} of {self.items} items in "
            f"{self.seconds:.2f}s ({self.items_per_second:.1f} items/s); on_job_complete: "
            f"{self.on_job_complete}" + ("; the job's timeout passed" if self.timed_out else "")
        ]
        for failed in self.failed:
            result.append(
                f"  failed batch {failed.batch_id} ({len(failed.items)} items, handled "
                f"{failed.receive_count} time(s)): {failed.error}"
            )
        return result
