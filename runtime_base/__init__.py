"""The serving runtime copied into every image (and used by `cortex-build serve`).

Only `cortex_serve/`, `cortex_internal/` and `requirements.txt` are copied; this file exists so
that the folder ships inside the installed distribution.
"""
