#!/usr/bin/env bash
# findemo test bed: entrypoint honouring clickhouse/clickhouse-server's environment contract
# on ClickHouse 18.16.
#
#   CLICKHOUSE_USER (default "default"), CLICKHOUSE_PASSWORD (or CLICKHOUSE_PASSWORD_FILE):
#     written to users.d/default-user.xml at every start. A user other than "default"
#     may connect from anywhere (::/0) with the default profile and quota; the "default"
#     user is limited to localhost unless it is the configured user with a password.
#   CLICKHOUSE_DB: created (IF NOT EXISTS) before the server serves clients.
#   CLICKHOUSE_SKIP_USER_SETUP=1: leave the users config alone.
#   CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT: accepted; 18.16 has no SQL access management.
#   /docker-entrypoint-initdb.d/*.sql|*.sh: run on a first start, via a temporary
#     server that listens on localhost only.
# No arguments or arguments starting with "--": run the server (as user clickhouse,
# PID 1, foreground, logs on stderr) with them; anything else is exec'd.
set -euo pipefail

log() { echo "testbed-clickhouse: $*" >&2; }

if [ "$#" -gt 0 ] && [ "${1#--}" = "$1" ]; then
    exec "$@"
fi

CONFIG=/etc/clickhouse-server/config.xml
DATA=/var/lib/clickhouse

if [ -z "${CLICKHOUSE_PASSWORD:-}" ] && [ -n "${CLICKHOUSE_PASSWORD_FILE:-}" ]; then
    CLICKHOUSE_PASSWORD=$(<"$CLICKHOUSE_PASSWORD_FILE")
fi
CH_USER=${CLICKHOUSE_USER:-default}
CH_PASSWORD=${CLICKHOUSE_PASSWORD:-}
CH_DB=${CLICKHOUSE_DB:-}

case "$CH_USER" in
    *[!A-Za-z0-9_.-]* | [!A-Za-z_]*) log "error: CLICKHOUSE_USER='$CH_USER' is not a valid XML element name"; exit 1 ;;
esac

runas=()
if [ "$(id -u)" = 0 ]; then
    runas=(setpriv --reuid=clickhouse --regid=clickhouse --init-groups --)
    mkdir -p "$DATA"
    chown clickhouse:clickhouse "$DATA"
fi

# CDATA-quote a password (']]>' split across two sections).
cdata() { local s=${1//]]>/]]]]><![CDATA[>}; printf '<![CDATA[%s]]>' "$s"; }

if [ "${CLICKHOUSE_SKIP_USER_SETUP:-0}" != 1 ]; then
    users_file=/etc/clickhouse-server/users.d/default-user.xml
    {
        echo '<?xml version="1.0"?>'
        echo '<!-- Written by the findemo test-bed entrypoint. -->'
        echo '<yandex>'
        echo '  <users>'
        if [ "$CH_USER" = default ] && [ -n "$CH_PASSWORD" ]; then
            echo '    <default>'
            echo "      <password>$(cdata "$CH_PASSWORD")</password>"
            echo '      <networks replace="replace"><ip>::/0</ip></networks>'
            echo '    </default>'
        else
            echo '    <default>'
            echo '      <networks replace="replace"><ip>::1</ip><ip>127.0.0.1</ip></networks>'
            echo '    </default>'
        fi
        if [ "$CH_USER" != default ]; then
            echo "    <$CH_USER>"
            echo "      <password>$(cdata "$CH_PASSWORD")</password>"
            echo '      <networks><ip>::/0</ip></networks>'
            echo '      <profile>default</profile>'
            echo '      <quota>default</quota>'
            echo "    </$CH_USER>"
        fi
        echo '  </users>'
        echo '</yandex>'
    } >"$users_file"
    [ "$(id -u)" = 0 ] && chown clickhouse:clickhouse "$users_file"
    chmod 600 "$users_file"
fi

server=("${runas[@]}" /usr/sbin/clickhouse-server "--config-file=$CONFIG")

# escape_for_file_name NAME: ClickHouse's escapeForFileName (keeps [A-Za-z0-9_]).
escape_for_file_name() {
    local s=$1 out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case "$c" in
            [A-Za-z0-9_]) out+=$c ;;
            *) out+=$(printf '%s' "$c" | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' | sed 's/\(..\)/%\1/g') ;;
        esac
    done
    printf '%s' "$out"
}

init_scripts=()
for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] && init_scripts+=("$f")
done

if [ -n "$CH_DB" ] && [ "$CH_DB" != default ] && [ "${#init_scripts[@]}" -eq 0 ]; then
    # An Ordinary database on 18.16 is a directory under metadata/ (plus data/):
    # create it before the server starts, so it exists as soon as /ping answers.
    d=$(escape_for_file_name "$CH_DB")
    if [ ! -d "$DATA/metadata/$d" ]; then
        log "creating database $CH_DB"
        "${runas[@]}" mkdir -p "$DATA/metadata/$d" "$DATA/data/$d"
    fi
elif [ "${#init_scripts[@]}" -gt 0 ] && [ ! -e "$DATA/.testbed-initdb-done" ]; then
    log "running init scripts with a temporary server on localhost"
    "${server[@]}" -- --listen_host=127.0.0.1 &
    pid=$!
    client=(clickhouse-client --host 127.0.0.1 --user "$CH_USER" --password "$CH_PASSWORD")
    for _ in $(seq 1 300); do
        "${client[@]}" --query 'SELECT 1' >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || { log "error: temporary server exited"; exit 1; }
        sleep 0.1
    done
    if [ -n "$CH_DB" ]; then
        "${client[@]}" --query "CREATE DATABASE IF NOT EXISTS \`$CH_DB\`"
    fi
    for f in "${init_scripts[@]}"; do
        case "$f" in
            *.sh) log "running $f"; bash "$f" ;;
            *.sql) log "running $f"; "${client[@]}" --database "${CH_DB:-default}" --multiquery <"$f" ;;
            *) log "ignoring $f" ;;
        esac
    done
    kill -TERM "$pid"
    wait "$pid" || true
    "${runas[@]}" touch "$DATA/.testbed-initdb-done"
fi

log "starting ClickHouse $(clickhouse-client --version 2>/dev/null | sed 's/.*version //; s/\.$//') (user $CH_USER)"
# exec: the server is PID 1 in the foreground and stops on SIGTERM.
exec "${server[@]}" "$@"
