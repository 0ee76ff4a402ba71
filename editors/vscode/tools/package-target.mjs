#!/usr/bin/env node
// Builds a platform-specific .vsix that carries the builder-lsp server, so the extension works
// with nothing else installed (no Rust, no builder.serverPath):
//
//   node tools/package-target.mjs <target>      (npm run package:linux-x64, npm run package:target -- <target>)
//
// The binary: $BUILDER_LSP_BIN if set, else ../../target/release/builder-lsp. It is copied to
// server/builder-lsp (server/builder-lsp.exe for win32-*) with mode 0755, packed with
// `vsce package --target <target> --no-dependencies` into builder-lsp-<target>-<version>.vsix,
// and server/ is removed again, so the universal `npm run package` never carries it. The binary
// must be built for <target>: its header (ELF / Mach-O / PE and the CPU) is checked first.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const TARGETS = ['linux-x64', 'linux-arm64', 'linux-armhf', 'alpine-x64', 'alpine-arm64', 'darwin-x64', 'darwin-arm64', 'win32-x64', 'win32-arm64'];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fail = (msg) => {
  console.error(`package-target: ${msg}`);
  process.exit(1);
};

const target = process.argv[2];
if (!target || !TARGETS.includes(target)) fail(`usage: node tools/package-target.mjs <target>, one of ${TARGETS.join(', ')} (got ${target ?? 'none'})`);

const fromEnv = process.env.BUILDER_LSP_BIN;
const bin = path.resolve(root, fromEnv || path.join('..', '..', 'target', 'release', 'builder-lsp'));
if (!fs.existsSync(bin) || !fs.statSync(bin).isFile()) {
  fail(
    `no builder-lsp binary at ${bin}${fromEnv ? ' (from $BUILDER_LSP_BIN)' : ''}. ` +
      'Build it with "cargo build --release" in the repository root, or point BUILDER_LSP_BIN at a builder-lsp binary built for ' +
      `${target} (e.g. BUILDER_LSP_BIN=../../target/debug/builder-lsp for a debug build).`,
  );
}

/** What the binary's first bytes say it is: { os, cpu } or undefined. */
function binaryKind(file) {
  const fd = fs.openSync(file, 'r');
  const h = Buffer.alloc(4096);
  const n = fs.readSync(fd, h, 0, h.length, 0);
  fs.closeSync(fd);
  if (n >= 20 && h.readUInt32BE(0) === 0x7f454c46) {
    const le = h[5] === 1;
    const machine = le ? h.readUInt16LE(18) : h.readUInt16BE(18);
    return { os: 'linux', cpu: { 0x3e: 'x64', 0xb7: 'arm64', 0x28: 'armhf' }[machine] ?? `elf machine ${machine}` };
  }
  if (n >= 8 && [0xfeedfacf, 0xcffaedfe].includes(h.readUInt32BE(0))) {
    const cpu = h.readUInt32LE(4);
    return { os: 'darwin', cpu: { 0x01000007: 'x64', 0x0100000c: 'arm64' }[cpu] ?? `mach-o cpu ${cpu}` };
  }
  if (n >= 64 && h.readUInt16LE(0) === 0x5a4d) {
    const pe = h.readUInt32LE(60);
    if (pe + 6 <= n && h.readUInt32BE(pe) === 0x50450000) {
      const machine = h.readUInt16LE(pe + 4);
      return { os: 'win32', cpu: { 0x8664: 'x64', 0xaa64: 'arm64' }[machine] ?? `pe machine ${machine}` };
    }
  }
  return undefined;
}

const [tos, tcpu] = target.split('-');
const want = { os: tos === 'alpine' ? 'linux' : tos, cpu: tcpu };
const kind = binaryKind(bin);
if (!kind || kind.os !== want.os || kind.cpu !== want.cpu) {
  fail(`${bin} is ${kind ? `a ${kind.os}-${kind.cpu} binary` : 'not an executable this script knows'}, not one for ${target}. Build builder-lsp for ${target} and set BUILDER_LSP_BIN.`);
}

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const serverDir = path.join(root, 'server');
const exe = path.join(serverDir, want.os === 'win32' ? 'builder-lsp.exe' : 'builder-lsp');
const out = path.join(root, `${pkg.name}-${target}-${pkg.version}.vsix`);
// The universal .vscodeignore plus the server folder.
const ignore = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'builder-vsix-')), 'vscodeignore');
fs.writeFileSync(ignore, `${fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8').trimEnd()}\n!server/\n!${path.relative(root, exe).split(path.sep).join('/')}\n`);

fs.rmSync(serverDir, { recursive: true, force: true });
fs.mkdirSync(serverDir);
try {
  fs.copyFileSync(bin, exe);
  fs.chmodSync(exe, 0o755);
  console.log(`package-target: ${target}: ${bin} (${(fs.statSync(bin).size / 1048576).toFixed(1)} MiB) → server/${path.basename(exe)}`);
  const vsce = path.join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'vsce.cmd' : 'vsce');
  execFileSync(vsce, ['package', '--target', target, '--no-dependencies', '--ignoreFile', ignore, '-o', out], { cwd: root, stdio: 'inherit' });
} finally {
  fs.rmSync(serverDir, { recursive: true, force: true });
  fs.rmSync(path.dirname(ignore), { recursive: true, force: true });
}
console.log(`package-target: wrote ${path.relative(process.cwd(), out) || out}`);
