// Package static holds permsync's embedded CSS, JavaScript and images.
// static/vendor is written by `make vendor` from the pinned npm packages in
// package.json (htmx and its SSE extension); it is committed so that a plain
// `go build` works, and CI checks that it matches the lockfile.
package static

import "embed"

// FS is the static tree served under /static/.
//
//go:embed css js img vendor
var FS embed.FS
