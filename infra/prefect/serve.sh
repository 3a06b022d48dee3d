#!/usr/bin/env bash
# A local Prefect stack for this checkout: server (SQLite, 127.0.0.1), the work pools, the deployments in
# prefect.yaml, and a worker on the process pool. Ctrl-C stops the worker and the server. Used by `make serve`.
# The GPU pool (lessismore-gpu) is created as a process pool so that deploying works on any machine; its worker is
# started where the GPU is (here too, for a try: `prefect worker start --pool lessismore-gpu`).
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
# keep a GPU pool made from infra/work-pools/*.json as it is; create a local process one only when there is none
prefect work-pool inspect lessismore-gpu >/dev/null 2>&1 || prefect work-pool create lessismore-gpu --type process
prefect --no-prompt deploy --all
echo "UI: http://127.0.0.1:${PORT}  — run: prefect deployment run 'lessismore-pipeline/pipeline'"
echo "GPU stages on the GPU pool: start its worker (prefect worker start --pool lessismore-gpu), then"
echo "  prefect deployment run 'lessismore-pipeline/pipeline' --param gpu_deployment=lessismore-stage/stage-gpu"
prefect worker start --pool lessismore-process &
WORKER=$!
wait $WORKER
