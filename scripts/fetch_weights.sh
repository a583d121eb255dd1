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
    npm pack --silent "nsfwjs@$version" >/dev/null
fi
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 | tr -d '\n')"
if [ "$got" != "$integrity" ]; then
    echo "fetch_weights: $out/$tarball does not match the published integrity of nsfwjs@$version" >&2
    echo "  expected $integrity" >&2
    echo "  got      $got" >&2
    exit 1
fi

# SHA-256 of each converted file; the conversion is deterministic, so any
# other value means the converter or the package changed.
expected_mobilenetv2=07805109baa21dd4a0f46c114a75faff2aee6a7a4d4fcee3bc8def907dac649d
expected_inceptionv3=e5fa342028c8e5670d06ccc6b4b128a925746b71ee24cd85007e3c3747b0bef0

rm -rf package
tar xzf "$tarball"
for pair in mobilenet_v2:mobilenetv2 inception_v3:inceptionv3; do
    src=${pair%%:*}
    dst=${pair#*:}
    eval "expected=\$expected_$dst"
    if [ -f "$dst.safetensors" ] && [ "$(sha256sum "$dst.safetensors" | cut -d' ' -f1)" = "$expected" ]; then
        echo "fetch_weights: $out/$dst.safetensors is present and matches its checksum"
        continue
    fi
    node "$root/scripts/nsfwjs_to_safetensors.cjs" "package/dist/models/$src" "$dst.safetensors.tmp"
    got=$(sha256sum "$dst.safetensors.tmp" | cut -d' ' -f1)
    if [ "$got" != "$expected" ]; then
        rm -f "$dst.safetensors.tmp"
        echo "fetch_weights: converted $dst has SHA-256 $got, expected $expected" >&2
        exit 1
    fi
    mv "$dst.safetensors.tmp" "$dst.safetensors"
    echo "$got  $dst.safetensors" > "$dst.safetensors.sha256"
    echo "fetch_weights: wrote $out/$dst.safetensors ($got)"
done
rm -rf package
