#!/usr/bin/env bash
# Developer entry point.
#   ./scripts/dev.sh deps   install missing Debian packages
#   ./scripts/dev.sh build  deps + in-tree autotools build
#   ./scripts/dev.sh run    build + run ./ksockd -f -c conf/ksockd-dev.conf
#   ./scripts/dev.sh test   deps + the whole suite (scripts/ci.sh)
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# llvm-14 brings llvm-symbolizer: without it sanitizer stacks stay bare
# addresses and tests/fuzz/lsan.supp matches nothing (scripts/ci.sh).
# testssl.sh is the scanner of tests/integration/test_tls_scan.py;
# python3-prometheus-client parses /metrics, logrotate rotates the
# access log in tests/integration/test_observe.py.
PACKAGES=(
	build-essential autoconf automake libtool pkg-config make git
	libev-dev libgnutls28-dev libconfig-dev libsystemd-dev check
	clang libclang-rt-14-dev llvm-14 valgrind
	socat gnutls-bin openssl python3 systemd procps ca-certificates iproute2
	testssl.sh python3-prometheus-client logrotate curl
)

die() {
	echo "dev.sh: $*" >&2
	exit 1
}

# Root runs apt-get directly; others go through sudo when it exists.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

cmd_deps() {
	local missing=() p status
	for p in "${PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		case "$status" in
		*" installed") ;;
		*) missing+=("$p") ;;
		esac
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		return 0
	fi
	echo "dev.sh: installing ${missing[*]}"
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${missing[@]}"
}

cmd_build() {
	cmd_deps
	cd "$SRC"
	if [ ! -f configure ] || [ configure.ac -nt configure ] ||
		[ Makefile.am -nt configure ]; then
		autoreconf -fi
	fi
	if [ ! -f Makefile ]; then
		./configure
	fi
	make -j"$(nproc)"
}

# A self-signed certificate for the hello-tls listener (127.0.0.1:9443),
# made once; conf/dev-tls/ is not tracked by git.
dev_tls_cert() {
	local dir="$SRC/conf/dev-tls" tmpl
	if [ -f "$dir/localhost.pem" ] && [ -f "$dir/localhost.key" ]; then
		return 0
	fi
	mkdir -p "$dir"
	tmpl=$(mktemp)
	cat >"$tmpl" <<-EOF
		cn = "localhost"
		organization = "ksockd development"
		dns_name = "localhost"
		ip_address = "127.0.0.1"
		ip_address = "::1"
		tls_www_server
		signing_key
		expiration_days = 3650
	EOF
	certtool --generate-privkey --key-type ecdsa --curve secp256r1 \
		--no-text --outfile "$dir/localhost.key" 2>/dev/null
	certtool --generate-self-signed --load-privkey "$dir/localhost.key" \
		--template "$tmpl" --no-text --outfile "$dir/localhost.pem" \
		2>/dev/null
	rm -f "$tmpl"
	echo "dev.sh: made a self-signed certificate in conf/dev-tls/"
}

cmd_run() {
	cmd_build
	dev_tls_cert
	cd "$SRC"
	exec ./ksockd -f -c conf/ksockd-dev.conf
}

cmd_test() {
	cmd_deps
	exec bash "$SRC/scripts/ci.sh"
}

usage() {
	sed -n '2,6s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

case "${1:-}" in
deps) cmd_deps ;;
build) cmd_build ;;
run) cmd_run ;;
test) cmd_test ;;
-h | --help | help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac
