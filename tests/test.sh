#!/usr/bin/env bash
# The whole test suite, from a fresh machine: a Docker engine, the test-bed images,
# then every unit and integration test. Quick when the engine runs and the images exist.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tests/testbed/engine.sh
bash tests/testbed/build.sh

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
cargo nextest run --no-fail-fast "$@"
