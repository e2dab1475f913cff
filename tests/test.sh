#!/usr/bin/env bash
# The whole test suite, from a fresh machine: a Docker engine, the test-bed images,
# then every unit and integration test. Quick when the engine runs and the images exist.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tests/testbed/engine.sh
bash tests/testbed/build.sh
# The test-bed broker keeps Kafka's promises: exact offsets, data across a restart.
bash tests/testbed/conformance.sh

# A C toolchain: the rdkafka crate compiles its own librdkafka.
if ! command -v cc >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
    echo "test.sh: installing build-essential with apt-get (rdkafka builds librdkafka)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends build-essential >&2
fi

# The openssl command: the external tests make a CA and a server certificate with it.
if ! command -v openssl >/dev/null 2>&1; then
    echo "test.sh: installing openssl with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends openssl >&2
fi

# A real browser for the dashboard tests (tests/integration/dashboard.rs).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    echo "test.sh: installing chromium and chromium-driver with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
fi

# A current ClickHouse, in-process, for the SQL dialect check (tests/dialect/).
CHDB_VERSION=4.4.0
CHDB_VENV=${FINDEMO_TESTBED_CACHE:-/var/cache/findemo-testbed}/chdb-venv
if ! "$CHDB_VENV/bin/python" -c "import chdb, sys; sys.exit(chdb.__version__ != '$CHDB_VERSION')" 2>/dev/null; then
    echo "test.sh: installing chdb $CHDB_VERSION into $CHDB_VENV" >&2
    rm -rf "$CHDB_VENV"
    python3 -m venv "$CHDB_VENV"
    "$CHDB_VENV/bin/pip" install -q "chdb==$CHDB_VERSION"
fi
export FINDEMO_CHDB_PYTHON="$CHDB_VENV/bin/python"

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "test.sh: cargo-nextest is missing; installing it" >&2
    cargo install cargo-nextest --locked
fi
# One test at a time: each starts a whole stack, and they share two cores. A test that
# fails is run up to three more times and reported as flaky if it then passes, so a
# flaky test shows in the summary instead of hiding.
cargo nextest run --no-fail-fast --test-threads 1 --retries 3 "$@"
