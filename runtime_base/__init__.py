"""The serving runtime copied into every image (and used by `cortex-build serve`).

Its packages, `cortex_serve/` and `cortex_internal/`, install under those names, the ones they
have in images; this package (`cortex_build.runtime_base`) ships the runtime's requirement files
as data. generator/runtime_files.py finds both.
"""
