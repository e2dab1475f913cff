#!/usr/bin/env bash
# findemo test bed: runs tansu with the apache/kafka image's KRaft environment.
#
# Read (generically): KAFKA_LISTENERS, KAFKA_ADVERTISED_LISTENERS,
# KAFKA_INTER_BROKER_LISTENER_NAME (default PLAINTEXT), KAFKA_CONTROLLER_LISTENER_NAMES
# (default CONTROLLER), CLUSTER_ID, KAFKA_LOG_DIRS. tansu advertises a single listener, so
# it serves the inter-broker listener (advertised as that listener's
# KAFKA_ADVERTISED_LISTENERS entry) and every other non-controller listener is served by
# `tansu proxy`, which rewrites metadata answers to that listener's own advertised
# address (as apache/kafka's PLAINTEXT_HOST listener does), so host clients are handed
# an address they can reach.
# Storage: tansu's SQLite engine in KAFKA_LOG_DIRS (default /var/lib/kafka/data), so
# topics, records and group offsets survive a restart and offsets are exact.
# TANSU_STORAGE_ENGINE overrides it (memory://tansu/: faster, but see README.md).
# Other KAFKA_* settings (node id, roles, quorum voters, heap, replication factors)
# have no tansu equivalent and are accepted and ignored.
# With arguments, they are exec'd instead.
set -euo pipefail

log() { echo "testbed-kafka: $*" >&2; }
die() { log "error: $*"; exit 1; }

if [ "$#" -gt 0 ]; then
    exec "$@"
fi

listeners=${KAFKA_LISTENERS:-PLAINTEXT://:9092}
advertised=${KAFKA_ADVERTISED_LISTENERS:-}
inter=${KAFKA_INTER_BROKER_LISTENER_NAME:-PLAINTEXT}
controllers=",${KAFKA_CONTROLLER_LISTENER_NAMES:-CONTROLLER},"
storage=${TANSU_STORAGE_ENGINE:-sqlite://tansu.db}
data=${KAFKA_LOG_DIRS:-/var/lib/kafka/data}
data=${data%%,*}
mkdir -p "$data"
# tansu resolves a sqlite:// path against its working directory.
cd "$data"

declare -A host=() port=() adv=()
names=()

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; s=${s%"${s##*[![:space:]]}"}; printf '%s' "$s"; }

IFS=, read -r -a items <<<"$listeners"
for item in "${items[@]}"; do
    item=$(trim "$item")
    [ -n "$item" ] || continue
    case "$item" in *://*:*) ;; *) die "cannot parse listener '$item' in KAFKA_LISTENERS" ;; esac
    name=${item%%://*}
    hp=${item#*://}
    h=${hp%:*}
    p=${hp##*:}
    case "$p" in '' | *[!0-9]*) die "bad port in listener '$item'" ;; esac
    host[$name]=$h
    port[$name]=$p
    names+=("$name")
done

if [ -n "$advertised" ]; then
    IFS=, read -r -a items <<<"$advertised"
    for item in "${items[@]}"; do
        item=$(trim "$item")
        [ -n "$item" ] || continue
        adv[${item%%://*}]=${item#*://}
    done
fi

[ -n "${port[$inter]:-}" ] || die "inter-broker listener '$inter' is not in KAFKA_LISTENERS=$listeners"
main_port=${port[$inter]}
main_host=${host[$inter]:-0.0.0.0}
main_adv=${adv[$inter]:-$(hostname):$main_port}
case "$main_adv" in :*) main_adv="$(hostname)$main_adv" ;; esac

for name in "${names[@]}"; do
    [ "$name" = "$inter" ] && continue
    case "$controllers" in *",$name,"*) continue ;; esac
    p=${port[$name]}
    bind=${host[$name]:-0.0.0.0}
    a=${adv[$name]:-$(hostname):$p}
    case "$a" in :*) a="$(hostname)$a" ;; esac
    log "listener $name: tansu proxy on $bind:$p, advertised as $a, to $inter (127.0.0.1:$main_port)"
    tansu proxy --listener-url "tcp://$bind:$p" --advertised-listener-url "tcp://$a" \
        --origin-url "tcp://127.0.0.1:$main_port" &
done

args=(broker
    --listener-url "tcp://$main_host:$main_port"
    --advertised-listener-url "tcp://$main_adv"
    --storage-engine "$storage")
[ -n "${CLUSTER_ID:-}" ] && args+=("--cluster-id=$CLUSTER_ID")

log "$(tansu --version 2>/dev/null | head -n 1): listener $inter on $main_host:$main_port, advertised as $main_adv, storage $storage"
# exec: tansu is PID 1 and stops on SIGTERM/SIGINT (the proxies die with the container).
exec tansu "${args[@]}"
