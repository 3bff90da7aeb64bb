#!/usr/bin/env bash
# `make conformance`: run the public HTTP caching tests (http-cache-tests 0.4.5, cache-tests.fyi) against
# the edge proxy in standalone mode on loopback, with the suite's own origin server and CLI, then score
# the run the way the suite does. Exits non-zero below 140/168 required or above 10 hard failures.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="${VENV:-$root/.venv}"
suite="$here/node_modules/http-cache-tests"
min_required="${MIN_REQUIRED:-140}"
max_hard="${MAX_HARD_FAILURES:-10}"

if [[ "$(node -p "try{require('$suite/package.json').version}catch(e){''}" 2>/dev/null)" != "0.4.5" ]]; then
  echo "conformance: installing http-cache-tests@0.4.5"
  npm install --prefix "$here" --no-audit --no-fund --loglevel=error >/dev/null
fi

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
origin_port="$(free_port)"
proxy_port="$(free_port)"
work="$(mktemp -d)"
proxy_pid=""
cleanup() {
  [[ -n "$proxy_pid" ]] && kill "$proxy_pid" 2>/dev/null || true
  if [[ -s "$work/server.pid" ]]; then kill "$(cat "$work/server.pid")" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The suite's origin server (its npm script backgrounds node and writes the pid file).
(cd "$suite" && npm run --silent server --port="$origin_port" --pidfile="$work/server.pid" >"$work/server.log" 2>&1)
"$venv/bin/anycastlab" proxy --listen "127.0.0.1:$proxy_port" --origin "http://127.0.0.1:$origin_port" \
  --pop CONF >"$work/proxy.log" 2>&1 &
proxy_pid=$!

for _ in $(seq 1 50); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$proxy_port/cdn-cgi/trace" 2>/dev/null \
     && [[ -s "$work/server.pid" ]] && curl -sS -o /dev/null "http://127.0.0.1:$origin_port/state/none" 2>/dev/null; then
    break
  fi
  sleep 0.2
done

echo "conformance: proxy 127.0.0.1:$proxy_port -> suite origin 127.0.0.1:$origin_port"
mkdir -p "$root/reports"
results="$root/reports/conformance-results.json"
(cd "$suite" && timeout 600 npm run --silent cli --base="http://127.0.0.1:$proxy_port") >"$results"
node "$here/score.mjs" "$results" | tee "$root/reports/conformance-score.txt"
node "$here/score.mjs" "$results" --json >"$root/reports/conformance-score.json"

if grep -q Traceback "$work/proxy.log"; then
  echo "conformance: the proxy logged tracebacks:" >&2
  grep -A5 Traceback "$work/proxy.log" | head -40 >&2
fi

passed="$(node -p "require('$root/reports/conformance-score.json').required.passed")"
hard="$(node -p "require('$root/reports/conformance-score.json').hard_failures.length")"
if (( passed < min_required || hard > max_hard )); then
  echo "conformance: below target (need >= $min_required required passed and <= $max_hard hard failures)" >&2
  exit 1
fi
echo "conformance: target met (>= $min_required required, <= $max_hard hard failures)"
