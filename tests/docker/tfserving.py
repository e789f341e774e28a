"""The TF Serving stand-in image (tests/tfserving_standin/, a TEST FIXTURE), built on the engine
for the Docker tests that need a sidecar, since tensorflow/serving cannot be pulled here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

STANDIN_DIR = Path(__file__).resolve().parent.parent / "tfserving_standin"
STANDIN_IMAGE = "cortex-build-test/tfserving-standin:latest"

_built: set[str] = set()


def build_standin_image(docker_client: Any) -> str:
    """Builds (once per session; Docker's layer cache makes later sessions' builds instant) and
    returns the stand-in's image reference. The first build downloads TensorFlow (about a minute
    on a fast link). Its FROM is the local test base image, which the `base_image` fixture makes.
    """
    if STANDIN_IMAGE not in _built:
        # rm + forcerm: no intermediate container is left behind, even when a step fails.
        docker_client.images.build(
            path=str(STANDIN_DIR), tag=STANDIN_IMAGE, rm=True, forcerm=True, timeout=1800
        )
        _built.add(STANDIN_IMAGE)
    return STANDIN_IMAGE
