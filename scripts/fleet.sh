#!/usr/bin/env bash
# A fleet on one host: REPLICAS vLLM engines behind vLLM's own router (`vllm-router`, cache-aware), behind
# the gateway (auth, limits, safety, audit, per-tenant prefix-cache salts). Creates an API key, prints it
# once, and serves until Ctrl-C, which stops everything it started.
#
#   REPLICAS=3 scripts/fleet.sh                      engines on 8001..8003, router on 8000, gateway on 8080
#   ENGINE=gpu REPLICAS=8 MODEL_DIR=/models/AntAngelMed-FP8 scripts/fleet.sh    one GPU per engine
#   FLEET_SMOKE=1 REPLICAS=2 scripts/fleet.sh        start, send one chat through the gateway, stop
#
# Settings (environment):
#   REPLICAS (2)            engines; engine i listens on ENGINE_BASE_PORT+i
#   ENGINE_BASE_PORT (8000) ROUTER_PORT (8000) ROUTER_METRICS_PORT (29000) GATEWAY_PORT (8080)
#   ENGINE (cpu)            cpu: each engine gets its own cores (VLLM_CPU_OMP_THREADS_BIND) and
#                           VLLM_CPU_KVCACHE_SPACE GiB (1) of KV cache; gpu: GPUS_PER_ENGINE (1) GPUs each
#                           (CUDA_VISIBLE_DEVICES), tensor parallel across them
#   MODEL_DIR               the checkpoint (default: the generated `tiny` one in RUNTIME, as scripts/demo.sh)
#   ENGINE_ARGS             engine flags replacing the defaults after the model (max-model-len, eager, ...)
#   ROUTER_POLICY           cache_aware (default), round_robin, power_of_two, consistent_hash, kv_aware, ...
#   ROUTER_ARGS             more router flags (`.venv/bin/vllm-router --help`)
#   RUNTIME (runtime)       logs in RUNTIME/fleet/, the key store RUNTIME/gateway.db (ANGEL_DATABASE_URL)
#
# An engine that exits is started again (after ENGINE_RESTART_DELAY seconds, 5): the router stops sending it
# requests within seconds (retries, circuit breaker, health checks every 5 s) and uses it again once its
# /health answers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

REPLICAS=${REPLICAS:-2}
ENGINE=${ENGINE:-cpu}
RUNTIME=${RUNTIME:-runtime}
MODEL_DIR=${MODEL_DIR:-$RUNTIME/tiny}
ENGINE_BASE_PORT=${ENGINE_BASE_PORT:-8000}
ROUTER_PORT=${ROUTER_PORT:-8000}
ROUTER_METRICS_PORT=${ROUTER_METRICS_PORT:-29000}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
ROUTER_POLICY=${ROUTER_POLICY:-cache_aware}
GPUS_PER_ENGINE=${GPUS_PER_ENGINE:-1}
ENGINE_RESTART_DELAY=${ENGINE_RESTART_DELAY:-5}
KV_EVENTS_BASE_PORT=${KV_EVENTS_BASE_PORT:-5556}
PY=.venv/bin/python
ROUTER=.venv/bin/vllm-router
[[ "$REPLICAS" =~ ^[1-9][0-9]*$ ]] || { echo "fleet: REPLICAS must be a positive number" >&2; exit 2; }
mkdir -p "$RUNTIME/fleet"
RUNTIME=$(cd "$RUNTIME" && pwd)
FLEET=$RUNTIME/fleet
STOP=$FLEET/stopping
rm -f "$STOP" "$FLEET"/engine-*.pid "$FLEET"/engine-*.exits "$FLEET"/engine-*.log

if [ ! -f "$MODEL_DIR/config.json" ]; then
  $PY -m model_plugin.checkpoints --preset tiny --out "$MODEL_DIR"
fi

if [ "$ENGINE" = gpu ]; then
  DEFAULT_ENGINE_ARGS="--max-model-len 32768 --gpu-memory-utilization 0.90 --tensor-parallel-size $GPUS_PER_ENGINE"
  KV_BLOCK=16
else
  DEFAULT_ENGINE_ARGS="--max-model-len 2048 --enforce-eager"
  KV_BLOCK=128 # vLLM's CPU backend uses 128-token blocks
  # Cores this process may use; each engine gets its share (one engine per core when they are fewer).
  read -r -a CORES <<<"$($PY -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
  PER_ENGINE=$((${#CORES[@]} / REPLICAS))
  [ "$PER_ENGINE" -ge 1 ] || PER_ENGINE=1
fi
read -r -a EXTRA_ENGINE_ARGS <<<"${ENGINE_ARGS:-$DEFAULT_ENGINE_ARGS}"

# A process and all its descendants (vLLM's API server starts an engine core, which starts workers).
process_tree() {
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do process_tree "$c"; done
  echo "$1"
}

any_alive() {
  local p
  for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done
  return 1
}

pids=()
cleanup() {
  [ -f "$STOP" ] && return
  touch "$STOP"
  # Supervisors first (so none starts an engine again), then the engines, router and gateway.
  local engines=() f p
  # Every engine process, listed before any dies: an API server stopped while it is still starting can
  # leave its engine core and workers behind, re-parented out of reach.
  for f in "$FLEET"/engine-*.pid; do
    [ -f "$f" ] && read -r -a tree <<<"$(process_tree "$(cat "$f")" | tr '\n' ' ')" && engines+=("${tree[@]}")
  done
  for p in "${pids[@]}" "${engines[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # The engines are the supervisors' children, not ours: wait for them (vLLM drains, then ends its
  # workers) and kill what is still there after a minute.
  for _ in $(seq 1 60); do
    any_alive "${engines[@]}" || break
    sleep 1
  done
  for p in "${engines[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -f "$FLEET"/engine-*.pid
  echo "fleet: stopped"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# The environment and flags of engine $1 (1-based).
engine_env() {
  local i=$1
  if [ "$ENGINE" = gpu ]; then
    local first=$(((i - 1) * GPUS_PER_ENGINE))
    echo "CUDA_VISIBLE_DEVICES=$(seq -s, "$first" $((first + GPUS_PER_ENGINE - 1)))"
  else
    local start=$((((i - 1) * PER_ENGINE) % ${#CORES[@]}))
    local mine=("${CORES[@]:$start:$PER_ENGINE}") bind
    bind=$(IFS=, && echo "${mine[*]}")
    echo "VLLM_CPU_OMP_THREADS_BIND=$bind VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}"
  fi
}

# vllm-router subscribes to tcp:// endpoints only, and vLLM binds (rather than connects) only to a wildcard
# address: with kv_aware the event ports listen on every interface of this host (firewall them).
kv_port() { echo $((KV_EVENTS_BASE_PORT + $1)); }

# Runs engine $1 until the fleet stops, starting it again whenever it exits.
supervise_engine() {
  local i=$1 port=$((ENGINE_BASE_PORT + $1)) args=() kv_env=()
  if [ "$ROUTER_POLICY" = kv_aware ]; then
    # Engines publish their KV cache events (ZMQ) for the router, which hashes token blocks as the engine
    # does: same algorithm, same seed, full hashes.
    local events="{\"enable_kv_cache_events\":true,\"publisher\":\"zmq\",\"endpoint\":\"tcp://*:$(kv_port "$i")\"}"
    args=(--prefix-caching-hash-algo sha256_cbor --kv-events-config "$events")
    kv_env=(PYTHONHASHSEED=0 VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=0)
  fi
  while [ ! -f "$STOP" ]; do
    # --enable-scale-out opens vLLM's /v1/*/render endpoints: the router renders each chat to token ids
    # there and routes on those tokens and the request's cache_salt (one prefix tree per tenant). Without
    # them its cache-aware policy has no tokens and sends every conversation to the same engine.
    # shellcheck disable=SC2046 # engine_env prints NAME=value words
    env $(engine_env "$i") "${kv_env[@]}" \
      $PY -m vllm.entrypoints.openai.api_server --model "$MODEL_DIR" --served-model-name antangelmed \
      --host 127.0.0.1 --port "$port" --enable-auto-tool-choice --tool-call-parser hermes --enable-scale-out \
      "${EXTRA_ENGINE_ARGS[@]}" "${args[@]}" >>"$FLEET/engine-$i.log" 2>&1 &
    echo $! >"$FLEET/engine-$i.pid"
    wait "$!" || true
    [ -f "$STOP" ] && break
    echo "exited $(date +%s)" >>"$FLEET/engine-$i.exits"
    echo "fleet: engine $i (port $port) exited; starting it again in ${ENGINE_RESTART_DELAY}s" >&2
    sleep "$ENGINE_RESTART_DELAY"
  done
}

worker_urls=()
echo "fleet: starting $REPLICAS engine(s) ($ENGINE) on 127.0.0.1:$((ENGINE_BASE_PORT + 1))..$((ENGINE_BASE_PORT + REPLICAS)), logs $FLEET/engine-N.log"
for i in $(seq 1 "$REPLICAS"); do
  supervise_engine "$i" &
  pids+=($!)
  worker_urls+=("http://127.0.0.1:$((ENGINE_BASE_PORT + i))")
done

# The router starts once every engine answers /health (loading weights takes from seconds to many minutes).
for url in "${worker_urls[@]}"; do
  until curl -fs "$url/health" >/dev/null 2>&1; do
    if compgen -G "$FLEET/engine-*.exits" >/dev/null; then
      echo "fleet: an engine exited while starting:" >&2
      tail -n 20 "$FLEET"/engine-*.log >&2
      exit 1
    fi
    sleep 1
  done
done

router_args=()
if [ "$ROUTER_POLICY" = kv_aware ]; then
  router_args+=(--kv-event-model antangelmed --kv-event-block-size "$KV_BLOCK")
  for i in $(seq 1 "$REPLICAS"); do
    router_args+=(--kv-event-source "${worker_urls[$((i - 1))]}=tcp://127.0.0.1:$(kv_port "$i")")
  done
fi
read -r -a USER_ROUTER_ARGS <<<"${ROUTER_ARGS:-}"
echo "fleet: starting vllm-router ($ROUTER_POLICY) on 127.0.0.1:$ROUTER_PORT, metrics :$ROUTER_METRICS_PORT, log $FLEET/router.log"
# Health checks every 5 s and a circuit breaker after 3 failures: a dead engine leaves the rotation within
# seconds and comes back after one good check. Cache-aware routing follows a conversation's longest cached
# prefix unless one engine has more than 4 requests (and 1.5x) over the least loaded; then the least loaded
# takes it (the defaults, 64 requests, would pile every conversation sharing a system prompt on one engine).
$ROUTER --host 127.0.0.1 --port "$ROUTER_PORT" --worker-urls "${worker_urls[@]}" --policy "$ROUTER_POLICY" \
  --prometheus-host 127.0.0.1 --prometheus-port "$ROUTER_METRICS_PORT" --request-id-headers x-request-id \
  --health-check-interval-secs 5 --health-failure-threshold 2 --health-success-threshold 1 \
  --cb-failure-threshold 3 --cb-timeout-duration-secs 10 \
  --cache-threshold 0.5 --balance-abs-threshold 4 --balance-rel-threshold 1.5 \
  --worker-startup-timeout-secs 1800 --worker-startup-check-interval 1 \
  "${router_args[@]}" "${USER_ROUTER_ARGS[@]}" >"$FLEET/router.log" 2>&1 &
router_pid=$!
pids+=("$router_pid")

export ANGEL_UPSTREAM_URL="http://127.0.0.1:$ROUTER_PORT" ANGEL_HOST=127.0.0.1 ANGEL_PORT="$GATEWAY_PORT"
export ANGEL_DATABASE_URL=${ANGEL_DATABASE_URL:-sqlite:///$RUNTIME/gateway.db}
if [ -z "${ANGEL_CACHE_SALT_SECRET:-}" ]; then
  # One secret kept with the fleet's state: a tenant's salt (and so its cached prefixes) survives restarts.
  [ -s "$FLEET/cache-salt-secret" ] || (umask 077 && $PY -c 'import secrets; print(secrets.token_urlsafe(32))' >"$FLEET/cache-salt-secret")
  ANGEL_CACHE_SALT_SECRET=$(cat "$FLEET/cache-salt-secret")
  export ANGEL_CACHE_SALT_SECRET
fi
KEY=$($PY -m server keys create --name "fleet-$(date +%Y%m%d-%H%M%S)-$$" --models antangelmed |
  grep -o 'sk-angel-[A-Za-z0-9_-]*' | head -1)
echo "fleet: starting the gateway on 127.0.0.1:$GATEWAY_PORT, log $FLEET/gateway.log"
$PY -m server >"$FLEET/gateway.log" 2>&1 &
gateway_pid=$!
pids+=("$gateway_pid")

for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:$GATEWAY_PORT/readyz" >/dev/null 2>&1 && break
  sleep 1
done
curl -fs "http://127.0.0.1:$GATEWAY_PORT/readyz" || {
  echo "fleet: the gateway did not become ready" >&2
  tail -n 20 "$FLEET/router.log" "$FLEET/gateway.log" >&2
  exit 1
}
echo
echo "fleet: ready: $REPLICAS engine(s) -> vllm-router :$ROUTER_PORT -> gateway :$GATEWAY_PORT"
echo "fleet: API key (shown once): $KEY"
cat <<EOT
  curl -s http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions -H "Authorization: Bearer $KEY" \\
    -H 'Content-Type: application/json' \\
    -d '{"model":"antangelmed","messages":[{"role":"user","content":"What helps a tension headache?"}],"max_tokens":32}'
  curl -s http://127.0.0.1:$ROUTER_PORT/workers                # the router's engines and their load
  curl -s http://127.0.0.1:$ROUTER_METRICS_PORT/metrics | grep ^vllm_router_
EOT
if [ -n "${FLEET_SMOKE:-}" ]; then
  curl -fsS "http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' \
    -d '{"model":"antangelmed","messages":[{"role":"user","content":"ping"}],"max_tokens":4}' >/dev/null
  echo "fleet: smoke request answered"
  exit 0
fi
echo "fleet: serving until Ctrl-C"
# The fleet stops when its router or gateway does (engines are restarted by their supervisors instead).
# A short wait in a loop rather than `wait -n` on the two: the INT and TERM traps then run within a second
# whatever bash's job table holds (under a full test run a `wait -n` once left Ctrl-C unanswered).
while kill -0 "$router_pid" 2>/dev/null && kill -0 "$gateway_pid" 2>/dev/null; do
  sleep 1 &
  wait "$!" || true
done
echo "fleet: the router or the gateway exited; stopping" >&2
