#!/usr/bin/env bash
# findemo test bed: entrypoint honouring the official postgres image's contract.
#   POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust),
#   POSTGRES_USER (default postgres), POSTGRES_DB (default = user), *_FILE variants,
#   POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD (default scram-sha-256),
#   /docker-entrypoint-initdb.d/*.sql|*.sh at first start.
# PGDATA=/var/lib/postgresql/15/docker (the volume is mounted at /var/lib/postgresql,
# the PostgreSQL 18 image layout). Arguments starting with '-' get 'postgres'
# prepended; 'postgres ARGS' runs the server; anything else is exec'd as is.
set -Eeuo pipefail

log() { echo "testbed-postgres: $*" >&2; }

# file_env VAR [DEFAULT]: VAR from VAR or from the file named by VAR_FILE.
file_env() {
    local var=$1 def=${2:-} fvar="${1}_FILE" val
    if [ -n "${!var:-}" ] && [ -n "${!fvar:-}" ]; then
        log "error: both $var and $fvar are set (they are exclusive)"
        exit 1
    fi
    val=$def
    if [ -n "${!var:-}" ]; then
        val=${!var}
    elif [ -n "${!fvar:-}" ]; then
        val=$(<"${!fvar}")
    fi
    export "$var=$val"
    unset "$fvar"
}

if [ "$#" -eq 0 ] || [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
    exec "$@"
fi

export PGDATA=${PGDATA:-/var/lib/postgresql/15/docker}
runas=()
if [ "$(id -u)" = 0 ]; then
    runas=(setpriv --reuid=postgres --regid=postgres --init-groups --)
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres /var/lib/postgresql "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 3777 /var/run/postgresql
else
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA" 2>/dev/null || true
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != trust ]; then
        cat >&2 <<'MSG'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
       (Or POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a
       password; not recommended.)
MSG
        exit 1
    fi

    log "initialising $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
    pwargs=()
    if [ -n "$POSTGRES_PASSWORD" ]; then
        pwfile=$(mktemp)
        printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
        [ "$(id -u)" = 0 ] && chown postgres "$pwfile"
        pwargs=(--pwfile="$pwfile")
    fi
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a word list, like upstream
    "${runas[@]}" initdb --username="$POSTGRES_USER" "${pwargs[@]}" \
        --auth-local=trust --auth-host="$auth" --encoding=UTF8 --locale=C.UTF-8 --no-sync \
        $POSTGRES_INITDB_ARGS >&2
    [ -n "${pwfile:-}" ] && rm -f "$pwfile"

    printf "\n# findemo test bed\nlisten_addresses = '*'\npassword_encryption = scram-sha-256\njit = off\n" \
        >>"$PGDATA/postgresql.conf"
    printf '\n# findemo test bed: any host, incl. replication\nhost all all all %s\nhost replication all all %s\n' \
        "$auth" "$auth" >>"$PGDATA/pg_hba.conf"

    # Temporary server on the socket only, so no TCP client sees it half-ready.
    "${runas[@]}" pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start >&2
    psql=("${runas[@]}" psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --no-password)
    if [ "$POSTGRES_DB" != postgres ]; then
        "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" >&2 <<<'CREATE DATABASE :"db";'
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        [ -e "$f" ] || continue
        case "$f" in
            *.sh) log "running $f"; "${runas[@]}" env POSTGRES_USER="$POSTGRES_USER" POSTGRES_DB="$POSTGRES_DB" bash "$f" >&2 ;;
            *.sql) log "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" >&2 ;;
            *) log "ignoring $f" ;;
        esac
    done
    "${runas[@]}" pg_ctl -D "$PGDATA" -m fast -w stop >&2
    unset POSTGRES_PASSWORD
    log "init done; starting the server"
fi

# exec: the server is PID 1 and gets SIGINT/SIGTERM directly.
exec "${runas[@]}" "$@"
