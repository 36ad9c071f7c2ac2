#!/bin/sh
# install-tools.sh installs what the tests need and nothing else:
# Debian packages through apt-get (Swift, memcached, promtool, packaging
# tools) and Go tools into the project-local .tools/bin.
set -eu
cd "$(dirname "$0")/.."
GOBIN="$(pwd)/.tools/bin"
export GOBIN

debs="swift swift-proxy swift-account swift-container swift-object python3-swiftclient
memcached prometheus debhelper dh-golang dpkg-dev fakeroot systemd lintian time"
missing=""
for p in $debs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "install-tools: apt-get install$missing"
	apt-get update -q >/dev/null
	# shellcheck disable=SC2086 # one word per package
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
fi

# Pinned versions: the tests are written against these.
[ -x "$GOBIN/helm" ] || go install helm.sh/helm/v3/cmd/helm@v3.22.0
[ -x "$GOBIN/versitygw" ] || go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
[ -x "$GOBIN/staticcheck" ] || go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
echo "install-tools: ok ($GOBIN)"
