#!/usr/bin/env bash
# Build a minimal Debian base image from Debian packages alone (debootstrap, then `docker import`),
# for build hosts that cannot pull from a registry. The result stands in for debian:SUITE-slim:
#   docker/base-image.sh debian-local:bookworm
#   make build BASE_IMAGE=debian-local:bookworm
# Needs root and debootstrap; reaches only the Debian mirror (MIRROR=...).
set -o errexit -o nounset -o pipefail

tag=${1:?usage: base-image.sh IMAGE:TAG}
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
security_mirror=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
docker=${DOCKER:-docker}

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT

echo "debootstrap $suite from $mirror"
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >/dev/null

cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
EOF
# As the official slim images: no recommends, no documentation, no package caches.
cat >"$rootfs/etc/apt/apt.conf.d/docker-slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Acquire::GzipIndexes "true";
EOF
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/man/* \
  "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete

echo "docker import as $tag"
tar --numeric-owner -C "$rootfs" -c . |
  "$docker" import --change 'CMD ["bash"]' --message "debootstrap $suite from $mirror" - "$tag"
