"""examples/cached-models over real HTTP, natively: its samples.yaml with local models, and again
with the models on a local S3-compatible server fetched at start, where disk_cache_size bounds
the download cache while the samples walk through five model versions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from cortex_build.config import load_project
from cortex_serve.model_cache import DiskCache
from e2e import EXAMPLES, check_sample, load_samples
from model_servers import s3_server

EXAMPLE = EXAMPLES / "cached-models"


def test_samples_with_local_models(start_server: Callable[..., Any]) -> None:
    (spec,) = load_project(EXAMPLE).apis
    assert spec.predictor.models is not None and spec.predictor.models.cache_size == 1
    server = start_server(EXAMPLE, spec)
    samples = load_samples(EXAMPLE)
    with httpx.Client() as client:
        for _ in range(2):  # a second pass reloads what cache_size 1 dropped
            for sample in samples:
                check_sample(server.url(""), sample, client)


def test_samples_with_models_fetched_from_s3_at_start(
    start_server: Callable[..., Any], tmp_path: Path
) -> None:
    (spec,) = load_project(EXAMPLE).apis
    with s3_server() as s3:
        s3.upload_tree(EXAMPLE / "models", "cached/models")
        assert spec.predictor.models is not None
        models = dataclasses.replace(spec.predictor.models, dir=s3.url("cached/models"))
        remote = dataclasses.replace(
            spec, predictor=dataclasses.replace(spec.predictor, models=models)
        )
        cache = tmp_path / "cache"
        server = start_server(EXAMPLE, remote, env={**s3.env, "CORTEX_MODEL_CACHE_DIR": str(cache)})
        with httpx.Client() as client:
            for sample in load_samples(EXAMPLE):
                check_sample(server.url(""), sample, client)
                assert len(DiskCache(cache).entries()) <= 2  # disk_cache_size
        # the last two versions used, least recently used first
        assert DiskCache(cache).entries() == [
            s3.url("cached/models/petal"),
            s3.url("cached/models/logistic/1"),
        ]
