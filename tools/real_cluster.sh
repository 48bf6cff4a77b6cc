#!/usr/bin/env bash
# Start (or stop) a real redis-server cluster of 3 primaries + 3 replicas on 127.0.0.1, for
# benchmarks: `tools/real_cluster.sh start [BASE]` (default 7400: nodes on BASE..BASE+5),
# `tools/real_cluster.sh stop [BASE]`.
# With TLS_DIR=dir (holding ca.pem, node.pem, node.key) the nodes serve TLS only
# (`--port 0 --tls-port`, `--tls-cluster yes`, `--tls-replication yes`, clients not asked
# for certificates).
set -euo pipefail
cmd=${1:-start}
base=${2:-7400}
dir=${TMPDIR:-/tmp}/redcluster-real-$base
ports=$(seq "$base" $((base + 5)))
cli=(redis-cli)
if [[ -n "${TLS_DIR:-}" ]]; then
  cli+=(--tls --cacert "$TLS_DIR/ca.pem")
fi
case "$cmd" in
start)
  mkdir -p "$dir"
  for p in $ports; do
    mkdir -p "$dir/$p"
    listen=(--port "$p")
    if [[ -n "${TLS_DIR:-}" ]]; then
      listen=(--port 0 --tls-port "$p" --tls-cert-file "$TLS_DIR/node.pem"
        --tls-key-file "$TLS_DIR/node.key" --tls-ca-cert-file "$TLS_DIR/ca.pem"
        --tls-cluster yes --tls-replication yes --tls-auth-clients no)
    fi
    (cd "$dir/$p" && redis-server "${listen[@]}" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file nodes.conf --appendonly no --save '' --daemonize yes \
      --logfile redis.log)
  done
  for p in $ports; do
    until "${cli[@]}" -p "$p" ping >/dev/null 2>&1; do sleep 0.1; done
  done
  addrs=$(for p in $ports; do printf '127.0.0.1:%s ' "$p"; done)
  # shellcheck disable=SC2086
  "${cli[@]}" --cluster create $addrs --cluster-replicas 1 --cluster-yes >/dev/null
  until "${cli[@]}" -p "$base" cluster info | grep -q 'cluster_state:ok'; do sleep 0.1; done
  echo "real cluster up on 127.0.0.1:$base..$((base + 5))"
  ;;
stop)
  for p in $ports; do "${cli[@]}" -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$dir"
  ;;
*) echo "usage: $0 start|stop [BASE]" >&2; exit 2 ;;
esac
