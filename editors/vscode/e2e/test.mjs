// End to end in real VS Code (code-server's workbench in headless Chromium, driven by
// Playwright): "Builder: Apply Answer from Clipboard" lands two files, "File: Save All" writes
// them, and their content on disk is checked. Provisioning is e2e/run.sh's job; this script
// gets everything through the environment:
//   E2E_NODE            node >= 24 for code-server
//   E2E_CODE_SERVER     code-server's entry (…/node_modules/code-server/out/node/entry.js)
//   E2E_PLAYWRIGHT      the playwright-core package folder
//   E2E_VSIX            the extension package
//   BUILDER_LSP_BIN     the server binary
//   E2E_CHROMIUM        default /usr/bin/chromium
//   E2E_SCREENSHOT      where to save the final screenshot (default: e2e-result.png in the cwd)
//   E2E_TIMEOUT_MS      overall budget (default 240000)
import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`${k} is not set (run e2e/run.sh)`);
  return v;
};
const NODE = env('E2E_NODE');
const CODE_SERVER = env('E2E_CODE_SERVER');
const PLAYWRIGHT = env('E2E_PLAYWRIGHT');
const VSIX = path.resolve(env('E2E_VSIX'));
const SERVER = path.resolve(env('BUILDER_LSP_BIN'));
const CHROMIUM = env('E2E_CHROMIUM', '/usr/bin/chromium');
const SCREENSHOT = path.resolve(env('E2E_SCREENSHOT', 'e2e-result.png'));
const BUDGET = Number(env('E2E_TIMEOUT_MS', '240000'));

const t0 = Date.now();
const log = (...a) => console.log(`[e2e +${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
const require = createRequire(import.meta.url);
const { chromium } = require(PLAYWRIGHT);

const APP = 'export default function App() {\n  return <h1 className="title">Hello from Builder</h1>;\n}\n';
const CSS = '.title { color: rebeccapurple; }\n';
const ANSWER = [
  '<explanation>Two files from the e2e test.</explanation>',
  '<file path="src/App.jsx">',
  APP + '</file>',
  '<file path="src/styles/app.css">',
  CSS + '</file>',
].join('\n');

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitFor(what, fn, timeoutMs, everyMs = 250) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'builder-e2e-'));
const userData = path.join(tmp, 'user-data');
const extensions = path.join(tmp, 'extensions');
const workspace = path.join(tmp, 'my-app');
const state = path.join(tmp, 'state');
for (const d of [userData, extensions, workspace, state]) fs.mkdirSync(d, { recursive: true });
fs.writeFileSync(path.join(workspace, 'package.json'), JSON.stringify({ name: 'my-app', private: true }, null, 2) + '\n');

const settings = {
  'security.workspace.trust.enabled': false,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'update.mode': 'none',
  'builder.serverPath': SERVER,
};
for (const sub of ['User', 'Machine']) {
  fs.mkdirSync(path.join(userData, sub), { recursive: true });
  fs.writeFileSync(path.join(userData, sub, 'settings.json'), JSON.stringify(settings, null, 2));
}

const csArgs = ['--config', path.join(tmp, 'config.yaml'), '--user-data-dir', userData, '--extensions-dir', extensions];
log('installing the extension', VSIX);
const installOut = execFileSync(NODE, [CODE_SERVER, ...csArgs, '--install-extension', VSIX], {
  encoding: 'utf8',
  env: { ...process.env, PATH: `${path.dirname(NODE)}:${process.env.PATH}` },
});
log(installOut.trim().split('\n').pop());
if (!fs.readdirSync(extensions).some((d) => d.startsWith('builder-lsp.builder-lsp'))) {
  throw new Error(`extension not installed in ${extensions}: ${installOut}`);
}

const port = await freePort();
const cs = spawn(
  NODE,
  [
    CODE_SERVER,
    ...csArgs,
    '--auth',
    'none',
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    workspace,
  ],
  {
    env: {
      ...process.env,
      PATH: `${path.dirname(NODE)}:${process.env.PATH}`,
      BUILDER_STATE_DIR: state,
      XDG_STATE_HOME: state,
      BUILDER_LOG: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  },
);
let csLog = '';
cs.stdout.on('data', (d) => (csLog += d));
cs.stderr.on('data', (d) => (csLog += d));

let browser;
let failed = false;
const timer = setTimeout(() => {
  console.error(`[e2e] over budget (${BUDGET} ms); code-server log:\n${csLog.slice(-4000)}`);
  cleanup(2);
}, BUDGET);

function cleanup(code) {
  clearTimeout(timer);
  try {
    process.kill(-cs.pid, 'SIGTERM');
  } catch {
    // already gone
  }
  const done = () => {
    fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(code);
  };
  if (browser) browser.close().then(done, done);
  else done();
}

try {
  const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`;
  await waitFor('code-server to listen', () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok), 60000, 300);
  log('code-server is up on', port);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: `http://127.0.0.1:${port}` });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
  log('workbench loaded');

  // The extension activates on workspaceContains:package.json and starts the server; its status
  // bar item shows once it is active.
  await page.waitForSelector('text=No sandbox', { timeout: 60000 });
  log('extension active (sandbox status item visible)');

  await page.evaluate((text) => navigator.clipboard.writeText(text), ANSWER);
  const back = await page.evaluate(() => navigator.clipboard.readText());
  if (back !== ANSWER) throw new Error('the browser clipboard did not keep the answer');

  const runCommand = async (title) => {
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 10000 });
    await input.fill(`>${title}`);
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
    await row.waitFor({ state: 'visible', timeout: 10000 });
    await page.keyboard.press('Enter');
    log('ran', title);
  };

  await runCommand('Builder: Apply Answer from Clipboard');
  const app = path.join(workspace, 'src/App.jsx');
  const css = path.join(workspace, 'src/styles/app.css');
  await waitFor('both files to exist on disk', () => fs.existsSync(app) && fs.existsSync(css), 30000);
  log('files exist (created by the workspace edit)');
  await page.waitForSelector('.notifications-toasts >> text=/created/', { timeout: 15000 });
  log('summary notification shown');

  const content = () => [fs.readFileSync(app, 'utf8'), fs.readFileSync(css, 'utf8')];
  if (content()[0] !== APP || content()[1] !== CSS) {
    await runCommand('File: Save All');
  }
  await waitFor('saved content', () => content()[0] === APP && content()[1] === CSS, 20000);
  log('content on disk matches the answer');

  // Show what a person sees: the new file open in the editor.
  await page.keyboard.press('Control+P');
  await page.keyboard.type('App.jsx');
  await page.waitForTimeout(500);
  await page.keyboard.press('Enter');
  await page.waitForTimeout(1500);
  await page.screenshot({ path: SCREENSHOT });
  log('screenshot', SCREENSHOT);
  log('PASS');
} catch (e) {
  failed = true;
  console.error(`[e2e] FAIL: ${e.stack ?? e}`);
  console.error(`[e2e] code-server log (tail):\n${csLog.slice(-3000)}`);
  try {
    const pages = browser?.contexts()[0]?.pages() ?? [];
    if (pages[0]) await pages[0].screenshot({ path: SCREENSHOT });
    console.error(`[e2e] screenshot of the failure: ${SCREENSHOT}`);
  } catch {
    // no page to show
  }
}
cleanup(failed ? 1 : 0);
