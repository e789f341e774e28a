"""The serving runtime copied into every image: a Starlette app run by gunicorn + uvicorn workers.

Run it as `python -m cortex_serve --spec api.json --project DIR` (see __main__.py). It reads only
api.json (`cortex_build.spec.ApiSpec.to_json()`), never cortex.yaml, and needs no generator code.
"""
