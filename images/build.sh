#!/usr/bin/env bash
# Builds Crane's local Docker images without any registry. Idempotent: an image that exists is
# kept unless --force (crane/crane:dev is also rebuilt when its inputs change). Usage: images/build.sh [--force]
set -euo pipefail

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) echo "usage: $0 [--force]"; exit 0 ;;
    *) echo "unknown argument: $arg (usage: $0 [--force])" >&2; exit 2 ;;
  esac
done

BUSYBOX_IMAGE=crane-test/busybox:latest
BUSYBOX_BIN=${BUSYBOX_BIN:-/bin/busybox}
CRANE_IMAGE=crane/crane:dev

CLEANUP=()
trap 'rm -rf "${CLEANUP[@]}"' EXIT

have_image() {
  docker image inspect "$1" >/dev/null 2>&1
}

# The test image: a static busybox and its applets, imported from a tarball (no base image).
build_busybox_image() {
  if [[ $FORCE == 0 ]] && have_image "$BUSYBOX_IMAGE"; then
    echo "$BUSYBOX_IMAGE: exists (use --force to rebuild)"
    return
  fi
  if [[ ! -x $BUSYBOX_BIN ]]; then
    echo "no $BUSYBOX_BIN: install the Debian package busybox-static (apt-get install busybox-static)" >&2
    exit 1
  fi
  local rootfs
  rootfs=$(mktemp -d)
  CLEANUP+=("$rootfs")
  mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev}
  chmod 1777 "$rootfs/tmp"
  cp "$BUSYBOX_BIN" "$rootfs/bin/busybox"
  local applet
  while read -r applet; do
    [[ -z $applet || -e $rootfs/$applet ]] && continue
    ln -s /bin/busybox "$rootfs/$applet"
  done < <("$BUSYBOX_BIN" --list-full)
  [[ -e $rootfs/bin/sh ]] || ln -s /bin/busybox "$rootfs/bin/sh"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["sh"]' \
    - "$BUSYBOX_IMAGE" >/dev/null
  echo "$BUSYBOX_IMAGE: built"
}

# The Crane image crane/crane:dev, no base image: the host's node and nats-server binaries with
# the shared libraries they load, busybox applets for a shell, and the project at /opt/crane
# (package.json, dist/, production node_modules/). Compose tests mount a checkout over
# /opt/crane (CRANE_DEV_PATH), so a code change needs no rebuild; the image is rebuilt when its
# inputs change: node, nats-server, package-lock.json or this recipe (label crane.image.inputs).
build_crane_image() {
  local root node nats inputs have
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  node=$(readlink -f "$(command -v node)")
  nats=$(command -v nats-server || true)
  if [[ -z $nats ]]; then
    echo "no nats-server on PATH: install the Debian package nats-server" >&2
    exit 1
  fi
  nats=$(readlink -f "$nats")
  inputs=$({
    echo "node $("$node" --version)"
    echo "nats $("$nats" --version)"
    sha256sum <"$root/package-lock.json"
    declare -f build_crane_image
  } | sha256sum | cut -c1-16)
  have=$(docker image inspect -f '{{index .Config.Labels "crane.image.inputs"}}' "$CRANE_IMAGE" 2>/dev/null || true)
  if [[ $FORCE == 0 && $have == "$inputs" ]]; then
    echo "$CRANE_IMAGE: up to date (inputs $inputs; use --force to rebuild)"
    return
  fi
  if [[ ! -x $BUSYBOX_BIN ]]; then
    echo "no $BUSYBOX_BIN: install the Debian package busybox-static (apt-get install busybox-static)" >&2
    exit 1
  fi
  if [[ ! -d $root/dist/cli ]]; then
    (cd "$root" && npx tsc -p . && chmod +x dist/cli/*.js)
  fi
  local rootfs
  rootfs=$(mktemp -d)
  CLEANUP+=("$rootfs")
  mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,tmp,root,proc,sys,dev,opt/crane}
  chmod 1777 "$rootfs/tmp"
  # Binaries and every library ldd lists (absolute paths, the loader included), at the same paths.
  cp "$node" "$rootfs/usr/local/bin/node"
  cp "$nats" "$rootfs/usr/local/bin/nats-server"
  local lib
  while read -r lib; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done < <(ldd "$node" "$nats" | grep -oE '/[^ ]+\.so[^ ]*' | sort -u)
  # busybox applets, without overwriting node or nats-server.
  cp "$BUSYBOX_BIN" "$rootfs/bin/busybox"
  local applet
  while read -r applet; do
    [[ -z $applet || -e $rootfs/$applet ]] && continue
    ln -s /bin/busybox "$rootfs/$applet"
  done < <("$BUSYBOX_BIN" --list-full)
  [[ -e $rootfs/bin/sh ]] || ln -s /bin/busybox "$rootfs/bin/sh"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  # The project: package.json, dist/ and the production packages only (npm ls lists them).
  cp "$root/package.json" "$root/package-lock.json" "$rootfs/opt/crane/"
  cp -r "$root/dist" "$rootfs/opt/crane/dist"
  local pkg
  while read -r pkg; do
    [[ $pkg == "$root" || $pkg != "$root"/node_modules/* ]] && continue
    # Each package without its own node_modules/: nested packages are listed on their own.
    mkdir -p "$rootfs/opt/crane/${pkg#"$root"/}"
    find "$pkg" -mindepth 1 -maxdepth 1 ! -name node_modules -exec cp -r -t "$rootfs/opt/crane/${pkg#"$root"/}" {} +
  done < <(cd "$root" && npm ls --omit=dev --all --parseable 2>/dev/null)
  local name
  for name in crane craneadm crane-admind; do
    printf '#!/bin/sh\nexec node /opt/crane/dist/cli/%s.js "$@"\n' "$name" >"$rootfs/usr/local/bin/$name"
    chmod 755 "$rootfs/usr/local/bin/$name"
  done
  local old
  old=$(docker image inspect -f '{{.Id}}' "$CRANE_IMAGE" 2>/dev/null || true)
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'WORKDIR /opt/crane' \
    --change "LABEL crane.image.inputs=$inputs" \
    --change 'CMD ["sh"]' \
    - "$CRANE_IMAGE" >/dev/null
  # The image it replaces, once untagged (and unless a container still uses it).
  if [[ -n $old && $(docker image inspect -f '{{len .RepoTags}}' "$old" 2>/dev/null) == 0 ]]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
  echo "$CRANE_IMAGE: built (inputs $inputs)"
}

build_busybox_image
build_crane_image
