# Crane: `just --list` shows every recipe.
set shell := ["bash", "-euo", "pipefail", "-c"]

export CRANE_LOG_LEVEL := env_var_or_default("CRANE_LOG_LEVEL", "silent")

ava := "node_modules/.bin/ava"

# Compile TypeScript to dist/
build:
    npx tsc -p .
    chmod +x dist/cli/crane.js dist/cli/craneadm.js dist/cli/crane-admind.js

# Pure logic: parsers, state machine, scheduling
unittest: build
    just _ava 'dist/tests/unit/**/*.test.js'

# One component at a time on a real nats-server
comptest: build
    just _ava 'dist/tests/comp/**/*.test.js'

# Runtimes and components on the real Docker engine (needs `just image`)
inttest: build image
    just _ava 'dist/tests/int/**/*.test.js'

# The crane / craneadm binaries against running clusters, as a user
e2etest: build image
    just _ava 'dist/tests/e2e/**/*.test.js'

# Every test
alltest: build image
    just _ava 'dist/tests/**/*.test.js'

# Build the images the tests need (no registry: built locally)
image:
    bash images/build.sh

# Start a standalone cluster with 4 declared GPUs in the background
standalone gpus="4":
    node dist/cli/craneadm.js standalone --detach --gpus {{gpus}}

# Start a pseudocluster (separate processes) with NODES node managers of GPUS GPUs each
pseudocluster nodes="3" gpus="2":
    node dist/cli/craneadm.js pseudocluster --detach --nodes {{nodes}} --gpus-per-node {{gpus}}

# Start Crane containers (host1..host3) running a checkout: [--dev-crane-path DIR] [--files hosts.yml]
[no-exit-message]
compose-up *ARGS: build
    node dist/tests/helpers/dcompose-cli.js up {{ARGS}}

# Stop and remove what compose-up started
[no-exit-message]
compose-down PROJECT:
    node dist/tests/helpers/dcompose-cli.js down {{PROJECT}}

# Run one compose test script: SCRIPT (e.g. tests/int/composetest_cluster.js) [--dev-crane-path DIR]
[no-exit-message]
compose-test SCRIPT *ARGS: build image
    node dist/tests/helpers/dcompose-cli.js test {{SCRIPT}} {{ARGS}}

# A shell (or a command) in a throwaway Crane container running a checkout: [--dev-crane-path DIR] [CMD...]
[no-exit-message]
crane-shell *ARGS: build
    node dist/tests/helpers/dcompose-cli.js shell {{ARGS}}

# Print the benchmark figures
bench: build
    CRANE_LOG_LEVEL=silent node dist/bench/run-all.js

# Run ava on a glob and end with a plain `N passed, N failed` line
_ava glob:
    #!/usr/bin/env bash
    set -uo pipefail
    out=$(mktemp)
    {{ava}} '{{glob}}' 2>&1 | tee "$out"
    code=${PIPESTATUS[0]}
    # ava prints no passed count when a test fails: count the ticks instead.
    passed=$(grep -cE '^ +✔' "$out" || true)
    failed=$(grep -Eo '([0-9]+) tests? failed' "$out" | grep -Eo '^[0-9]+' | tail -1)
    [[ -z "$failed" && $code -ne 0 ]] && failed=1
    echo "ava: ${passed:-0} passed, ${failed:-0} failed"
    rm -f "$out"
    exit $code
