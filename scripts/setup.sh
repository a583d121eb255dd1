#!/bin/sh
# Installs the Debian 12 packages that oddone needs and that are missing.
#
# usage: scripts/setup.sh [--dev]
#   --dev   also install what regenerating reference values, running the
#           PyTorch benchmark peers and fuzzing need (python3-torch,
#           python3-sklearn, clang)
# Run as root (or with sudo); with nothing missing it installs nothing.
set -eu

packages="gcc g++ make cmake pkg-config openssl libdnnl-dev libpng-dev libjpeg62-turbo-dev libcjson-dev"
if [ "${1:-}" = "--dev" ]; then
    packages="$packages python3-torch python3-sklearn python3-numpy clang libclang-rt-14-dev"
elif [ -n "${1:-}" ]; then
    echo "setup: unknown option \"$1\"; usage: scripts/setup.sh [--dev]" >&2
    exit 2
fi

missing=""
for package in $packages; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $package" ;;
    esac
done

# node and npm fetch and convert the pretrained networks
# (scripts/fetch_weights.sh). They are checked as commands, because a
# Node.js installed from elsewhere ships npm inside its nodejs package.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing="$missing nodejs npm"
fi

if [ -z "$missing" ]; then
    echo "setup: all packages present"
    exit 0
fi
echo "setup: installing$missing"
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        runner=sudo
    else
        echo "setup: not root and no sudo; run as root: apt-get install$missing" >&2
        exit 1
    fi
else
    runner=
fi
$runner apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $runner apt-get install -y -qq --no-install-recommends $missing
