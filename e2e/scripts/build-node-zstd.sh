#!/usr/bin/env bash
# Build the native addon of the npm package @mongodb-js/zstd in place, offline.
#
# Its own install script downloads a prebuilt binary from GitHub, or else the
# zstd sources, and node-gyp would download Node's headers: none of that is
# reachable here. Instead this script uses
#   - zstd headers and static lib from the Debian package libzstd-dev,
#   - Node's headers from /usr/include/node (Debian/NodeSource nodejs package),
#   - the node-gyp bundled with npm (node-addon-api comes from npm as a dependency).
# Run from the directory whose node_modules holds @mongodb-js/zstd (e2e/),
# after `npm ci`. Idempotent: a no-op if the addon already loads.
set -euo pipefail

log() { echo "build-node-zstd: $*"; }

PKG_DIR=$(node -p "require('path').dirname(require.resolve('@mongodb-js/zstd/package.json', {paths: [process.cwd()]}))" 2>/dev/null) || {
  log "@mongodb-js/zstd is not installed under $(pwd)/node_modules; run npm ci first" >&2
  exit 1
}

check() {
  node -e "require(process.argv[1]).compress(Buffer.from('x')).then(b => { if (!b.length) process.exit(1) })" "$PKG_DIR" >/dev/null 2>&1
}

if check; then
  log "addon already loads ($PKG_DIR), nothing to do"
  exit 0
fi

# --- system packages -------------------------------------------------------
need=()
dpkg-query -W -f='${Status}' libzstd-dev 2>/dev/null | grep -q 'install ok installed' || need+=(libzstd-dev)
command -v make    >/dev/null || need+=(make)
command -v g++     >/dev/null || need+=(g++)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  bash "$(dirname "$0")/apt-install.sh" "${need[@]}"
fi

ZSTD_A=$(dpkg -L libzstd-dev | grep '/libzstd\.a$' | head -n1)
[ -n "$ZSTD_A" ] && [ -f "$ZSTD_A" ] || { log "libzstd.a not found in libzstd-dev" >&2; exit 1; }
[ -f /usr/include/zstd.h ] || { log "/usr/include/zstd.h not found" >&2; exit 1; }

# --- Node headers (node-gyp --nodedir=/usr reads /usr/include/node) ---------
NODEDIR=${NODE_ZSTD_NODEDIR:-/usr}
if [ ! -f "$NODEDIR/include/node/node_api.h" ] || [ ! -f "$NODEDIR/include/node/common.gypi" ]; then
  log "Node headers not found under $NODEDIR/include/node (set NODE_ZSTD_NODEDIR)" >&2
  exit 1
fi
hdr_ver=$(awk '/define NODE_(MAJOR|MINOR|PATCH)_VERSION/ {v = v (v ? "." : "") $3} END {print v}' "$NODEDIR/include/node/node_version.h")
node_ver=$(node -p 'process.versions.node')
[ "$hdr_ver" = "$node_ver" ] || log "note: headers are for Node $hdr_ver, running Node $node_ver (N-API addon, usually fine)"

# --- node-gyp: the copy bundled with npm, else a local one ------------------
NPM_ROOT=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
NODE_GYP=
for c in "$NPM_ROOT/node_modules/node-gyp/bin/node-gyp.js" \
         "$(pwd)/node_modules/node-gyp/bin/node-gyp.js"; do
  if [ -f "$c" ]; then NODE_GYP=$c; break; fi
done
[ -n "$NODE_GYP" ] || { log "node-gyp not found (looked in npm's bundled modules and ./node_modules)" >&2; exit 1; }

# --- lay out deps/zstd the way binding.gyp expects --------------------------
log "preparing $PKG_DIR/deps/zstd from libzstd-dev ($(dpkg-query -W -f='${Version}' libzstd-dev))"
rm -rf "$PKG_DIR/deps/zstd"
mkdir -p "$PKG_DIR/deps/zstd/lib" "$PKG_DIR/deps/zstd/out/lib"
for h in zstd.h zstd_errors.h zdict.h; do
  if [ -f "/usr/include/$h" ]; then ln -s "/usr/include/$h" "$PKG_DIR/deps/zstd/lib/$h"; fi
done
ln -s "$ZSTD_A" "$PKG_DIR/deps/zstd/out/lib/libzstd.a"

# --- build -------------------------------------------------------------------
# Debian's libzstd.a is not built with -fPIC: -Bsymbolic lets its PC-relative
# relocations resolve at link time (no text relocations); --exclude-libs keeps
# the ZSTD_* symbols private to the addon.
log "node-gyp rebuild (node-gyp $(node "$NODE_GYP" --version 2>/dev/null | tr -d 'v'), nodedir $NODEDIR)"
start=$(date +%s)
logfile=$(mktemp)
if ! (cd "$PKG_DIR" && LDFLAGS="${LDFLAGS:-} -Wl,-Bsymbolic -Wl,--exclude-libs,ALL" \
      node "$NODE_GYP" rebuild --nodedir="$NODEDIR" --jobs=max >"$logfile" 2>&1); then
  tail -n 40 "$logfile" >&2
  rm -f "$logfile"
  log "build failed" >&2
  exit 1
fi
rm -f "$logfile"

if check; then
  log "built $PKG_DIR/build/Release/zstd.node in $(( $(date +%s) - start ))s; require('@mongodb-js/zstd') works"
else
  node -e "require(process.argv[1])" "$PKG_DIR" || true
  log "built, but the addon does not load" >&2
  exit 1
fi
