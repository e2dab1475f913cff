#!/usr/bin/env bash
# findemo test bed: runs tansu with the apache/kafka image's KRaft environment.
#
# Read (generically): KAFKA_LISTENERS, KAFKA_ADVERTISED_LISTENERS,
# KAFKA_INTER_BROKER_LISTENER_NAME (default PLAINTEXT), KAFKA_CONTROLLER_LISTENER_NAMES
# (default CONTROLLER), CLUSTER_ID. tansu advertises a single listener, so it serves the
# inter-broker listener (advertised as that listener's KAFKA_ADVERTISED_LISTENERS entry)
# and every other non-controller listener port is forwarded to it with socat.
# Other KAFKA_* settings (node id, roles, quorum voters, log dirs, heap, replication
# factors) have no tansu equivalent and are accepted and ignored.
# TANSU_STORAGE_ENGINE overrides the storage (default memory://tansu/).
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
storage=${TANSU_STORAGE_ENGINE:-memory://tansu/}

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
    bind=${host[$name]}
    opts="TCP-LISTEN:$p,fork,reuseaddr"
    [ -n "$bind" ] && [ "$bind" != 0.0.0.0 ] && opts="$opts,bind=$bind"
    log "listener $name: port $p forwarded to $inter (127.0.0.1:$main_port)"
    socat "$opts" "TCP:127.0.0.1:$main_port" &
done

args=(broker
    --listener-url "tcp://$main_host:$main_port"
    --advertised-listener-url "tcp://$main_adv"
    --storage-engine "$storage")
[ -n "${CLUSTER_ID:-}" ] && args+=("--cluster-id=$CLUSTER_ID")

log "$(tansu --version 2>/dev/null | head -n 1): listener $inter on $main_host:$main_port, advertised as $main_adv, storage $storage"
# exec: tansu is PID 1 and stops on SIGTERM/SIGINT (socat children die with the container).
exec tansu "${args[@]}"
