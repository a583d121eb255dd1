#!/bin/sh
# Fetches the pretrained 2D networks that oddone uses (MobileNetV2 and
# InceptionV3 from the npm package nsfwjs@4.3.0, MIT licence) and converts
# them to safetensors under models/cache/, with a SHA-256 file beside each.
#
# Usage: scripts/fetch_weights.sh [OUT_DIR]   (default: models/cache)
# Needs npm and node. The tarball is checked against the integrity hash
# that the registry published for 4.3.0 before anything in it is used.
set -eu

version=4.3.0
integrity='sha512-WTKDte0vp1X97N1h34P79G/hG+sVT3+TnDz9di1WseIJR93v11E4viNX7Vg9WsO6HYoR772Nzq2iM8jo3XBZ+g=='

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/models/cache}
mkdir -p "$out"
cd "$out"

tarball=nsfwjs-$version.tgz
if [ ! -f "$tarball" ]; then
    npm pack "nsfwjs@$version" >/dev/null
fi
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 | tr -d '\n')"
if [ "$got" != "$integrity" ]; then
    echo "fetch_weights: $out/$tarball does not match the published integrity of nsfwjs@$version" >&2
    echo "  expected $integrity" >&2
    echo "  got      $got" >&2
    exit 1
fi

rm -rf package
tar xzf "$tarball"
for pair in mobilenet_v2:mobilenetv2 inception_v3:inceptionv3; do
    src=${pair%%:*}
    dst=${pair#*:}
    node "$root/scripts/nsfwjs_to_safetensors.cjs" "package/dist/models/$src" "$dst.safetensors"
    sha256sum "$dst.safetensors" > "$dst.safetensors.sha256"
    cat "$dst.safetensors.sha256"
done
