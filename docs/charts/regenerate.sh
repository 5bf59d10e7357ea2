#!/usr/bin/env bash
# Measures again, then redraws the charts of docs/performance.md and writes their table
# into it: the load harness as an operator runs the relay (a process of its own) at each
# connection count, and the cluster test's broker cut. A few minutes; needs RabbitMQ on
# 127.0.0.1:5672 and rabbitmq-server installed (the cluster test starts nodes of its own).
#
#   docs/charts/regenerate.sh                      # 1 4 16 64 256 connections, 5 s runs
#   CONNECTIONS="16 64" LOAD_SECONDS=10 docs/charts/regenerate.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
data=docs/charts/data
mkdir -p "$data"
cargo build --release --all-features --bin powens-relay --example load --example charts
for n in ${CONNECTIONS:-1 4 16 64 256}; do
    echo "load: $n connections" >&2
    target/release/examples/load --separate-process --connections "$n" \
        --seconds "${LOAD_SECONDS:-5}" --rounds 1 --json >"$data/load-$n.json"
done
echo "cluster: the relay's node killed under load" >&2
POWENS_CLUSTER_TIMELINE="$PWD/$data/cluster-timeline.json" \
    cargo test --release --all-features --test cluster -- --nocapture
target/release/examples/charts
