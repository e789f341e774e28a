"""What scales an API's Deployment in k8s/: the choice of autoscaler (a HorizontalPodAutoscaler
or a KEDA ScaledObject), its metric (CPU utilization, or the runtime's in-flight requests as a
concurrency metric), Cortex's scaling limits as behavior policies, and the prometheus-adapter
rules an HPA on concurrency reads."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .errors import Problem, UserError, api_problem, option_problem
from .k8s_workloads import k8s_name, metadata
from .spec import AUTOSCALERS, ApiSpec, Project
from .templating import quote

# The runtime's replica-wide gauge of requests in flight (runtime_base/cortex_serve/metrics.py).
IN_FLIGHT_SERIES = "cortex_in_flight_requests"
# KEDA's Prometheus trigger needs the server's address; this is the prometheus-community chart's
# default Service. Documented in docs/kubernetes.md; change it with a kustomize patch.
KEDA_PROMETHEUS_ADDRESS = "http://prometheus-server.monitoring.svc.cluster.local"

# Kubernetes' own limits on HPA behavior fields.
MAX_STABILIZATION_SECONDS = 3600
MAX_POLICY_PERIOD_SECONDS = 1800


def autoscaler_problem(autoscaler: str) -> Problem | None:
    """Why `autoscaler` (the --autoscaler option) is not one of AUTOSCALERS, or None."""
    if autoscaler in AUTOSCALERS:
        return None
    return option_problem(
        "--autoscaler", f"must be {' or '.join(map(quote, AUTOSCALERS))} (got {quote(autoscaler)})"
    )


def autoscaler_manifests(project: Project, api: ApiSpec, autoscaler: str) -> dict[str, Any]:
    """{file name: document} of what scales a realtime API's Deployment."""
    if autoscaler == "keda":
        return {"scaledobject.yaml": _scaled_object(project, api)}
    return {"hpa.yaml": _hpa(project, api)}


def adapter_values(apis: Sequence[ApiSpec], autoscaler: str) -> dict[str, Any] | None:
    """prometheus-adapter's Helm values, where an HPA reads the concurrency metric: one rule per
    distinct `window` (avg_over_time needs a fixed range); None where no HPA does."""
    if autoscaler != "hpa":
        return None  # KEDA queries Prometheus itself
    windows = sorted({_seconds(api.autoscaling.window) for api in apis if _uses_concurrency(api)})
    if not windows:
        return None
    rules = [
        {
            "seriesQuery": f'{IN_FLIGHT_SERIES}{{namespace!="",pod!=""}}',
            "resources": {
                "overrides": {
                    "namespace": {"resource": "namespace"},
                    "pod": {"resource": "pod"},
                }
            },
            "name": {
                "matches": f"^{IN_FLIGHT_SERIES}$",
                "as": f"{IN_FLIGHT_SERIES}_avg_{window}s",
            },
            "metricsQuery": (
                f"sum(avg_over_time(<<.Series>>{{<<.LabelMatchers>>}}[{window}s])) "
                "by (<<.GroupBy>>)"
            ),
        }
        for window in windows
    ]
    return {"rules": {"custom": rules}}


def in_flight_metric_name(api: ApiSpec) -> str:
    """The custom metric the HPA reads: the in-flight gauge averaged over `window`."""
    return f"{IN_FLIGHT_SERIES}_avg_{_seconds(api.autoscaling.window)}s"


def _uses_concurrency(api: ApiSpec) -> bool:
    return api.autoscaling.target_cpu_utilization is None


def _scale_target(api: ApiSpec) -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": k8s_name(api)}


def _hpa(project: Project, api: ApiSpec) -> dict[str, Any]:
    scaling = api.autoscaling
    if scaling.target_cpu_utilization is not None:
        metric = _cpu_metric(project, api)
    else:
        metric = {
            "type": "Pods",
            "pods": {
                "metric": {"name": in_flight_metric_name(api)},
                "target": {
                    "type": "AverageValue",
                    "averageValue": _decimal_quantity(scaling.target_replica_concurrency),
                },
            },
        }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(api),
        "spec": {
            "scaleTargetRef": _scale_target(api),
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [metric],
            "behavior": _behavior(project, api, with_tolerance=True),
        },
    }


def _cpu_metric(project: Project, api: ApiSpec) -> dict[str, Any]:
    if api.compute.cpu is None:
        raise UserError(
            api_problem(
                project,
                api,
                "compute.cpu",
                "autoscaling.target_cpu_utilization needs a CPU request (utilization is "
                "measured against it); set compute.cpu",
            )
        )
    return {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {
                "type": "Utilization",
                "averageUtilization": api.autoscaling.target_cpu_utilization,
            },
        },
    }


def _behavior(project: Project, api: ApiSpec, with_tolerance: bool) -> dict[str, Any]:
    """Stabilization periods -> stabilizationWindowSeconds; max factors -> one Percent policy
    per `window`; tolerances -> behavior.*.tolerance (Kubernetes 1.33+, on by default 1.35+)."""
    scaling = api.autoscaling
    window = _bounded_seconds(
        project, api, "autoscaling.window", scaling.window, 1, MAX_POLICY_PERIOD_SECONDS
    )
    up_percent = _factor_percent(
        project, api, "autoscaling.max_upscale_factor", scaling.max_upscale_factor, up=True
    )
    down_percent = _factor_percent(
        project, api, "autoscaling.max_downscale_factor", scaling.max_downscale_factor, up=False
    )
    scale_up: dict[str, Any] = {
        "stabilizationWindowSeconds": _bounded_seconds(
            project,
            api,
            "autoscaling.upscale_stabilization_period",
            scaling.upscale_stabilization_period,
            0,
            MAX_STABILIZATION_SECONDS,
        ),
        "policies": [{"type": "Percent", "value": up_percent, "periodSeconds": window}],
    }
    scale_down: dict[str, Any] = {
        "stabilizationWindowSeconds": _bounded_seconds(
            project,
            api,
            "autoscaling.downscale_stabilization_period",
            scaling.downscale_stabilization_period,
            0,
            MAX_STABILIZATION_SECONDS,
        ),
        "policies": [{"type": "Percent", "value": down_percent, "periodSeconds": window}],
    }
    if with_tolerance:
        scale_up["tolerance"] = _decimal_quantity(scaling.upscale_tolerance)
        scale_down["tolerance"] = _decimal_quantity(scaling.downscale_tolerance)
    return {"scaleUp": scale_up, "scaleDown": scale_down}


def _factor_percent(project: Project, api: ApiSpec, field: str, factor: float, up: bool) -> int:
    """1.5 -> 50 (% more per period); 0.75 -> 25 (% fewer), to the nearest whole percent."""
    if up and factor <= 1:
        raise UserError(api_problem(project, api, field, f"must be greater than 1 (got {factor})"))
    if not up and not 0 <= factor < 1:
        raise UserError(
            api_problem(project, api, field, f"must be at least 0 and less than 1 (got {factor})")
        )
    percent = round((factor - 1 if up else 1 - factor) * 100)
    return max(1, percent)  # a 0% policy would forbid scaling in that direction at all


def _scaled_object(project: Project, api: ApiSpec) -> dict[str, Any]:
    scaling = api.autoscaling
    if scaling.target_cpu_utilization is not None:
        _cpu_metric(project, api)  # the same CPU-request check as for the HPA
        trigger: dict[str, Any] = {
            "type": "cpu",
            "metricType": "Utilization",
            "metadata": {"value": str(scaling.target_cpu_utilization)},
        }
    else:
        trigger = {
            "type": "prometheus",
            "metricType": "AverageValue",  # the query's sum, divided by the replica count
            "metadata": {
                "serverAddress": KEDA_PROMETHEUS_ADDRESS,
                "query": f'sum(avg_over_time({IN_FLIGHT_SERIES}{{api="{api.name}"}}'
                f"[{_seconds(scaling.window)}s]))",
                "threshold": _decimal_quantity(scaling.target_replica_concurrency),
            },
        }
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(api),
        "spec": {
            "scaleTargetRef": _scale_target(api),
            "minReplicaCount": scaling.min_replicas,
            "maxReplicaCount": scaling.max_replicas,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "name": k8s_name(api),
                    # KEDA's CRD (2.16) predates behavior.*.tolerance; see docs/kubernetes.md.
                    "behavior": _behavior(project, api, with_tolerance=False),
                }
            },
            "triggers": [trigger],
        },
    }


def _decimal_quantity(value: float) -> str:
    """A float as a Kubernetes quantity string at milli precision: 1.0 -> "1", 0.05 -> "0.05"."""
    milli = Decimal(repr(value)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    return format(milli.normalize(), "f")


def _seconds(value: float) -> int:
    return math.ceil(value - 1e-9)  # whole seconds, rounding a fraction up


def _bounded_seconds(
    project: Project, api: ApiSpec, field: str, value: float, low: int, high: int
) -> int:
    seconds = _seconds(value)
    if not low <= seconds <= high:
        raise UserError(
            api_problem(
                project,
                api,
                field,
                f"Kubernetes accepts {low}s to {high}s here (got {value:g}s)",
            )
        )
    return seconds
