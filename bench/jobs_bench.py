"""Throughput of the job runner: the batch example (examples/batch) run natively by
`cortex-build run` with 1 and with 2 workers on the same items, alternately, best round each.

    python bench/jobs_bench.py [--items 30000] [--batch-size 100] [--rounds 2] [--work-ms 0]

`--work-ms` adds that much sleep per batch (a model slower than the example's arithmetic), where
a second worker should nearly double the rate; without it the runner's own cost per batch (a
pickled batch over a pipe, a JSON file written) dominates.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "batch"


def run_once(project: Path, items: Path, batch_size: int, workers: int, work: Path) -> float:
    results = work / f"results-{workers}"
    shutil.rmtree(results, ignore_errors=True)
    (work / "job.json").write_text(json.dumps({"results_dir": str(results)}))
    summary = work / "summary.json"
    command = [sys.executable, "-m", "cortex_build.cli", "run", str(project)]
    command += ["--items", str(items), "--batch-size", str(batch_size)]
    command += ["--workers", str(workers), "--job-config", str(work / "job.json")]
    command += ["--summary", str(summary)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"the job failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return float(json.loads(summary.read_text())["items_per_second"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=30000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work-ms", type=float, default=0.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jobs-bench-") as folder:
        work = Path(folder)
        project = work / "project"
        shutil.copytree(EXAMPLE, project)
        if args.work_ms:
            predictor = project / "predictor.py"
            text = predictor.read_text().replace(
                "    def predict(self, payload, batch_id):\n",
                "    def predict(self, payload, batch_id):\n"
                f"        __import__('time').sleep({args.work_ms / 1000!r})\n",
            )
            predictor.write_text(text)
        samples = (EXAMPLE / "items.ndjson").read_text().splitlines()
        items = work / "items.ndjson"
        items.write_text("\n".join(samples[i % len(samples)] for i in range(args.items)) + "\n")
        best: dict[int, float] = {1: 0.0, 2: 0.0}
        for _ in range(args.rounds):
            for workers in (1, 2):
                rate = run_once(project, items, args.batch_size, workers, work)
                best[workers] = max(best[workers], rate)
        print(
            f"{args.items} items, batches of {args.batch_size}, {args.work_ms:g} ms of work per "
            "batch; best of "
            f"{args.rounds}"
        )
        print(f"  1 worker : {best[1]:10.0f} items/s")
        print(f"  2 workers: {best[2]:10.0f} items/s  ({best[2] / best[1]:.2f}x)")


if __name__ == "__main__":
    main()
