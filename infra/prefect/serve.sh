#!/usr/bin/env bash
# A local Prefect stack for this checkout: server (SQLite, 127.0.0.1), the process work pool, the deployments in
# prefect.yaml, and a worker. Ctrl-C stops the worker and the server. Used by `make serve`.
set -euo pipefail
cd "$(dirname "$0")/../.."
export LESSISMORE_ROOT="$PWD"
export PREFECT_HOME="${PREFECT_HOME:-$PWD/.prefect}"        # keep the SQLite database inside the checkout
PORT="${PREFECT_PORT:-4200}"
export PREFECT_API_URL="http://127.0.0.1:${PORT}/api"

prefect server start --host 127.0.0.1 --port "$PORT" &
SERVER=$!
trap 'kill $SERVER ${WORKER:-} 2>/dev/null || true' EXIT INT TERM
healthy() { python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$PREFECT_API_URL/health" 2>/dev/null; }
for _ in $(seq 1 90); do healthy && break; sleep 1; done
healthy || { echo "Prefect server did not start on port $PORT (see the lines above)" >&2; exit 1; }

prefect work-pool create lessismore-process --type process --overwrite
prefect --no-prompt deploy --all
echo "UI: http://127.0.0.1:${PORT}  — run: prefect deployment run 'lessismore-pipeline/pipeline'"
prefect worker start --pool lessismore-process &
WORKER=$!
wait $WORKER
