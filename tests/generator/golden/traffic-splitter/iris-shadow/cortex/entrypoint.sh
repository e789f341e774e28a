#!/bin/sh
# Rendered by cortex-build for the API "iris-shadow": starts the Cortex runtime on port 8888.
# `exec` replaces this shell, so the server is PID 1 and receives SIGTERM from `docker stop`;
# arguments given to `docker run IMAGE ...` are passed on to it.
set -eu
exec python -m cortex_serve --spec /opt/cortex/api.json --project /mnt/project --host 0.0.0.0 --port 8888 "$@"
