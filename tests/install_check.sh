#!/bin/sh
# Installs the build into a temporary prefix and compiles a program against
# the installed header and pkg-config file, both static and shared.
# usage: tests/install_check.sh BUILD_DIR
set -eu
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
for path in bin/oddone include/oddone.h; do
    [ -e "$prefix/$path" ] || { echo "install_check: $prefix/$path missing"; exit 1; }
done
pc_dir=$(dirname "$(find "$prefix" -name oddone.pc | head -1)")
cat >"$prefix/use.c" <<'PROGRAM'
#include <oddone.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    oddone_set_num_threads(1);
    printf("%s\n", oddone_version());
    return strcmp(oddone_version(), "0.1.0") != 0;
}
PROGRAM
export PKG_CONFIG_PATH="$pc_dir"
libdir=$(pkg-config --variable=libdir oddone)
# shellcheck disable=SC2046
cc "$prefix/use.c" -o "$prefix/use_shared" $(pkg-config --cflags --libs oddone) -Wl,-rpath,"$libdir"
"$prefix/use_shared"
# shellcheck disable=SC2046
cc "$prefix/use.c" -o "$prefix/use_static" $(pkg-config --cflags oddone) "$libdir/liboddone.a" \
    $(pkg-config --static --libs-only-l oddone | sed 's/-loddone//')
"$prefix/use_static"
"$prefix/bin/oddone" version >/dev/null
echo "1 passed, 0 failed"
