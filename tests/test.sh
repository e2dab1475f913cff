#!/usr/bin/env bash
# The whole test suite, from a fresh machine: a Docker engine, the test-bed images,
# then every unit and integration test. Quick when the engine runs and the images exist.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tests/testbed/engine.sh
bash tests/testbed/build.sh

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "test.sh: cargo-nextest is missing; installing it" >&2
    cargo install cargo-nextest --locked
fi
cargo nextest run --no-fail-fast "$@"
