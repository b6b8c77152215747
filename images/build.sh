#!/usr/bin/env bash
# Builds Crane's local Docker images without any registry. Idempotent: an image that exists is
# kept unless --force. Usage: images/build.sh [--force]
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

# The Crane image (Node + the built dist/) for running Crane's own components in containers.
# Not built yet: it will be added with the components that need it.
build_crane_image() {
  :
}

build_busybox_image
build_crane_image
