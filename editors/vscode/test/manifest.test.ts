// package.json agrees with the command table and the settings the extension reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { PALETTE, VIEW_COMMANDS } from '../src/commands';
import { CLIENT_KEYS, SERVER_KEYS } from '../src/settings';

const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const src = fs.readFileSync(path.join(root, 'src', 'extension.ts'), 'utf8');

test('contributed commands are exactly the palette table', () => {
  const contributed = pkg.contributes.commands.map((c: { command: string; title: string }) => [c.command, c.title]);
  assert.deepEqual(contributed, [...PALETTE, ...VIEW_COMMANDS].map((c) => [c.id, c.title]));
  for (const c of VIEW_COMMANDS) {
    assert.ok(src.includes(`'${c.id}'`), `extension.ts registers a handler for ${c.id}`);
    assert.ok(pkg.contributes.menus.commandPalette.some((m: { command: string; when: string }) => m.command === c.id && m.when === 'false'), `${c.id} hidden from the palette`);
  }
  for (const c of PALETTE) {
    assert.ok(pkg.activationEvents.includes(`onCommand:${c.id}`), `activation event for ${c.id}`);
    assert.ok(src.includes(`'${c.id}'`), `extension.ts registers a handler for ${c.id}`);
  }
});

test('activation: the seven languages and workspaceContains:package.json', () => {
  for (const lang of ['javascript', 'javascriptreact', 'typescript', 'typescriptreact', 'css', 'html', 'json']) {
    assert.ok(pkg.activationEvents.includes(`onLanguage:${lang}`), lang);
  }
  assert.ok(pkg.activationEvents.includes('workspaceContains:package.json'));
});

test('every setting the extension sends or reads is contributed with a description', () => {
  const props = pkg.contributes.configuration.properties as Record<string, Record<string, unknown>>;
  const described = (k: string) => typeof props[k]?.markdownDescription === 'string' || typeof props[k]?.description === 'string';
  const expected = [
    ...SERVER_KEYS.filter((k) => k !== 'sandbox' && k !== 'completion' && k !== 'autoFix').map((k) => `builder.${k}`),
    'builder.autoFix.mode',
    'builder.autoFix.maxRounds',
    'builder.completion.model',
    'builder.completion.enabled',
    'builder.sandbox.provider',
    'builder.sandbox.isolation',
    'builder.serverPath',
    'builder.trace.server',
  ];
  for (const k of expected) assert.ok(described(k), `${k} contributed with a description`);
  for (const k of Object.keys(props)) {
    const top = k.split('.')[1];
    assert.ok(
      (SERVER_KEYS as readonly string[]).includes(top) || (CLIENT_KEYS as readonly string[]).includes(top),
      `${k} is neither sent to the server nor read by the client`,
    );
    assert.ok(!/apiKey/i.test(k), 'API keys are never a setting');
  }
  assert.deepEqual(props['builder.sandbox.provider'].enum, ['local', 'e2b', 'vercel']);
  assert.deepEqual(props['builder.sandbox.isolation'].enum, ['auto', 'bwrap', 'none']);
  assert.equal(props['builder.baseUrls'].type, 'object');
  assert.deepEqual(props['builder.review'].enum, ['off', 'on']);
  assert.equal(props['builder.review'].default, 'off');
  assert.equal(props['builder.completion.enabled'].default, true);
  assert.equal(props['builder.completion.model'].default, null, 'no completion model by default: no requests');
});

test('the completion toggle and history commands are registered and wired to what they do', () => {
  assert.ok(src.includes('registerProposedFeatures()'), 'the client registers the inline completion feature');
  assert.ok(src.includes('provideInlineCompletionItems'), 'the middleware gates requests on builder.completion.enabled');
  assert.ok(src.includes("'builder.completion'"), 'the status item is a contributed status bar item id');
  for (const id of ['builderLsp.showHistory', 'builderLsp.undoLastGeneration', 'builderLsp.toggleCompletions']) {
    assert.ok(PALETTE.some((c) => c.id === id), `${id} in the palette table`);
  }
});

test('manifest basics for vsce', () => {
  assert.equal(pkg.publisher, 'builder-lsp');
  assert.equal(pkg.name, 'builder-lsp');
  assert.equal(pkg.displayName, 'Builder');
  assert.equal(pkg.main, './dist/extension.js');
  assert.equal(pkg.engines.vscode, '^1.90.0');
  assert.match(pkg.dependencies['vscode-languageclient'], /^\^9\./);
});

// The capabilities the contract tests send (test/lsp.ts) mirror what the installed
// vscode-languageclient declares: pinned here, so an upgrade that changes them fails loudly.
test('vscode-languageclient declares inline completion (proposed feature) and change annotations', () => {
  const lib = path.join(root, 'node_modules', 'vscode-languageclient', 'lib', 'common');
  const inline = fs.readFileSync(path.join(lib, 'inlineCompletion.js'), 'utf8');
  assert.match(inline, /ensure\)\(\(0, features_1\.ensure\)\(capabilities, 'textDocument'\), 'inlineCompletion'\);\s*inlineCompletion\.dynamicRegistration = true/);
  assert.match(inline, /registerInlineCompletionItemProvider/);
  assert.match(inline, /middleware\.provideInlineCompletionItems/, 'the middleware hook the toggle uses');
  const client = fs.readFileSync(path.join(lib, 'client.js'), 'utf8');
  assert.match(client, /ProposedFeatures[\s\S]*new inlineCompletion_1\.InlineCompletionItemFeature\(_client\)/);
  assert.match(client, /workspaceEdit\.changeAnnotationSupport = \{\s*groupsOnLabel: true\s*\}/);
});

test('packaging: a 128x128 PNG icon, repository, CHANGELOG, minified bundle, the platform script', () => {
  assert.equal(pkg.icon, 'images/icon.png');
  const png = fs.readFileSync(path.join(root, pkg.icon));
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  assert.equal(png.subarray(12, 16).toString('latin1'), 'IHDR');
  assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [128, 128], 'icon is 128x128');
  assert.deepEqual(pkg.repository, { type: 'git', url: 'https://github.com/builder-lsp/builder-lsp' });
  assert.match(fs.readFileSync(path.join(root, 'CHANGELOG.md'), 'utf8'), /^# Changelog\n[\s\S]*## 0\.1\.0/);
  assert.ok(!/--allow-missing-repository/.test(pkg.scripts.package), 'the repository field makes the flag unneeded');
  assert.equal(pkg.scripts.package, 'vsce package --no-dependencies', 'the universal package stays as it was');
  assert.equal(pkg.scripts['package:linux-x64'], 'node tools/package-target.mjs linux-x64');
  assert.equal(pkg.scripts['vscode:prepublish'], 'node esbuild.mjs --production');
  assert.match(fs.readFileSync(path.join(root, 'esbuild.mjs'), 'utf8'), /minify: production/);
  // What the .vsix carries: the icon and changelog, never server/ (only the platform script adds it).
  const ignore = fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8').split('\n').map((l) => l.trim());
  assert.equal(ignore[0], '**');
  for (const f of ['!dist/extension.js', '!package.json', '!README.md', '!LICENSE', '!CHANGELOG.md', '!images/icon.png']) {
    assert.ok(ignore.includes(f), `.vscodeignore keeps ${f}`);
  }
  assert.ok(!ignore.some((l) => l.startsWith('!') && l.includes('server')), 'the universal .vsix has no server/');
  // The extension looks for the bundled binary where the script puts it.
  const script = fs.readFileSync(path.join(root, 'tools', 'package-target.mjs'), 'utf8');
  assert.match(script, /path\.join\(serverDir, want\.os === 'win32' \? 'builder-lsp\.exe' : 'builder-lsp'\)/);
  assert.match(script, /chmodSync\(exe, 0o755\)/);
  assert.ok(src.includes('bundledServerPath(ctx.extensionPath)'), 'extension.ts looks for the bundled binary');
});

test('the Builder view: an activity-bar container whose views extension.ts registers', () => {
  const container = pkg.contributes.viewsContainers.activitybar.find((c: { id: string }) => c.id === 'builder');
  assert.ok(container, 'activity-bar container "builder"');
  assert.ok(fs.existsSync(path.join(root, container.icon)), container.icon);
  const ignore = fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8');
  assert.ok(ignore.includes(`!${container.icon}`), 'the view icon is packaged');
  const ids = pkg.contributes.views.builder.map((v: { id: string }) => v.id);
  assert.deepEqual(ids, ['builder.prompt', 'builder.conversation', 'builder.history', 'builder.sandbox', 'builder.providers']);
  for (const id of ids) assert.ok(src.includes(`'${id}'`), `extension.ts registers ${id}`);
});
