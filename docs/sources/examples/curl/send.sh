#!/bin/sh
# Sends payload.json (or the file given) to a declared source, signed with
# its HMAC secret. VIGIL_URL: Vigil's address; VIGIL_SOURCE: the source's
# name; VIGIL_SOURCE_SECRET: its secret.
set -eu
body=$(cat "${1:-payload.json}")
t=$(date +%s)
sig=$(printf '%s.%s' "$t" "$body" | openssl dgst -sha256 -hmac "$VIGIL_SOURCE_SECRET" | sed 's/^.*= *//')
curl -fsS -X POST "$VIGIL_URL/api/v1/webhooks/sources/$VIGIL_SOURCE" \
  -H 'Content-Type: application/json' \
  -H "X-Vigil-Signature: t=$t,v1=$sig" \
  --data-binary "$body"
