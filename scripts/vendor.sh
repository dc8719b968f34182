#!/usr/bin/env bash
# Copies the built files of the pinned npm packages into static/vendor.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --silent
mkdir -p static/vendor
cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js
cp node_modules/htmx-ext-sse/dist/sse.min.js static/vendor/htmx-ext-sse.min.js
cp node_modules/htmx.org/LICENSE static/vendor/htmx.LICENSE
{
  echo "Files in this folder are written by 'make vendor' from npm; do not edit them."
  echo "htmx.min.js: htmx.org $(node -p "require('./node_modules/htmx.org/package.json').version") (BSD Zero Clause License, htmx.LICENSE)"
  echo "htmx-ext-sse.min.js: htmx-ext-sse $(node -p "require('./node_modules/htmx-ext-sse/package.json').version") (BSD Zero Clause License)"
} > static/vendor/README
