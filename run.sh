#!/usr/bin/env bash
# yuqing's two commands:
#   ./run.sh up     start everything locally (Elasticsearch, demo source, mail sink, scheduler, dashboard)
#   ./run.sh test   run the test suite (starts the local Elasticsearch when it is not running)
# Both first install what is missing (system packages, a virtualenv outside the clone, the project).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
venv="$(bash scripts/bootstrap.sh | tail -n 1)"
cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  up)
    exec "$venv/bin/yuqing" up "$@" ;;
  test)
    "$venv/bin/yuqing" es start
    exec "$venv/bin/python" -m pytest "$@" ;;
  lint)
    "$venv/bin/ruff" check .
    exec "$venv/bin/mypy" yuqing index ingest crawlers nlp alerts dashboard response events tests bench ;;
  yuqing)
    exec "$venv/bin/yuqing" "$@" ;;
  *)
    echo "usage: ./run.sh up | test [pytest args] | lint | yuqing ARGS" >&2
    exit 64 ;;
esac
