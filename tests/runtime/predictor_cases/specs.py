"""api.json dicts for the predictor tests, built with the real contract (cortex_build.spec), so the
tests break when the spec's shape changes under the runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cortex_build.spec import ApiSpec, ComputeSpec, ModelRef, ModelsSpec, PredictorSpec

CASES_DIR = Path(__file__).parent


def api_spec(
    path: str,
    *,
    type: str = "python",
    interface: str = "class",
    config: dict[str, Any] | None = None,
    model: str | None = None,
    models: dict[str, str] | None = None,
    models_dir: str | None = None,
    signature_key: str | None = None,
    cache_size: int | None = None,
    gpu: int = 0,
) -> dict[str, Any]:
    """`model` is one model (`_cortex_default`), `models` several by name, `models_dir` a dir."""
    refs: tuple[ModelRef, ...] = ()
    if model is not None:
        refs = (ModelRef("_cortex_default", model),)
    elif models:
        refs = tuple(ModelRef(name, model_path) for name, model_path in models.items())
    models_spec = (
        ModelsSpec(
            paths=refs,
            dir=models_dir,
            signature_key=signature_key,
            cache_size=cache_size,
            disk_cache_size=cache_size,
        )
        if refs or models_dir
        else None
    )
    spec = ApiSpec(
        name="test-api",
        generation="test",
        endpoint="/test-api",
        predictor=PredictorSpec(
            type=type,  # type: ignore[arg-type]
            interface=interface,  # type: ignore[arg-type]
            path=path,
            config=config or {},
            models=models_spec,
        ),
        compute=ComputeSpec(gpu=gpu),
    )
    return spec.to_dict()
