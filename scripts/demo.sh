#!/usr/bin/env bash
# Sets up and runs the whole stack on CPU with the embedded default: a generated `tiny` AntAngelMed
# checkpoint served by vLLM with our plugin, behind the gateway (auth, rate limits, safety, metrics), then
# shows what the gateway does (scripts/demo_client.py): a streamed chat, a crisis message answered with
# crisis resources, a patient's identifiers redacted before the engine, and the metrics that counted them.
# A generated checkpoint has random weights: its text is noise, and the demo says so.
#
#   scripts/demo.sh                   start, show the demo, print a key and example calls; Ctrl-C stops
#   MODEL_DIR=/path scripts/demo.sh   serve another checkpoint (e.g. real AntAngelMed weights)
#   DEMO_SMOKE=1 scripts/demo.sh      start, show the demo, stop
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

RUNTIME=${RUNTIME:-runtime}
MODEL_DIR=${MODEL_DIR:-$RUNTIME/tiny}
ENGINE_PORT=${ENGINE_PORT:-8000}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
PY=.venv/bin/python
mkdir -p "$RUNTIME"

if [ ! -f "$MODEL_DIR/config.json" ]; then
  $PY -m model_plugin.checkpoints --preset tiny --out "$MODEL_DIR"
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

echo "demo: starting vLLM (plugin antangelmed) on 127.0.0.1:$ENGINE_PORT, log $RUNTIME/engine.log"
VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1} $PY -m vllm.entrypoints.openai.api_server \
  --model "$MODEL_DIR" --served-model-name antangelmed --host 127.0.0.1 --port "$ENGINE_PORT" \
  --max-model-len 2048 --enforce-eager --enable-auto-tool-choice --tool-call-parser hermes \
  >"$RUNTIME/engine.log" 2>&1 &
pids+=($!)

export ANGEL_UPSTREAM_URL="http://127.0.0.1:$ENGINE_PORT" ANGEL_HOST=127.0.0.1 ANGEL_PORT="$GATEWAY_PORT"
export ANGEL_DATABASE_URL=${ANGEL_DATABASE_URL:-sqlite:///$PWD/$RUNTIME/gateway.db}
KEY=$($PY -m server keys create --name demo --models antangelmed | grep -o 'sk-angel-[A-Za-z0-9_-]*' | head -1)
echo "demo: starting the gateway on 127.0.0.1:$GATEWAY_PORT, log $RUNTIME/gateway.log"
$PY -m server >"$RUNTIME/gateway.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 300); do
  if curl -fs "http://127.0.0.1:$GATEWAY_PORT/readyz" >/dev/null 2>&1; then break; fi
  sleep 1
done
curl -fs "http://127.0.0.1:$GATEWAY_PORT/readyz" >/dev/null || { echo "demo: stack did not become ready"; tail -20 "$RUNTIME"/*.log; exit 1; }

echo "demo: ready."
$PY scripts/demo_client.py --base-url "http://127.0.0.1:$GATEWAY_PORT/v1" --key "$KEY" --model-dir "$MODEL_DIR"
if [ -n "${DEMO_SMOKE:-}" ]; then
  exit 0
fi
echo
echo "demo: API key (shown once): $KEY"
cat <<EOT
  curl -s http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions -H "Authorization: Bearer $KEY" \\
    -H 'Content-Type: application/json' \\
    -d '{"model":"antangelmed","messages":[{"role":"user","content":"What helps a tension headache?"}],"max_tokens":32}'
  curl -s http://127.0.0.1:$GATEWAY_PORT/v1/responses -H "Authorization: Bearer $KEY" \\
    -H 'Content-Type: application/json' -d '{"model":"antangelmed","input":"What helps a tension headache?"}'
  curl -s http://127.0.0.1:$GATEWAY_PORT/metrics | grep ^gateway_
EOT
echo "demo: serving until Ctrl-C"
wait
