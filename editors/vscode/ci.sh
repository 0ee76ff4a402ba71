#!/usr/bin/env bash
# The VS Code extension's checks: install (from package-lock.json), typecheck, lint, unit +
# contract tests (the contract tests drive the real server: $BUILDER_LSP_BIN, default
# ../../target/debug/builder-lsp, which CI builds first), then the .vsix.
set -euo pipefail
cd "$(dirname "$0")"
start=$(date +%s)
step() { echo "== editors/vscode: $*"; }

step "npm ci"
npm ci --no-audit --no-fund
step "typecheck"
npm run --silent typecheck
step "lint"
npm run --silent lint
step "test"
npm test
step "package"
npm run --silent package
ls -l builder-lsp-*.vsix
if [ "${BUILDER_VSCODE_E2E:-0}" = 1 ]; then
  step "e2e (code-server + Chromium; ~5 min with a cold cache, ~30 s warm)"
  bash e2e/run.sh
fi
echo "== editors/vscode: ok in $(( $(date +%s) - start )) s"
