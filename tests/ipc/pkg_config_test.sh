#!/bin/sh
# Builds a C client with nothing but `pkg-config --cflags --libs llmq-client`, first from the
# build tree (meson-uninstalled), then from a scratch install (meson install --destdir), with a
# PKG_CONFIG_LIBDIR that holds only llmq's own .pc files: any required C++ package (such as
# nlohmann_json) would make pkg-config fail here.
set -eu
# shellcheck disable=SC2086  # $cc may carry flags
build=$1
source=$2
scratch=$(mktemp -d /tmp/llmq-pkgconfig-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
command -v pkg-config >/dev/null || { echo "pkg-config is not installed"; exit 77; }
cc=${CC:-cc}
# A sanitized build's library needs the sanitizer runtime in the program too.
sanitize=${3:-none}
if [ "$sanitize" != none ]; then cc="$cc -fsanitize=$sanitize"; fi

echo "== uninstalled"
PKG_CONFIG_LIBDIR="$build/meson-uninstalled" pkg-config --cflags --libs llmq-client
flags=$(PKG_CONFIG_LIBDIR="$build/meson-uninstalled" pkg-config --cflags --libs llmq-client)
# shellcheck disable=SC2086
$cc -std=c11 -Wpedantic -Werror -o "$scratch/client-uninstalled" "$source" $flags
LD_LIBRARY_PATH="$build/ipc" "$scratch/client-uninstalled"

echo "== installed (DESTDIR $scratch/root)"
meson install -C "$build" --destdir "$scratch/root" --quiet >/dev/null
pcdir=$(dirname "$(find "$scratch/root" -name llmq-client.pc | head -n 1)")
test -f "$pcdir/llmq-client.pc" || { echo "no llmq-client.pc installed"; exit 1; }
if grep -q nlohmann "$pcdir/llmq-client.pc"; then echo "llmq-client.pc requires nlohmann_json"; exit 1; fi
export PKG_CONFIG_LIBDIR="$pcdir" PKG_CONFIG_SYSROOT_DIR="$scratch/root"
pkg-config --cflags --libs llmq-client
flags=$(pkg-config --cflags --libs llmq-client)
# shellcheck disable=SC2086
$cc -std=c11 -Wpedantic -Werror -o "$scratch/client-installed" "$source" $flags
libdir=$(pkg-config --libs-only-L llmq-client | sed 's/^ *-L//; s/ *$//')
LD_LIBRARY_PATH="$libdir" "$scratch/client-installed"
echo "pkg-config llmq-client serves C users, uninstalled and installed"
