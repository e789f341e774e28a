#!/bin/sh
# Rendered by cortex-build for the BatchAPI "iris-batch": runs one job to its end, the one in
# $CORTEX_JOB_SPEC (default /cortex/spec/job.json, mounted there). `exec` replaces this shell, so the job
# runner is PID 1; arguments given to `docker run IMAGE ...` are passed on to it
# (--worker-index I --worker-count N, --on-job-complete, --workers N, --summary-file FILE).
set -eu
exec python -m cortex_serve.jobs --spec /opt/cortex/api.json --project /mnt/project "$@"
