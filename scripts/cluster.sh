#!/usr/bin/env bash
# A local cluster in one command, on loopback: PostgreSQL (the shared call records), two
# frontline gateways (gw-1, gw-2) writing into it, and Kamailio in front spreading calls over
# them (deploy/kamailio/kamailio.cfg). Installs what is missing (Debian's kamailio and
# postgresql, the models, the release build) first. Ctrl-C stops everything it started.
#
# Usage: scripts/cluster.sh [GATEWAYS]   (default 2)
# Then call sip:ivr@127.0.0.1:5060 (e.g. baresip -e "/dial sip:ivr@127.0.0.1:5060"), watch
# with `grpcurl -plaintext -H "authorization: Bearer $FRONTLINE_OPS_TOKEN" -d '{"scope":"cluster"}'
# 127.0.0.1:50061 frontline.ops.v1.Ops/ListCalls`, read records with
# `target/release/frontline calls list --records postgres://postgres@127.0.0.1:5433/postgres`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
gateways="${1:-2}"
run="$root/var/cluster"
pg_port=5433
proxy="127.0.0.1:5060"
log() { echo "cluster: $*"; }

scripts/setup.sh --gateway-only --cluster
scripts/build.sh
mkdir -p "$run"

pids=()
pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
pgdata="$run/pg"
as_postgres() { if [[ "$(id -u)" -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
stop_all() {
  log "stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  as_postgres "$pg_bin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# PostgreSQL, owned by the postgres user (it refuses to run as root), trust on loopback only.
if [[ ! -f "$pgdata/PG_VERSION" ]]; then
  log "creating a PostgreSQL cluster in $pgdata"
  mkdir -p "$pgdata"
  [[ "$(id -u)" -eq 0 ]] && chown postgres:postgres "$run" "$pgdata"
  as_postgres "$pg_bin/initdb" -D "$pgdata" -A trust -U postgres -E UTF8 --locale=C >/dev/null
fi
log "starting PostgreSQL on 127.0.0.1:$pg_port"
as_postgres "$pg_bin/pg_ctl" -D "$pgdata" -l "$run/postgresql.log" -w \
  -o "-p $pg_port -k $run -c listen_addresses=127.0.0.1" start >/dev/null
records="postgres://postgres@127.0.0.1:$pg_port/postgres"

# The gateways: behind the proxy every call comes from one address, so the per-source limits
# are the gateway's own, and only the proxy (loopback) may send calls.
export FRONTLINE_OPS_TOKEN="${FRONTLINE_OPS_TOKEN:-cluster-ops-token}"
cat > "$run/gateway.toml" <<EOF
[sip]
max_calls_per_source = 16
max_attempts_per_second = 50.0
trusted_sources = ["127.0.0.1"]

[records]
url = "$records"
EOF
: > "$run/dispatcher.list"
for i in $(seq 1 "$gateways"); do
  sip=$((5068 + 2 * i)) http=$((8080 + i)) ops=$((50060 + i)) rtp=$((20000 + 1000 * i))
  log "starting gw-$i: SIP 127.0.0.1:$sip, console http://127.0.0.1:$http, Ops 127.0.0.1:$ops (log: $run/gw-$i.log)"
  target/release/frontline serve --config "$run/gateway.toml" --node "gw-$i" --sip-port "$sip" \
    --rtp-ports "$rtp-$((rtp + 999))" --http-port "$http" --ops-port "$ops" --brain-port 0 > "$run/gw-$i.log" 2>&1 &
  pids+=($!)
  echo "1 sip:127.0.0.1:$sip 0 0 node=gw-$i" >> "$run/dispatcher.list"
done
for i in $(seq 1 "$gateways"); do
  until grep -q 'frontline: ready ' "$run/gw-$i.log" 2>/dev/null; do
    kill -0 "${pids[$((i - 1))]}" 2>/dev/null || { log "gw-$i exited:"; tail -n 20 "$run/gw-$i.log"; exit 1; }
    sleep 0.5
  done
  log "gw-$i ready"
done

modules="$(ls -d /usr/lib/*/kamailio/modules | head -n1)/"
sed -e "s#@LISTEN@#$proxy#" -e "s#@DISPATCHER_LIST@#$run/dispatcher.list#" -e "s#@MODULES@#$modules#" \
  deploy/kamailio/kamailio.cfg > "$run/kamailio.cfg"
mkdir -p "$run/kamailio"
log "starting Kamailio on $proxy (log: $run/kamailio.log)"
kamailio -f "$run/kamailio.cfg" -DD -E -Y "$run/kamailio" > "$run/kamailio.log" 2>&1 &
pids+=($!)

log "ready: call sip:ivr@$proxy; Ops token \$FRONTLINE_OPS_TOKEN=$FRONTLINE_OPS_TOKEN; records $records; Ctrl-C stops"
wait -n "${pids[@]}" || true
log "a process exited; see $run/*.log"
