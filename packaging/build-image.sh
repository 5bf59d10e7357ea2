#!/usr/bin/env bash
# Builds the container image of powens-relay with podman, FROM scratch: nothing is pulled
# or downloaded. The image holds the release binary, exactly the shared libraries it
# links and their loader (as ldd lists them), the CA certificates (amqps://), the
# copyright files of what it copies, /etc/passwd and /etc/group with the unprivileged
# user it runs as, and the directory of data_dir, declared a volume.
# Usage: packaging/build-image.sh [NAME:TAG]   (default localhost/powens-relay:<version>)
# Prints the image's name:tag on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
licence=$(sed -n 's/^license = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
description=$(sed -n 's/^description = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
source_url=$(sed -n 's/^repository = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
image=${1:-localhost/powens-relay:$version}
# The user the image runs as: numeric in the image's configuration, so that a runtime
# refusing root (Kubernetes' runAsNonRoot) can check it without reading /etc/passwd.
uid=10001
data_dir=/var/lib/powens-relay
out=target/image
rootfs=$out/context/rootfs

fail() { echo "build-image: $*" >&2; exit 1; }
command -v podman >/dev/null || fail "podman is not installed (apt-get install podman)"

cargo build --release --locked --bin powens-relay >&2
binary=target/release/powens-relay

rm -rf "$out/context"
install -d "$rootfs/usr/bin" "$rootfs/etc/ssl/certs" "$rootfs/usr/share/doc/powens-webhooks" \
    "$out/context/data"
install -m 0755 "$binary" "$rootfs/usr/bin/powens-relay"
strip --strip-unneeded "$rootfs/usr/bin/powens-relay"

# The loader and the libraries, at the paths ldd resolves them to (the loader searches
# the same multiarch directories in the image, which has no ld.so.cache). Symbolic links
# are followed: the image gets the files themselves under the names the binary asks for.
libraries=$(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[ -n "$libraries" ] || fail "ldd found no libraries in $binary (a static build needs no such step)"
for library in $libraries; do
    install -D -m 0755 "$(readlink -f "$library")" "$rootfs$library"
done

# glibc reads /etc/nsswitch.conf to resolve host names: /etc/hosts (which the runtime
# writes) first, then DNS (its /etc/resolv.conf). Both are built into libc.so.6.
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$rootfs/etc/nsswitch.conf"
printf 'root:x:0:0:root:/root:/nonexistent\npowens-relay:x:%s:%s:powens-relay:%s:/nonexistent\n' \
    "$uid" "$uid" "$data_dir" > "$rootfs/etc/passwd"
printf 'root:x:0:\npowens-relay:x:%s:\n' "$uid" > "$rootfs/etc/group"
# rustls-native-certs (lapin's amqps://) reads the bundle at this path, or SSL_CERT_FILE.
bundle=/etc/ssl/certs/ca-certificates.crt
[ -s "$bundle" ] || fail "no CA certificates at $bundle (apt-get install ca-certificates)"
install -m 0644 "$bundle" "$rootfs$bundle"

# The copyright files of the Debian packages the image copies files from (glibc is
# LGPL: its notice goes with it; the bundle is generated from ca-certificates' files),
# and the relay's licences.
package_of() {
    # dpkg knows the path ldd gives or, with a merged /usr, the one it resolves to.
    dpkg -S "$1" 2>/dev/null || dpkg -S "$(readlink -f "$1")" 2>/dev/null \
        || fail "no Debian package owns $1: cannot copy its copyright file"
}
packages=$({ for library in $libraries; do package_of "$library"; done
    echo ca-certificates:; } | cut -d: -f1 | sort -u)
for package in $packages; do
    install -D -m 0644 "/usr/share/doc/$package/copyright" "$rootfs/usr/share/doc/$package/copyright"
done
install -m 0644 LICENSE-MIT LICENSE-APACHE "$rootfs/usr/share/doc/powens-webhooks/"
# SQLite (the embedded callback store) may write temporary files under /tmp.
install -d -m 1777 "$rootfs/tmp"
chmod 0755 "$rootfs" "$rootfs/etc" "$rootfs/usr" "$rootfs/usr/bin"
chmod 0750 "$out/context/data"

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || revision="$revision-modified"
# The commit's time as the image's (or SOURCE_DATE_EPOCH): the same commit builds the
# same image, bit for bit.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
labels="org.opencontainers.image.title=\"powens-relay\" \\
      org.opencontainers.image.description=\"$description\" \\
      org.opencontainers.image.version=\"$version\" \\
      org.opencontainers.image.licenses=\"$licence\" \\
      org.opencontainers.image.revision=\"$revision\""
# Cargo.toml's repository, when it names one.
[ -n "$source_url" ] && labels="$labels \\
      org.opencontainers.image.source=\"$source_url\""
cat > "$out/context/Containerfile" <<CONTAINERFILE
FROM scratch
COPY rootfs/ /
COPY --chown=$uid:$uid data/ $data_dir/
LABEL $labels
# Inside a container the relay listens on every interface (its own default is
# 127.0.0.1); data_dir is absolute, on the volume. Flags override these.
ENV POWENS_RELAY_LISTEN=0.0.0.0:8080 \\
    POWENS_RELAY_DISPATCHER_LISTEN=0.0.0.0:8081 \\
    POWENS_RELAY_DATA_DIR=$data_dir
EXPOSE 8080 8081
VOLUME $data_dir
WORKDIR $data_dir
USER $uid:$uid
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/powens-relay"]
CMD ["serve"]
CONTAINERFILE

# The context is the staged tree alone: nothing else of the checkout (or of the
# environment: no build arguments) can reach a layer.
podman build --quiet --layers=false --timestamp "$epoch" --tag "$image" "$out/context" >&2
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "build-image: $image, $((size / 1024)) KiB ($(du -sk "$rootfs" | cut -f1) KiB of files)" >&2
echo "$image"
