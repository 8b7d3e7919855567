#!/usr/bin/env bash
# Proves the front door on a fresh machine: runs the README's two commands, `make demo` then
# `make test`, in a minimal Debian 12 root (apt, make, git, sudo and nothing else) holding a
# clone of the committed HEAD. Exits non-zero, naming the command, when anything fails.
#
#   base     a Debian 12 root made by `mmdebstrap --variant=apt` from this machine's Debian apt
#            sources, kept as a tarball under $LOOM_FRESH_CACHE (default /var/cache/loom-fresh)
#            and made again only when the sources change or it is older than 14 days.
#   unpack   the tarball into a tmpfs.
#   clone    `git clone` of the repository, checked out at HEAD: uncommitted changes are not
#            part of the check.
#   demo     `make demo` in the root: install-deps.sh installs the packages, the build, the demo.
#   test     `make test` in the root: the whole suite (the build is already up to date).
#
# Isolation. Everything runs inside `unshare --mount --pid`: the tmpfs root, its /proc, /dev,
# /sys and the bind mounts below exist only in that private mount namespace, so none of them is
# ever visible on the host, and all of them go away with the namespace when the check ends,
# however it ends (failure, Ctrl-C). The new PID namespace kills any process the check left
# running when it ends. Nothing is written to the host but the cache folder and the compiler
# cache below.
#
# Speed. Two host folders are lent to the root by bind mount:
#   - $LOOM_FRESH_CACHE/apt-archives as the root's /var/cache/apt/archives, so the packages
#     are downloaded once per machine, not once per check;
#   - the clone's compiler cache (build/.ccache, see the Makefile), so the root compiles
#     nothing the host has compiled already. The clone sits at the same absolute path inside
#     the root as the repository on the host: the test sources are compiled with the source and
#     build folders' absolute paths as macros (LOOM_SOURCE_DIR), which CCACHE_BASEDIR does not
#     rewrite, so only identical paths give identical command lines.
#
# Why a compiler cache hit still proves the dependencies are installed. ccache returns a cached
# object only when it has checked every input of the compilation in the root itself:
#   - direct mode: the manifest lists every header the compilation read, by absolute path, with
#     its content hash. On lookup ccache hashes each of those files as they are in the root; a
#     header that is missing (its -dev package not installed) or different (another version)
#     matches no manifest entry, so direct mode misses.
#   - preprocessor mode (the fallback): ccache runs the root's own preprocessor; a missing
#     header fails it, and ccache then runs the real compiler, which fails with the usual
#     "No such file" error.
#   - the compiler itself is part of the hash (its size and modification time), so the root
#     must have the same g++ installed.
# CMake's find_package checks and the link run for real in the root's own, new build folder
# (ccache caches neither), and so do the demo and the tests. Checked by hand with every object
# in the cache: deleting /usr/include/yaml-cpp/node/node.h (reached through yaml-cpp/yaml.h) in
# the root after install-deps.sh fails `make demo` with "yaml-cpp/node/node.h: No such file or
# directory"; ccache counted those compilations as uncacheable (the preprocessor failed, so the
# real compiler ran), not as hits.
set -euo pipefail

SUITE=bookworm
BASE_PACKAGES=make,git,sudo
BASE_MAX_AGE_DAYS=14

# Runs COMMAND..., prints how long it took, and on failure says which step failed and exits
# with its status.
phase() {
  local name=$1 start=$SECONDS status=0
  shift
  echo "== fresh-check: $name"
  "$@" || status=$?
  local t=$((SECONDS - start))
  if [ "$status" -ne 0 ]; then
    printf '== fresh-check: FAILED: %s (exit %d, after %dm%02ds)\n' "$name" "$status" $((t / 60)) $((t % 60)) >&2
    exit "$status"
  fi
  printf '== fresh-check: %s: %dm%02ds\n' "$name" $((t / 60)) $((t % 60))
  printf '   %-44s %dm%02ds\n' "$name" $((t / 60)) $((t % 60)) >> "$times"
}

# Runs a command line in the root as a fresh login would: an empty environment, root's home,
# the standard PATH.
in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c "cd '$repo' && $1"
}

# Prints how much of `make demo` went to installing packages (dpkg's log since $1, the root's
# clock) and to compiling and linking (the ninja log of that one build).
demo_breakdown() {
  local dpkg ninja
  dpkg=$(awk -v since="$1" '$1 " " $2 >= since { t = $1 " " $2; if (!a) a = t; b = t } END { print a "|" b }' \
    "$root/var/log/dpkg.log")
  dpkg=$(($(date -d "${dpkg#*|}" +%s) - $(date -d "${dpkg%|*}" +%s)))
  ninja=$(awk '!/^#/ && $2 > m { m = $2 } END { printf "%d", m / 1000 }' "$root$repo/build/.ninja_log")
  printf '   %-44s %dm%02ds\n' "  of which dpkg installing packages" $((dpkg / 60)) $((dpkg % 60)) \
    "  of which ninja compiling and linking" $((ninja / 60)) $((ninja % 60)) | tee -a "$times"
}

# ---- inside the private mount and PID namespaces -------------------------------------------
if [ "${1:-}" = "--inside" ]; then
  base=$2 repo=$3 head=$4 cache=$5 ccache_dir=$6 root=$7 times=$7.times
  # Not needed for the host (the namespace takes every mount with it), but it ends the
  # processes and mounts in order when a step fails.
  trap 'cd /; umount -R "$root" 2>/dev/null || umount -lR "$root" 2>/dev/null || true' EXIT
  mount --make-rprivate /
  mount -t tmpfs -o size=24g,mode=755 loom-fresh "$root"

  phase "unpack the base root" tar -xf "$base" -C "$root"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  mount -t proc proc "$root/proc"
  mount -t sysfs -o ro sysfs "$root/sys"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs -o mode=1777 shm "$root/dev/shm"
  mkdir -p "$cache/apt-archives" "$root/var/cache/apt/archives"
  mount --bind "$cache/apt-archives" "$root/var/cache/apt/archives"

  clone() {
    git clone -q --no-checkout "$repo" "$root$repo" &&
      git -C "$root$repo" -c advice.detachedHead=false checkout -q --detach "$head"
  }
  phase "clone HEAD ${head:0:12}" clone
  mkdir -p "$ccache_dir" "$root$repo/build/.ccache"
  mount --bind "$ccache_dir" "$root$repo/build/.ccache"

  since=$(chroot "$root" date '+%F %T')
  ! command -v ccache > /dev/null || CCACHE_DIR=$ccache_dir ccache --zero-stats > /dev/null
  phase "make demo" in_root "make demo"
  demo_breakdown "$since" || true
  # The README promises these files.
  for f in runs/demo/reconstructions.png runs/demo/metrics.jsonl; do
    [ -s "$root$repo/$f" ] || { echo "== fresh-check: FAILED: make demo left no $f" >&2; exit 1; }
  done
  # Hits here are compilations the host had done already.
  in_root "CCACHE_DIR=build/.ccache ccache --show-stats" || true
  phase "make test" in_root "make test"
  exit 0
fi

# ---- on the host ---------------------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
  echo "fresh-check needs root (chroot, mounts): running it with sudo" >&2
  exec sudo --preserve-env=LOOM_FRESH_CACHE,CCACHE_DIR bash "$0" "$@"
fi
start=$SECONDS
repo=$(cd "$(dirname "$0")/.." && git rev-parse --show-toplevel)
head=$(git -C "$repo" rev-parse HEAD)
cache=${LOOM_FRESH_CACHE:-/var/cache/loom-fresh}
ccache_dir=${CCACHE_DIR:-$repo/build/.ccache}
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "fresh-check: uncommitted changes are not checked; checking HEAD ${head:0:12}" >&2
fi
mkdir -p "$cache"
root=$(mktemp -d /tmp/loom-fresh.XXXXXX)
times=$root.times
cleanup() {
  # The mounts lived in the private namespace; this only checks and removes the empty folder.
  if grep -q " $root " /proc/self/mountinfo; then umount -lR "$root" || true; fi
  rmdir "$root" 2> /dev/null || true
  rm -f "$times"
}
trap cleanup EXIT

# This machine's Debian sources, as files mmdebstrap pastes into the root.
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && grep -Eq '^[^#]*debian\.org/debian' "$f" && sources+=("$f")
done
[ ${#sources[@]} -gt 0 ] || { echo "fresh-check: no Debian apt source in /etc/apt" >&2; exit 1; }
key=$({ echo "$SUITE $BASE_PACKAGES apt"; cat "${sources[@]}"; } | sha256sum | cut -c1-12)
base=$cache/base-$SUITE-$key.tar

make_base() {
  # (called where `set -e` does not apply: every step is chained)
  if ! command -v mmdebstrap > /dev/null; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap || return
  fi
  rm -f "$cache"/base-*.tar "$cache"/partial-*.tar &&
    mmdebstrap --quiet --variant=apt --include="$BASE_PACKAGES" "$SUITE" "$cache/partial-$key.tar" "${sources[@]}" &&
    mv "$cache/partial-$key.tar" "$base"
}
if [ -s "$base" ] && [ -z "$(find "$base" -mtime +"$BASE_MAX_AGE_DAYS")" ]; then
  echo "== fresh-check: base root: $base ($(du -h "$base" | cut -f1), made $(date -r "$base" '+%F %R'))"
else
  phase "make the base root (mmdebstrap, once)" make_base
fi

status=0
unshare --mount --pid --fork --kill-child -- bash "$0" --inside "$base" "$repo" "$head" "$cache" "$ccache_dir" "$root" || status=$?
total=$((SECONDS - start))
echo "== fresh-check: times"
cat "$times" 2> /dev/null || true
printf '   %-44s %dm%02ds\n' total $((total / 60)) $((total % 60))
if [ "$status" -ne 0 ]; then
  echo "== fresh-check: FAILED (exit $status)" >&2
  exit "$status"
fi
echo "== fresh-check: passed: make demo and make test on a fresh Debian 12 root at ${head:0:12}"
