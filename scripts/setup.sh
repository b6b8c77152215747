#!/usr/bin/env bash
# Installs what Crane needs and is missing, builds it and puts `crane` / `craneadm` on PATH.
# Safe to repeat. With --test it also installs and starts the Docker engine and builds the test
# images. System packages come from Debian (apt-get), so this needs root (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

say() { printf 'setup: %s\n' "$*" >&2; }
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "need root to run: $*"; exit 1
  fi
}

missing=()
command -v nats-server >/dev/null || missing+=(nats-server)
if (( want_test )); then
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  [[ -x /bin/busybox ]] || missing+=(busybox-static)
fi
if (( ${#missing[@]} )); then
  say "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if (( want_test )) && ! docker info >/dev/null 2>&1; then
  say "starting dockerd"
  as_root bash -c 'nohup dockerd >/var/log/crane-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { say "dockerd did not start: see /var/log/crane-dockerd.log"; exit 1; }
fi

if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "installing npm dependencies"
  # npm install, not npm ci: the registry here does not serve rust-just's other-platform
  # packages, so the lock file cannot list them and npm ci refuses it as out of sync.
  npm install --no-audit --no-fund --loglevel=error
fi

npx tsc -p . >&2
chmod +x dist/cli/crane.js dist/cli/craneadm.js dist/cli/crane-admind.js

# Put the CLIs on PATH (a link to this checkout) unless they already point here.
if [[ "$(readlink -f "$(command -v crane 2>/dev/null || true)")" != "$(readlink -f dist/cli/crane.js)" ]]; then
  say "linking crane and craneadm onto PATH"
  npm link --no-audit --no-fund --loglevel=error >/dev/null
fi

if (( want_test )); then
  bash images/build.sh
fi
