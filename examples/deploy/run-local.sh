#!/usr/bin/env bash
# Starts a CURVE-secured deployment on this machine: `lorafed keygen` for the
# broker, the server and 4 clients; a `lorafed broker` that lets in only
# those keys; a `lorafed server` and 4 `lorafed client` processes, each with
# its own key. Logs and the run's output go to runs/deploy.
#
#   examples/deploy/run-local.sh [path/to/lorafed]
set -euo pipefail
cd "$(dirname "$0")/../.."
LORAFED=${1:-build/release/bin/lorafed}
CONFIG=examples/deploy/federation.toml
WORK=runs/deploy
CLIENTS=4

rm -rf "$WORK" && mkdir -p "$WORK/keys/allowed"
cd "$WORK"
LORAFED=$(cd - >/dev/null && realpath "$LORAFED")
CONFIG=$(cd - >/dev/null && realpath "$CONFIG")

# Keys: every process gets its own pair; the broker lets in the clients'
# public keys on the clients' endpoint and only the server's on its own.
"$LORAFED" keygen keys/broker >/dev/null
"$LORAFED" keygen keys/server >/dev/null
for k in $(seq 0 $((CLIENTS - 1))); do
  "$LORAFED" keygen "keys/client-$k" >/dev/null
  cp "keys/client-$k.pub" keys/allowed/
done

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT

key() { echo "--set" "transport.curve_secret_key=\"keys/$1.key\""; }

"$LORAFED" broker "$CONFIG" $(key broker) --set 'transport.curve_allowed_keys="keys/allowed"' \
  --set 'transport.curve_allowed_server_key="keys/server.pub"' >broker.log 2>&1 &
pids+=($!)
"$LORAFED" server "$CONFIG" $(key server) --out . >server.log 2>&1 &
server=$!
for k in $(seq 0 $((CLIENTS - 1))); do
  "$LORAFED" client "$CONFIG" --id "$k" $(key "client-$k") >"client-$k.log" 2>&1 &
  pids+=($!)
done

echo "broker, server and $CLIENTS clients started; logs in $WORK"
if wait "$server"; then
  tail -n 1 server.log
  echo "encrypted and authenticated: $(grep -c 'registered' broker.log) registrations at the broker"
else
  echo "the server failed; see $WORK/server.log" >&2
  exit 1
fi
