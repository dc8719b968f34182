#!/usr/bin/env bash
# `make vuln`: scan permsync with govulncheck against the Go vulnerability
# database, fetched as a module through the Go module proxy (so the scan needs
# nothing the build does not), and fail on any reachable advisory that has a
# fix, or that has none and is not written down in docs/SECURITY.md.
# VULNDB_VERSION and GOVULNCHECK_VERSION come from the Makefile.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${VULNDB_VERSION:?}" "${GOVULNCHECK_VERSION:?}"
GO="${GO:-go}"

if ! info="$($GO mod download -json "golang.org/x/vulndb@${VULNDB_VERSION}" 2>&1)"; then
  echo "make vuln: skipped: the vulnerability database golang.org/x/vulndb@${VULNDB_VERSION} could not be downloaded:"
  echo "$info" | grep -m1 -i error || true
  exit 0
fi
src="$(echo "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
db="bin/vulndb-${VULNDB_VERSION}"
if [ ! -f "$db/index/modules.json" ]; then
  rm -rf "$db"
  $GO run ./scripts/vulncheck index -osv "$src/data/osv" -out "$db"
fi

echo "--- govulncheck ${GOVULNCHECK_VERSION} ($($GO env GOVERSION)), database of golang.org/x/vulndb@${VULNDB_VERSION}"
$GO run "golang.org/x/vuln/cmd/govulncheck@${GOVULNCHECK_VERSION}" -db "file://$PWD/$db" -format json ./... > bin/govulncheck.json
$GO run ./scripts/vulncheck report -accepted docs/SECURITY.md < bin/govulncheck.json
