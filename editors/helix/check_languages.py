#!/usr/bin/env python3
"""Checks editors/helix/languages.toml (stdlib only, Python 3.11+ for tomllib).

- [language-server.builder-lsp] exists and its command is "builder-lsp";
- its `config` holds a `builder` table (the section the server asks for with
  workspace/configuration) with valid sandbox values, and never API keys;
- each web language uses Helix's own name, lists "builder-lsp" in `language-servers`, and
  keeps at least one other server (Helix's default one) beside it;
- no language entry uses a name Helix does not know or appears twice.

Usage: python3 editors/helix/check_languages.py [path/to/languages.toml]
Exit status 0 when every check passes, 1 otherwise (each failure printed).
"""

import sys
import tomllib
from pathlib import Path

SERVER = "builder-lsp"

# Helix's language names (runtime languages.toml) and the servers Helix itself configures for
# them; an entry must keep at least one of these, because `language-servers` replaces the default.
HELIX_DEFAULTS = {
    "javascript": {"typescript-language-server"},
    "jsx": {"typescript-language-server"},
    "typescript": {"typescript-language-server"},
    "tsx": {"typescript-language-server"},
    "css": {"vscode-css-language-server"},
    "html": {"vscode-html-language-server", "superhtml"},
    "json": {"vscode-json-language-server"},
}

# Names people reach for that Helix does not use (its names are on the left above).
WRONG_NAMES = {
    "javascriptreact": "jsx",
    "typescriptreact": "tsx",
    "js": "javascript",
    "ts": "typescript",
}


def server_name(entry):
    """A `language-servers` element is a name or a table `{ name = "...", ... }`."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
        return entry["name"]
    return None


def check(doc):
    errors = []
    servers = doc.get("language-server")
    if not isinstance(servers, dict) or SERVER not in servers:
        errors.append(f"no [language-server.{SERVER}] table")
    else:
        entry = servers[SERVER]
        if entry.get("command") != SERVER:
            errors.append(f'[language-server.{SERVER}] command is {entry.get("command")!r}, expected "{SERVER}"')
        config = entry.get("config")
        if not isinstance(config, dict) or not isinstance(config.get("builder"), dict):
            errors.append(
                f"[language-server.{SERVER}] needs config.builder "
                "(the section builder-lsp reads with workspace/configuration)"
            )
        else:
            builder = config["builder"]
            if "apiKeys" in builder or "api_keys" in builder:
                errors.append("config.builder must not hold API keys; use the environment")
            sandbox = builder.get("sandbox", {})
            if not isinstance(sandbox, dict):
                errors.append("config.builder.sandbox must be a table")
            else:
                if sandbox.get("provider", "local") not in ("local", "e2b", "vercel"):
                    errors.append(f'config.builder.sandbox.provider = {sandbox.get("provider")!r}')
                if sandbox.get("isolation", "auto") not in ("auto", "bwrap", "none"):
                    errors.append(f'config.builder.sandbox.isolation = {sandbox.get("isolation")!r}')
                snake = [k for k in sandbox if "_" in k]
                if snake:
                    errors.append(f"config.builder.sandbox keys are camelCase; found {snake}")
            snake = [k for k in builder if "_" in k]
            if snake:
                errors.append(f"config.builder keys are camelCase (the server ignores others); found {snake}")

    languages = doc.get("language", [])
    if not isinstance(languages, list):
        errors.append("`language` must be an array of tables ([[language]])")
        languages = []
    seen = {}
    for lang in languages:
        name = lang.get("name")
        if name in WRONG_NAMES:
            errors.append(f'[[language]] name "{name}" is not a Helix language; Helix calls it "{WRONG_NAMES[name]}"')
            continue
        if name in seen:
            errors.append(f'[[language]] "{name}" appears twice')
        seen[name] = lang

    for name, defaults in HELIX_DEFAULTS.items():
        lang = seen.get(name)
        if lang is None:
            errors.append(f'no [[language]] entry for "{name}"')
            continue
        listed = [server_name(s) for s in lang.get("language-servers", [])]
        if None in listed:
            errors.append(f'"{name}": a language-servers element is neither a name nor {{ name = ... }}')
        if SERVER not in listed:
            errors.append(f'"{name}": language-servers {listed} lacks "{SERVER}"')
        if listed.count(SERVER) > 1:
            errors.append(f'"{name}": "{SERVER}" listed more than once')
        others = [s for s in listed if s and s != SERVER]
        if not others:
            errors.append(f'"{name}": "{SERVER}" is alone; keep Helix\'s default server beside it ({sorted(defaults)})')
        elif not defaults.intersection(others):
            errors.append(f'"{name}": none of Helix\'s default servers {sorted(defaults)} is kept (have {others})')
        for s in others:
            if s not in defaults and s not in (servers or {}):
                errors.append(f'"{name}": server "{s}" is neither a Helix default for it nor defined in this file')
    return errors


def main(argv):
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("languages.toml")
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        print(f"FAIL {path}: {e}", file=sys.stderr)
        return 1
    errors = check(doc)
    for e in errors:
        print(f"FAIL {path}: {e}", file=sys.stderr)
    if errors:
        return 1
    print(f"ok: {path} ({len(HELIX_DEFAULTS)} languages with {SERVER})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
