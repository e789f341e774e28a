"""Compute, autoscaling, update strategy and tracker: the rules between their fields."""

from __future__ import annotations

from typing import Any

from .. import schema
from ..spec import AutoscalingSpec, ComputeSpec, PredictorSpec, TrackerSpec, UpdateStrategySpec
from .reader import ReaderBase
from .reporting import num, show


class ScalingReading(ReaderBase):
    def _compute(self) -> ComputeSpec | None:
        gpu = self.get("compute.gpu", 0)
        inf = self.get("compute.inf", 0)
        if gpu > 0 and inf > 0:
            self.fail("compute.inf", "cannot be used together with compute.gpu (use one of them)")
            return None
        if inf > 0:
            line, written = self.where("compute.inf")
            self.note(
                line,
                written,
                "AWS Inferentia (Cortex v0.18+) is not available here: the image has no Neuron "
                "runtime and runs on CPU, and no Inferentia chips are requested (a model "
                "compiled for Inferentia will not load)",
            )
        return ComputeSpec(
            cpu=self.get("compute.cpu", "200m"),
            gpu=gpu,
            inf=inf,
            mem=self.get("compute.mem"),
        )

    def _check_shm(self, predictor: PredictorSpec, compute: ComputeSpec) -> None:
        if predictor.shm_size and compute.mem:
            shm, mem = (
                schema.quantity_bytes(predictor.shm_size),
                schema.quantity_bytes(compute.mem),
            )
            if shm > mem:
                self.fail(
                    "predictor.shm_size",
                    f"cannot be greater than compute.mem ({predictor.shm_size} > {compute.mem})",
                )

    def _autoscaling(self, predictor: PredictorSpec | None) -> AutoscalingSpec | None:
        def value(key: str, default: Any) -> Any:
            return self.get(f"autoscaling.{key}", default)

        ok = True
        min_replicas, max_replicas, init_replicas = replicas = self.replica_counts()
        if min_replicas > max_replicas:
            self.fail(
                "autoscaling.min_replicas",
                "min_replicas cannot be greater than "
                f"max_replicas ({min_replicas} > {max_replicas})",
            )
            ok = False
        elif init_replicas < min_replicas:
            self.fail(
                "autoscaling.init_replicas",
                "init_replicas cannot be less than min_replicas "
                f"({init_replicas} < {min_replicas})",
            )
            ok = False
        elif init_replicas > max_replicas:
            self.fail(
                "autoscaling.init_replicas",
                "init_replicas cannot be greater than max_replicas "
                f"({init_replicas} > {max_replicas})",
            )
            ok = False
        processes = predictor.processes_per_replica if predictor else 1
        threads = predictor.threads_per_process if predictor else 1
        target = value("target_replica_concurrency", float(processes * threads))
        max_concurrency = value("max_replica_concurrency", 1024)
        if target > max_concurrency:
            self.fail(
                "autoscaling.target_replica_concurrency",
                "target_replica_concurrency cannot be greater than "
                f"max_replica_concurrency ({num(target)} > {max_concurrency})",
            )
            ok = False
        if not ok:
            return None
        return self.autoscaling_spec(
            replicas,
            target,
            max_concurrency,
            target_cpu_utilization=value("target_cpu_utilization", None),
        )

    def replica_counts(self) -> tuple[int, int, int]:
        """min_replicas, max_replicas and init_replicas as written, else Cortex's defaults (1,
        100, min_replicas)."""
        min_replicas = self.get("autoscaling.min_replicas", 1)
        max_replicas = self.get("autoscaling.max_replicas", 100)
        return min_replicas, max_replicas, self.get("autoscaling.init_replicas", min_replicas)

    def autoscaling_spec(
        self,
        replicas: tuple[int, int, int],
        target: float,
        max_concurrency: int,
        target_cpu_utilization: int | None = None,
    ) -> AutoscalingSpec:
        """The spec of checked replica counts and concurrency; the windows, stabilization periods,
        factors and tolerances as written, else the release's defaults."""
        defaults = schema.autoscaling_defaults(self.release_minor)
        return AutoscalingSpec(
            min_replicas=replicas[0],
            max_replicas=replicas[1],
            init_replicas=replicas[2],
            target_replica_concurrency=float(target),
            max_replica_concurrency=max_concurrency,
            target_cpu_utilization=target_cpu_utilization,
            **{key: self.get(f"autoscaling.{key}", default) for key, default in defaults.items()},
        )

    def _update_strategy(self) -> UpdateStrategySpec:
        surge = self.get("update_strategy.max_surge", "25%")
        unavailable = self.get("update_strategy.max_unavailable", "25%")
        if schema.rollout_stalls(surge, unavailable):
            target = (
                "update_strategy.max_unavailable"
                if "update_strategy.max_unavailable" in self.values
                else "update_strategy.max_surge"
            )
            self.fail(target, schema.ROLLOUT_STALLS)
        elif "%" in unavailable and int(unavailable[:-1]) > 100:
            self.fail(
                "update_strategy.max_unavailable",
                f"must be at most 100% (got {show(unavailable)})",
            )
        return UpdateStrategySpec(max_surge=surge, max_unavailable=unavailable)

    def _tracker(self) -> TrackerSpec | None:
        model_type = self.get("tracker.model_type")
        if model_type is None:
            return None
        return TrackerSpec(model_type=model_type, key=self.get("tracker.key"))
