#!/bin/sh
# Installs Loom into a temporary prefix, builds the plugin template against it with
# find_package(Loom), and runs a pipeline that uses the template's layer through the installed
# tool.
set -eu
BUILD="$1"
SRC="$2"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cmake --install "$BUILD" --prefix "$TMP/prefix" > "$TMP/install.log"
cmake -S "$SRC/template" -B "$TMP/build" -G Ninja -DCMAKE_PREFIX_PATH="$TMP/prefix" > "$TMP/configure.log"
cmake --build "$TMP/build" > "$TMP/build.log"
test -f "$TMP/build/libmy_layers.so"
LOOM_PLUGIN_PATH="$TMP/build" "$TMP/prefix/bin/loom" plugins clip | grep -q "Clips values"
LOOM_PLUGIN_PATH="$TMP/build" "$TMP/prefix/bin/loom" run "$SRC/template/example.yaml" --out "$TMP/run" --quiet
test -s "$TMP/run/metrics.jsonl"
echo "template plugin built against the install tree and used from YAML"
