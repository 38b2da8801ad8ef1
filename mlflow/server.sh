#!/usr/bin/env bash
# Start the project's MLflow tracking + registry server on loopback (`make mlflow`).
# Backend: SQLite under $CALLQA_HOME/mlflow (default .callqa/mlflow), artifacts beside it,
# served through the server (--serve-artifacts) so clients need no direct file access.
# This directory holds server config only and must never get an __init__.py: it would
# shadow the `mlflow` package for code run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
home="${CALLQA_HOME:-.callqa}"
host="${MLFLOW_HOST:-127.0.0.1}"
port="${MLFLOW_PORT:-5000}"
mkdir -p "$home/mlflow/artifacts"
root="$(cd "$home/mlflow" && pwd)"
# the job-execution service costs ~1.9 GB of server memory and is not used here
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
exec "${MLFLOW_BIN:-.venv/bin/mlflow}" server \
  --host "$host" --port "$port" --workers 1 \
  --backend-store-uri "sqlite:///$root/mlflow.db" \
  --artifacts-destination "$root/artifacts" --serve-artifacts
