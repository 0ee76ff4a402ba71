#!/usr/bin/env python3
"""Writes build/text-order.txt: the functions of the release server that its start and an
editor's first requests run, in the order they first ran (see build.rs for why).

Symbol names carry a hash of the crate's build settings, so a `cargo build --release` binary
and the one `cargo bench` builds (profile `bench`) name the same functions differently: the
file lists both sets, and each binary's linker uses the names it has.

Usage:
    cargo build --release && python3 scripts/text-order.py
    cargo bench --bench completion --no-run && python3 scripts/text-order.py --append
    cargo build --release   # relinks with the list
Needs valgrind (callgrind). Run it again after a dependency or toolchain update (names change)
or large changes; `cargo bench --bench completion` [4] says how much of the list a binary has.
A stale list only costs memory.
"""
import json, os, re, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = [a for a in sys.argv[1:] if a != "--append"]
APPEND = "--append" in sys.argv[1:]
BIN = ARGS[0] if ARGS else os.path.join(ROOT, "target/release/builder-lsp")
OUT = os.path.join(ROOT, "build/text-order.txt")


# Settings editors start the server with: a FIM completion model on a local server, a chat
# one, none.
SETTINGS = [
    {"completion": {"model": "llamacpp/code", "debounceMs": 0, "maxTokens": 128},
     "baseUrls": {"llamacpp": "http://127.0.0.1:9/"}},
    {"model": "anthropic/claude-sonnet-4-5", "completion": {"model": "openai/gpt-4o-mini"}},
    {},
]


def session(tmp, out_file, settings):
    """initialize with `settings`, didOpen, didChange, codeAction, shutdown, exit."""
    proj = os.path.join(tmp, "proj")
    os.makedirs(os.path.join(proj, "src"))
    with open(os.path.join(proj, "package.json"), "w") as f:
        f.write('{"dependencies": {"react": "^19.0.0"}}\n')
    env = dict(os.environ, BUILDER_STATE_DIR=os.path.join(tmp, "state"))
    p = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--demangle=no", "--callgrind-out-file=" + out_file, BIN],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)

    def send(m):
        b = json.dumps(m).encode()
        p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(b) + b)
        p.stdin.flush()

    def recv():
        h = b""
        while not h.endswith(b"\r\n\r\n"):
            c = p.stdout.read(1)
            if not c:
                raise SystemExit("the server ended early")
            h += c
        n = int(re.search(rb"Content-Length: (\d+)", h).group(1))
        return json.loads(p.stdout.read(n))

    def request(i, method, params):
        send({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
        while True:
            m = recv()
            if "method" in m and "id" in m:  # a request from the server: accept it
                send({"jsonrpc": "2.0", "id": m["id"], "result": None})
            elif m.get("id") == i:
                return m

    root = "file://" + proj
    doc = root + "/src/App.jsx"
    text = "import React from 'react'\nimport { motion } from 'framer-motion'\nexport default function App() {\n  return <div>hi</div>\n}\n"
    request(1, "initialize", {
        "processId": None, "rootUri": root, "workspaceFolders": [{"uri": root, "name": "proj"}],
        "capabilities": {"textDocument": {"inlineCompletion": {}, "publishDiagnostics": {}},
                         "general": {"positionEncodings": ["utf-16"]},
                         "window": {"workDoneProgress": True},
                         "workspace": {"workspaceEdit": {"documentChanges": True}}},
        "initializationOptions": settings})
    send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": doc, "languageId": "javascriptreact", "version": 1, "text": text}}})
    send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
        "textDocument": {"uri": doc, "version": 2},
        "contentChanges": [{"range": {"start": {"line": 3, "character": 15}, "end": {"line": 3, "character": 17}}, "text": "hello"}]}})
    request(2, "textDocument/codeAction", {
        "textDocument": {"uri": doc},
        "range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}},
        "context": {"diagnostics": []}})
    time.sleep(2)  # diagnostics run after a debounce
    request(3, "shutdown", None)
    send({"jsonrpc": "2.0", "method": "exit"})
    p.wait(timeout=60)


def executed(out_file):
    """Functions of the binary callgrind saw run, in the order they first appear."""
    objs, fns, seen, order, ob = {}, {}, set(), [], None
    binary = os.path.realpath(BIN)
    for line in open(out_file, errors="replace"):
        m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            kind, i, name = m.groups()
            if name:
                objs[i] = name
            if kind == "ob":
                ob = objs.get(i)
            continue
        m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            kind, i, name = m.groups()
            if name:
                fns[i] = name
            f = fns.get(i)
            if kind == "fn" and ob and os.path.realpath(ob) == binary and f and not f.startswith(("0x", "(")):
                if f not in seen:
                    seen.add(f)
                    order.append(f)
    return order


names = []
if APPEND and os.path.exists(OUT):
    names = [l.strip() for l in open(OUT) if l.strip()]
seen = set(names)
for settings in SETTINGS:
    with tempfile.TemporaryDirectory() as tmp:
        out_file = os.path.join(tmp, "callgrind.out")
        session(tmp, out_file, settings)
        for n in executed(out_file):
            if n not in seen:
                seen.add(n)
                names.append(n)
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    f.write("\n".join(names) + "\n")
print(f"{len(names)} functions -> {os.path.relpath(OUT, ROOT)}")
