#!/usr/bin/env bash
# Make sure a Docker engine is installed and answering (idempotent).
#
# - Already answering `docker version`: returns at once.
# - `dockerd` missing: installs Debian's engine with apt-get.
# - Not running: starts `dockerd` in the background (no systemd) and waits
#   up to FINDEMO_ENGINE_TIMEOUT seconds (default 30) for it to answer.
#
# The socket is the one DOCKER_HOST names (unix://PATH), else /var/run/docker.sock.
set -euo pipefail

die() { echo "engine.sh: error: $*" >&2; exit 1; }

if command -v docker >/dev/null 2>&1 && docker version >/dev/null 2>&1; then
    exit 0
fi

case "${DOCKER_HOST:-}" in
    "") sock=/var/run/docker.sock ;;
    unix://*) sock=${DOCKER_HOST#unix://} ;;
    *) die "DOCKER_HOST=$DOCKER_HOST does not answer and is not a local unix socket I can start" ;;
esac

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "Docker is not installed and I am not root (need apt-get install docker.io)"
    echo "engine.sh: installing Docker engine (docker.io) with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends docker.io containerd runc iptables debootstrap >&2 \
        || die "apt-get install docker.io failed"
fi

state=/run/findemo-dockerd
mkdir -p "$state" "$(dirname "$sock")"
log=/var/log/findemo-dockerd.log
pidfile=/run/findemo-dockerd.pid

running_pid=""
if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    running_pid=$(cat "$pidfile")
    echo "engine.sh: dockerd (pid $running_pid) is running but not answering yet; waiting" >&2
else
    [ "$(id -u)" = 0 ] || die "dockerd is not running and I am not root, so I cannot start it"
    echo "engine.sh: starting dockerd (socket $sock, log $log)" >&2
    # setsid + nohup: the daemon outlives this script and its terminal.
    setsid nohup dockerd \
        --data-root /var/lib/docker \
        --exec-root "$state" \
        -H "unix://$sock" \
        --pidfile "$pidfile" \
        >>"$log" 2>&1 </dev/null &
    running_pid=$!
fi

timeout=${FINDEMO_ENGINE_TIMEOUT:-30}
deadline=$((SECONDS + timeout))
export DOCKER_HOST="unix://$sock"
while ! docker version >/dev/null 2>&1; do
    if ! kill -0 "$running_pid" 2>/dev/null; then
        echo "engine.sh: dockerd exited; last lines of $log:" >&2
        tail -n 25 "$log" >&2 || true
        die "dockerd failed to start"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "engine.sh: dockerd did not answer within ${timeout}s; last lines of $log:" >&2
        tail -n 25 "$log" >&2 || true
        die "dockerd not ready"
    fi
    sleep 0.2
done
echo "engine.sh: Docker engine ready ($(docker version -f '{{.Server.Version}}' 2>/dev/null), socket $sock)" >&2
