#!/usr/bin/env bash
# Builds the Debian package of supportgate with dpkg-deb:
#
#   packaging/build-deb.sh [OUTDIR]     (default OUTDIR: dist)
#
# It prints the path of the .deb. The package installs /usr/bin/supportgate,
# the systemd unit /usr/lib/systemd/system/supportgate.service, a commented
# /etc/supportgate/supportgate.toml (a conffile, which refuses to start
# until an agent has a password of its own) and the documentation, and its
# postinst creates the system user supportgate and /var/lib/supportgate.
#
# VERSION overrides the package version (default: 0.1.0~git<commit
# time>.<commit>). The binary's `supportgate version` prints it with the
# git revision (-ldflags -X, which works in a linked worktree too, where
# go build stamps none). Needs Go (cgo: gcc) and dpkg-deb.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-dist}
export PATH="$PATH:/usr/local/go/bin"
for tool in go dpkg-deb dpkg; do
	command -v "$tool" >/dev/null || { echo "build-deb.sh: $tool is required" >&2; exit 1; }
done

rev="" when=""
if git rev-parse --git-dir >/dev/null 2>&1; then
	rev=$(git rev-parse HEAD)
	when=$(git log -1 --format=%cd --date=format:%Y%m%d%H%M%S)
	if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
		rev="$rev+modified"
	fi
fi
if [ -n "${VERSION:-}" ]; then
	version=$VERSION
elif [ -n "$rev" ]; then
	version="0.1.0~git$when.${rev:0:12}"
else
	version="0.1.0"
fi
arch=$(dpkg --print-architecture)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/supportgate"
install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/usr/lib/systemd/system" "$root/etc/supportgate" \
	"$root/usr/share/doc/supportgate"

CGO_ENABLED=1 go build -buildvcs=auto -ldflags "-X main.version=$version -X main.revision=$rev" \
	-o "$root/usr/bin/supportgate" ./cmd/supportgate
install -m 0644 packaging/supportgate.service "$root/usr/lib/systemd/system/supportgate.service"
install -m 0640 packaging/supportgate.toml "$root/etc/supportgate/supportgate.toml"
install -m 0644 README.md "$root/usr/share/doc/supportgate/README.md"
install -m 0644 config/example.toml "$root/usr/share/doc/supportgate/example.toml"
for script in postinst prerm postrm; do
	install -m 0755 "packaging/debian/$script" "$root/DEBIAN/$script"
done
echo /etc/supportgate/supportgate.toml >"$root/DEBIAN/conffiles"

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: supportgate
Version: $version
Architecture: $arch
Maintainer: ${MAINTAINER:-supportgate maintainers <supportgate@localhost>}
Installed-Size: $size
Depends: libc6, adduser | passwd
Recommends: libssl3 | libssl3t64
Section: mail
Priority: optional
Description: mail gateway for support teams (MX, submission, IMAP)
 supportgate is the mail server of a support team's domain: it accepts
 customers' mail, threads it into conversations, shows them to agents as
 IMAP folders in their own mail client, rewrites and DKIM-signs their
 replies and delivers them from a durable queue. One daemon, one TOML file,
 a SQLite store. libssl3 makes DKIM RSA signing faster.
CONTROL

mkdir -p "$out"
deb="$out/supportgate_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
