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

data_root=${FINDEMO_DOCKERD_DATA_ROOT:-/var/lib/docker}
state=${FINDEMO_DOCKERD_EXEC_ROOT:-/run/findemo-dockerd}
log=${FINDEMO_DOCKERD_LOG:-/var/log/findemo-dockerd.log}
pidfile=${FINDEMO_DOCKERD_PIDFILE:-/run/findemo-dockerd.pid}
mkdir -p "$(dirname "$sock")" "$(dirname "$log")" "$(dirname "$pidfile")"

# a running dockerd (started by anyone): never start a second one on the same data root.
running_dockerd() {
    local d
    for d in /proc/[0-9]*; do
        [ "$(cat "$d/comm" 2>/dev/null)" = dockerd ] && { echo "${d#/proc/}"; return 0; }
    done
    return 1
}

running_pid=""
if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    running_pid=$(cat "$pidfile")
elif running_pid=$(running_dockerd); then
    :
fi
if [ -n "$running_pid" ]; then
    echo "engine.sh: dockerd (pid $running_pid) is running but not answering on $sock yet; waiting" >&2
    started=0
else
    [ "$(id -u)" = 0 ] || die "dockerd is not running and I am not root, so I cannot start it"
    echo "engine.sh: starting dockerd (socket $sock, log $log)" >&2
    # setsid + nohup: the daemon outlives this script and its terminal.
    setsid nohup dockerd \
        --data-root "$data_root" \
        --exec-root "$state" \
        -H "unix://$sock" \
        --pidfile "$pidfile" \
        >>"$log" 2>&1 </dev/null &
    running_pid=$!
    started=1
fi

timeout=${FINDEMO_ENGINE_TIMEOUT:-30}
deadline=$((SECONDS + timeout))
export DOCKER_HOST="unix://$sock"
show_log() {
    if [ "$started" = 1 ]; then
        echo "engine.sh: last lines of $log:" >&2
        tail -n 25 "$log" >&2 || true
    else
        echo "engine.sh: that dockerd was not started by engine.sh; if it serves another socket, set DOCKER_HOST=unix://THAT_SOCKET" >&2
    fi
}
while ! docker version >/dev/null 2>&1; do
    if ! kill -0 "$running_pid" 2>/dev/null; then
        show_log
        die "dockerd (pid $running_pid) exited"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        show_log
        die "dockerd (pid $running_pid) did not answer on $sock within ${timeout}s"
    fi
    sleep 0.2
done
echo "engine.sh: Docker engine ready ($(docker version -f '{{.Server.Version}}' 2>/dev/null), socket $sock)" >&2
