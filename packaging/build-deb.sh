#!/usr/bin/env bash
# Builds the Debian package of powens-webhooks from the release binary, with dpkg-deb:
# /usr/bin/powens-relay, the systemd units powens-relay.service (serve) and
# powens-dispatch.service (dispatch), /etc/powens-relay/{relay.toml,environment}
# (conffiles), the docs; postinst creates the system user powens-relay.
# Prints the path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
arch=$(dpkg --print-architecture)
out=target/debian
stage=$out/stage
deb=$out/powens-webhooks_${version}_${arch}.deb

cargo build --release --locked --bin powens-relay >&2

rm -rf "$stage"
install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" \
    "$stage/etc/powens-relay" "$stage/usr/share/doc/powens-webhooks"
install -m 0755 target/release/powens-relay "$stage/usr/bin/powens-relay"
strip --strip-unneeded "$stage/usr/bin/powens-relay"
install -m 0644 packaging/powens-relay.service packaging/powens-dispatch.service \
    "$stage/lib/systemd/system/"
install -m 0644 packaging/relay.toml "$stage/etc/powens-relay/relay.toml"
install -m 0640 packaging/environment "$stage/etc/powens-relay/environment"
install -m 0644 README.md CHANGELOG.md relay.example.toml docs/*.md \
    "$stage/usr/share/doc/powens-webhooks/"
cat > "$stage/usr/share/doc/powens-webhooks/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: powens-webhooks

Files: *
Copyright: 2026 The powens-webhooks developers
License: MIT or Apache-2.0
 The MIT licence is reproduced below; the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
 .
$(sed -e 's/^$/./' -e 's/^/ /' LICENSE-MIT)
COPYRIGHT
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm \
    "$stage/DEBIAN/"
printf '/etc/powens-relay/relay.toml\n/etc/powens-relay/environment\n' > "$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: powens-webhooks
Version: $version
Architecture: $arch
Maintainer: The powens-webhooks developers <powens-webhooks@users.noreply.invalid>
Installed-Size: $size
Depends: libc6, adduser
Section: net
Priority: optional
Description: verify Powens webhooks and relay them to RabbitMQ (TeaL-compatible)
 powens-relay serve receives Powens webhooks, verifies their BI-Signature and
 publishes them to RabbitMQ, answering 2xx only once the broker has confirmed;
 it also serves TeaL's callback and OpenID CIBA routes. powens-relay dispatch is
 TeaL's websocket dispatcher. Both run as systemd services under the system
 user powens-relay.
CONTROL

dpkg-deb --root-owner-group --build "$stage" "$deb" >&2
echo "$deb"
