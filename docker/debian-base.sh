#!/usr/bin/env bash
# The offline base image, for machines that reach Debian's package mirror but no image registry:
# a Debian bookworm root file system from `debootstrap --variant=minbase`, with this machine's own
# Python 3.12 copied in at /opt/python3.12, imported as an image with `<engine> import`.
#
#   docker/debian-base.sh IMAGE     (as root; ENGINE=podman|docker, PYTHON=/path/to/python3.12)
#
# Kept when it already exists (it is the slow part: ~3-5 min of downloads on a fresh machine);
# REBUILD_BASE=1 builds it again. Why copy the host's Python instead of building one: bookworm has
# no python3.12 package and python.org is not reachable here; a pyenv build only needs Debian's
# shared libraries (installed below, the same bookworm sonames as on the host) and its own
# libpython, found through ld.so.conf.d since its RUNPATH names the host's directory.
set -euo pipefail

IMAGE=${1:?usage: debian-base.sh IMAGE}
ENGINE=${ENGINE:-podman}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
# What the copied Python's extension modules link against (ldd of lib-dynload), plus curl for
# health checks and ca-certificates for pip.
PACKAGES=ca-certificates,curl,libssl3,libffi8,libsqlite3-0,libuuid1,liblzma5,libbz2-1.0,zlib1g,libreadline8,libncursesw6,libexpat1,libtirpc3

if [ "${REBUILD_BASE:-0}" != 1 ] && "$ENGINE" image inspect "$IMAGE" >/dev/null 2>&1; then
	echo "offline base image $IMAGE already built (REBUILD_BASE=1 to build it again)"
	exit 0
fi
PYTHON=${PYTHON:?PYTHON=/path/to/python3.12 is required}
[ "$(id -u)" = 0 ] || { echo "debootstrap needs root: run as root (sudo make ...)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "debootstrap is missing: make tools (as root)" >&2; exit 1; }

PY_HOME=$("$PYTHON" -c 'import sys; print(sys.base_prefix)')
PY_VERSION=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$PY_VERSION" = 3.12 ] || { echo "PYTHON must be a Python 3.12, got $PY_VERSION ($PYTHON)" >&2; exit 1; }

ROOTFS=$(mktemp -d "${TMPDIR:-/var/tmp}/redshift-ingest-rootfs-XXXXXX")
trap 'rm -rf --one-file-system "$ROOTFS"' EXIT

echo "debootstrap $SUITE (minbase) from $MIRROR into $ROOTFS"
timeout "${DEBOOTSTRAP_TIMEOUT:-1200}" debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 \
	|| { tail -n 30 "$ROOTFS.log" >&2; rm -f "$ROOTFS.log"; exit 1; }
rm -f "$ROOTFS.log"

echo "Python $PY_VERSION from $PY_HOME -> /opt/python3.12"
mkdir -p "$ROOTFS/opt/python3.12"
tar -C "$PY_HOME" --exclude='lib/python3.12/test' --exclude='lib/python3.12/idlelib' \
	--exclude='lib/python3.12/tkinter' --exclude='lib/python3.12/site-packages/*' --exclude='__pycache__' \
	-cf - . | tar -C "$ROOTFS/opt/python3.12" -xf -
echo /opt/python3.12/lib >"$ROOTFS/etc/ld.so.conf.d/python3.12.conf"
chroot "$ROOTFS" /sbin/ldconfig
ln -sf python3.12 "$ROOTFS/opt/python3.12/bin/python3"
ln -sf python3.12 "$ROOTFS/opt/python3.12/bin/python"
# pip itself (site-packages was left behind: the host's packages are not the image's business).
chroot "$ROOTFS" /opt/python3.12/bin/python3.12 -m ensurepip --default-pip >/dev/null
# The standard library's bytecode (left behind above with the host's __pycache__): without it every
# Python start in a container compiles what it imports, seconds per health check.
chroot "$ROOTFS" /opt/python3.12/bin/python3.12 -m compileall -q -j 0 -x 'lib2to3/tests/data' /opt/python3.12/lib/python3.12 >/dev/null
chroot "$ROOTFS" /opt/python3.12/bin/python3.12 -c \
	'import ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, hashlib; print("python ok:", ssl.OPENSSL_VERSION)'
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb

echo "importing $ROOTFS as $IMAGE"
tar -C "$ROOTFS" -cf - . | "$ENGINE" import \
	--change 'ENV PATH=/opt/python3.12/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--change 'ENV LANG=C.UTF-8' \
	--change 'CMD ["bash"]' \
	- "$IMAGE"
