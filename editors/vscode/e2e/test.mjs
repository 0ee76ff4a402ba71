// End to end in real VS Code (code-server's workbench in headless Chromium, driven by
// Playwright): "Builder: Apply Answer from Clipboard" lands two files, saved by the extension
// (builder.saveAfterApply) with no Save All, and their content on disk is checked; typing in a file shows ghost text from the fake
// fill-in-the-middle endpoint and Tab inserts it; a generation against the fake is taken back by
// "Builder: Undo Last Generation" (files byte-identical to before, created files gone); Create
// Sandbox in a folder without package.json saves the template's files and opens the preview
// beside the code through code-server's /proxy/PORT/ route, where the app renders (DOM check,
// screenshot), an applied change hot-reloads it in place, and Open Preview twice keeps one tab;
// the server that runs is the one bundled in
// the linux-x64 package (no builder.serverPath). Provisioning is e2e/run.sh's job; this script
// gets everything through the environment:
//   E2E_NODE            node >= 24 for code-server
//   E2E_CODE_SERVER     code-server's entry (…/node_modules/code-server/out/node/entry.js)
//   E2E_PLAYWRIGHT      the playwright-core package folder
//   E2E_VSIX            the extension package (the linux-x64 one, with the server inside)
//   BUILDER_LSP_BIN     the server binary the package bundles (no builder.serverPath is set)
//   E2E_CHROMIUM        default /usr/bin/chromium
//   E2E_SCREENSHOT      where to save the final screenshot (default: e2e-result.png in the cwd)
//   E2E_TIMEOUT_MS      overall budget (default 240000)
import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
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
const BUDGET = Number(env('E2E_TIMEOUT_MS', '420000'));

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

// A loopback OpenAI-compatible endpoint. `POST /v1/chat/completions` ("Builder: Generate…")
// streams an answer with three files and records the Authorization header (the key must come
// from SecretStorage). `POST /v1/completions` is the completions API the `compatible/…`
// completion model uses: prompt + suffix in, `text_completion` SSE chunks out.
const KEY = `sk-e2e-${process.pid}-secret`;
const HERO = 'export function Hero() {\n  return <section className="hero">Fresh bread daily</section>;\n}\n';
const GEN_ANSWER = [
  '<explanation>A hero section.</explanation>\n',
  '<file path="src/components/Hero.jsx">\n',
  HERO,
  '</file>\n',
  '<file path="src/components/hero.css">.hero { padding: 2rem; }\n</file>\n',
  // An existing file changed too, so the undo has bytes to restore, not only files to delete.
  '<file path="src/App.jsx">import { Hero } from "./components/Hero";\nexport default function App() {\n  return <Hero />;\n}\n</file>\n',
];
const FIM_TEXT = ' + b;';
const fims = [];
const auths = [];
const listings = [];
const fake = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', async () => {
    if (req.method === 'POST' && req.url === '/v1/completions') {
      let b = {};
      try {
        b = JSON.parse(body);
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'invalid JSON body', type: 'invalid_request_error', param: null, code: null } }));
        return;
      }
      fims.push(b);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (text, finish) =>
        res.write(`data: ${JSON.stringify({ id: 'cmpl-e2e', object: 'text_completion', created: Math.floor(Date.now() / 1000), model: b.model, choices: [{ text, index: 0, logprobs: null, finish_reason: finish }] })}\n\n`);
      chunk(FIM_TEXT.slice(0, 3), null);
      chunk(FIM_TEXT.slice(3), null);
      chunk('', 'stop');
      res.end('data: [DONE]\n\n');
      return;
    }
    if (req.method === 'GET' && req.url === '/v1/models') {
      // The model picker's listing (builder.models {list: true}): OpenAI's list format.
      listings.push(req.headers.authorization ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'gpt-4.1', object: 'model', created: 1700000000, owned_by: 'e2e' }, { id: 'e2e-listed-model', object: 'model', created: 1700000000, owned_by: 'e2e' }] }));
      return;
    }
    auths.push(req.headers.authorization ?? '');
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const chunk of GEN_ANSWER) {
      res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: chunk }, finish_reason: null }] })}\n\n`);
      await new Promise((r) => setTimeout(r, 150));
    }
    res.write(`data: ${JSON.stringify({ choices: [{ delta: {}, finish_reason: 'stop' }] })}\n\n`);
    res.end('data: [DONE]\n\n');
  });
});
await new Promise((r) => fake.listen(0, '127.0.0.1', r));
const fakeUrl = `http://127.0.0.1:${fake.address().port}/v1`;

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
  'builder.baseUrls': { openai: fakeUrl, compatible: fakeUrl },
  'builder.completion.model': 'compatible/fim-e2e',
  // Only the inline suggestion: no suggest widget competing for Tab, no auto-closed brackets.
  'editor.quickSuggestions': { other: 'off', comments: 'off', strings: 'off' },
  'editor.suggestOnTriggerCharacters': false,
  'editor.inlineSuggest.enabled': true,
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
      // Only the key stored through the UI may reach the server.
      OPENAI_API_KEY: '',
      ANTHROPIC_API_KEY: '',
      GEMINI_API_KEY: '',
      GROQ_API_KEY: '',
      OPENROUTER_API_KEY: '',
      DEFAULT_AI_MODEL: '',
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
  fake.closeAllConnections();
  fake.close();
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
  // No builder.serverPath, no builder-lsp on PATH: the platform package's own binary runs.
  const bundled = path.join(extensions, fs.readdirSync(extensions).find((d) => d.startsWith('builder-lsp.builder-lsp')), 'server', 'builder-lsp');
  const running = await waitFor('the bundled builder-lsp running', () => {
    const procs = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map((d) => {
      try {
        return fs.readlinkSync(`/proc/${d}/exe`);
      } catch {
        return '';
      }
    });
    return procs.find((exe) => exe === bundled);
  }, 20000);
  if (fs.statSync(running).size !== fs.statSync(SERVER).size) throw new Error(`${running} is not the binary bundled from ${SERVER}`);
  log('the server runs from the platform package:', path.relative(tmp, running));

  await page.evaluate((text) => navigator.clipboard.writeText(text), ANSWER);
  const back = await page.evaluate(() => navigator.clipboard.readText());
  if (back !== ANSWER) throw new Error('the browser clipboard did not keep the answer');

  const runCommand = async (title) => {
    // A key press can land while focus is moving (a toast, a view closing) and open nothing:
    // try again, alternating the palette's two keys, before calling it a failure.
    const input = page.locator('.quick-input-widget input');
    for (let attempt = 0; ; attempt++) {
      await page.keyboard.press(attempt % 2 === 0 ? 'F1' : 'Control+Shift+P');
      try {
        await input.waitFor({ state: 'visible', timeout: 3000 });
        break;
      } catch (e) {
        if (attempt >= 4) throw e;
        await page.keyboard.press('Escape');
      }
    }
    await input.fill(`>${title}`);
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
    await row.waitFor({ state: 'visible', timeout: 10000 });
    await page.keyboard.press('Enter');
    log('ran', title);
  };

  const pickRow = async (text) => {
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: text }).first();
    await row.waitFor({ state: 'visible', timeout: 15000 });
    await row.click();
    log('picked', text);
  };

  await runCommand('Builder: Apply Answer from Clipboard');
  const app = path.join(workspace, 'src/App.jsx');
  const css = path.join(workspace, 'src/styles/app.css');
  await waitFor('both files to exist on disk', () => fs.existsSync(app) && fs.existsSync(css), 30000);
  log('files exist (created by the workspace edit)');
  await page.waitForSelector('.notifications-toasts >> text=/created/', { timeout: 15000 });
  log('summary notification shown');

  // builder.saveAfterApply (default on): the extension saves what the edit touched, so no
  // file is left at 0 bytes on disk behind an unsaved tab, and no Save All is needed.
  const content = () => [fs.readFileSync(app, 'utf8'), fs.readFileSync(css, 'utf8')];
  await waitFor('content saved by the extension, without Save All', () => content()[0] === APP && content()[1] === CSS, 20000);
  log('content on disk matches the answer (saved when the edit landed)');

  // Inline completions: type in a file, the ghost text from the fake FIM endpoint appears, Tab
  // inserts it, and the saved file has it.
  const sum = path.join(workspace, 'src/sum.js');
  fs.writeFileSync(sum, 'export function add(a, b) {\n  return \n}\n');
  await page.keyboard.press('Control+P');
  await page.keyboard.type('sum.js');
  await page.waitForTimeout(500);
  await page.keyboard.press('Enter');
  await page.waitForSelector('.monaco-editor .view-lines >> text=/return/', { timeout: 15000 });
  await page.locator('.monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+Home');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('End');
  await page.keyboard.type('a', { delay: 50 });
  // The ghost text is rendered in one or more decoration spans after the cursor.
  const ghost = page.locator('.monaco-editor .ghost-text-decoration');
  const shown = await waitFor('ghost text', async () => {
    const t = (await ghost.allTextContents()).join('').replace(/\u00a0/g, ' ');
    return t.includes('+ b;') ? t : undefined;
  }, 20000).catch(async (e) => {
    throw new Error(`${e.message}; ghost spans: ${JSON.stringify(await ghost.allTextContents())}`);
  });
  log('ghost text shown:', JSON.stringify(shown));
  const fim = fims[fims.length - 1];
  if (fim.model !== 'fim-e2e' || !String(fim.prompt).endsWith('  return a') || !String(fim.suffix).startsWith('\n}')) {
    throw new Error(`the FIM endpoint got ${JSON.stringify({ model: fim.model, prompt: fim.prompt, suffix: fim.suffix })}`);
  }
  log('the FIM endpoint got prompt + suffix around the cursor');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Control+S');
  const expectedSum = 'export function add(a, b) {\n  return a + b;\n}\n';
  await waitFor('the accepted completion on disk', () => fs.readFileSync(sum, 'utf8') === expectedSum, 15000);
  log('Tab inserted the completion; saved file has it');

  // The toggle: off is persisted in the user settings and no request goes out while it is off.
  await runCommand('Builder: Toggle Inline Completions');
  const userSettings = path.join(userData, 'User', 'settings.json');
  await waitFor('builder.completion.enabled: false in the user settings', () => /"builder\.completion\.enabled":\s*false/.test(fs.readFileSync(userSettings, 'utf8')), 10000);
  await page.locator('.monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+End');
  const asked = fims.length;
  await page.keyboard.type('// c', { delay: 50 });
  await page.waitForTimeout(1500);
  if (fims.length !== asked) throw new Error(`${fims.length - asked} completion request(s) while the toggle was off`);
  log('toggle off: persisted, no completion requests');
  await runCommand('Builder: Toggle Inline Completions');
  await waitFor('builder.completion.enabled: true in the user settings', () => /"builder\.completion\.enabled":\s*true/.test(fs.readFileSync(userSettings, 'utf8')), 10000);
  await runCommand('File: Revert File');

  // Store a key through the UI (SecretStorage), then generate against the loopback model.
  await runCommand('Builder: Set API Key…');
  await pickRow('OpenAI');
  const keyBox = page.locator('.quick-input-widget input[type="password"]');
  await keyBox.waitFor({ state: 'visible', timeout: 10000 });
  await keyBox.fill(KEY);
  await page.keyboard.press('Enter');
  await page.waitForSelector('.notifications-toasts >> text=/OpenAI key stored/', { timeout: 15000 });
  log('key stored');

  // Everything in the project before the generation, byte for byte (Undo must bring it back).
  const snapshot = () => {
    const out = {};
    const walk = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const f = path.join(d, e.name);
        if (e.isDirectory()) walk(f);
        else out[path.relative(workspace, f)] = fs.readFileSync(f).toString('base64');
      }
    };
    walk(workspace);
    return out;
  };
  const beforeGen = snapshot();

  await runCommand('Builder: Generate…');
  const promptBox = page.locator('.quick-input-widget input');
  await promptBox.waitFor({ state: 'visible', timeout: 10000 });
  await promptBox.fill('a hero section for a bakery');
  await page.keyboard.press('Enter');
  // The picker fills in listed models while open (rows move): filter to the one wanted first.
  await page.locator('.quick-input-widget input[placeholder*="Model"], .quick-input-widget input').first().waitFor({ state: 'visible', timeout: 10000 });
  await page.waitForTimeout(500);
  await page.keyboard.type('openai/gpt-4.1');
  await pickRow('openai/gpt-4.1');
  const hero = path.join(workspace, 'src/components/Hero.jsx');
  await waitFor('generated files on disk', () => fs.existsSync(hero) && fs.existsSync(path.join(workspace, 'src/components/hero.css')), 30000);
  await page.waitForSelector('.notifications-toasts >> text=/created.*\\[openai\\/gpt-4\\.1\\]/', { timeout: 20000 });
  await page.waitForSelector('.notifications-toasts .monaco-button >> text=Undo', { timeout: 5000 });
  log('generation summary shown, with an Undo button');
  // The Builder view (activity bar): its History lists the generation, its Conversation the prompt.
  await page.locator('.activitybar .action-item a[aria-label^="Builder"]').first().click();
  const historyRow = page.locator('.pane', { hasText: 'History' }).locator('.monaco-list-row', { hasText: 'a hero section for a bakery' });
  await historyRow.first().waitFor({ state: 'visible', timeout: 15000 }).catch(async (e) => {
    const panes = await page.locator('.sidebar .pane').allInnerTexts();
    throw new Error(`${e.message}; Builder view panes: ${JSON.stringify(panes)}`);
  });
  await page.locator('.pane', { hasText: 'Conversation' }).locator('.monaco-list-row', { hasText: 'a hero section for a bakery' }).first().waitFor({ state: 'visible', timeout: 15000 });
  log('the Builder view lists the generation (History, Conversation)');
  await page.keyboard.press('Control+Shift+E');
  if (auths.length === 0 || auths.some((a) => a !== `Bearer ${KEY}`)) {
    throw new Error(`the model server saw ${JSON.stringify(auths.map((a) => (a === `Bearer ${KEY}` ? 'the stored key' : a ? 'another key' : 'no key')))}`);
  }
  log('the stored key reached the model as Bearer');
  if (!listings.includes(`Bearer ${KEY}`)) throw new Error(`the model picker did not list OpenAI's models with the stored key: ${JSON.stringify(listings.map((a) => (a === `Bearer ${KEY}` ? 'the stored key' : a ? 'another key' : 'no key')))}`);
  log("the model picker listed the server's own models (GET /v1/models)");
  // The Builder output channel streamed the raw answer.
  await page.waitForSelector('.part.panel >> text=/Fresh.bread.daily/', { timeout: 10000 });
  log('model text streamed into the Builder output channel');
  await runCommand('File: Save All');
  await waitFor('saved generated content', () => fs.readFileSync(hero, 'utf8') === HERO, 20000);
  log('generated content on disk matches');
  for (const f of [path.join(userData, 'User', 'settings.json'), path.join(userData, 'Machine', 'settings.json'), path.join(workspace, '.vscode', 'settings.json')]) {
    if (fs.existsSync(f) && fs.readFileSync(f, 'utf8').includes(KEY)) throw new Error(`the API key was written to ${f}`);
  }
  log('no settings file holds the key');
  const holders = [];
  const scan = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) scan(f);
      else if (e.isFile() && fs.statSync(f).size < 5e6 && fs.readFileSync(f).includes(KEY)) holders.push(path.relative(tmp, f));
    }
  };
  scan(userData);
  log(holders.length ? `note: the key is stored in ${holders.join(', ')} (VS Code's secret storage)` : 'the key is in no file of the user-data dir (secret storage lives in the browser)');

  // A sandbox command answers with a notification either way: the status, or the server's own
  // error (an older server says "… is not available yet") — never silence.
  await runCommand('Builder: Sandbox Status');
  await page.waitForSelector('.notifications-toasts >> text=/Builder: .*(sandbox|not available)/i', { timeout: 15000 });
  log('sandbox status answered');

  // Show what a person sees: the new file open in the editor.
  await page.keyboard.press('Control+P');
  await page.keyboard.type('Hero.jsx');
  await page.waitForTimeout(500);
  await page.keyboard.press('Enter');
  await page.waitForTimeout(1500);
  await page.screenshot({ path: SCREENSHOT });
  log('screenshot', SCREENSHOT);

  // Undo Last Generation: back to the bytes before the generation, created files gone.
  await runCommand('Builder: Undo Last Generation');
  await page.waitForSelector('.notifications-toasts >> text=/Reverted 3 files/', { timeout: 20000 });
  log('revert summary shown');
  await runCommand('File: Save All');
  const same = () => JSON.stringify(snapshot()) === JSON.stringify(beforeGen);
  await waitFor('the project byte-identical to before the generation', same, 20000).catch((e) => {
    const now = snapshot();
    const diff = [...new Set([...Object.keys(now), ...Object.keys(beforeGen)])].filter((k) => now[k] !== beforeGen[k]);
    throw new Error(`${e.message}; differing: ${diff.join(', ')}`);
  });
  if (fs.existsSync(hero) || fs.existsSync(path.join(workspace, 'src/components/hero.css'))) throw new Error('created files are still there');
  log('undo: every file byte-identical to before the generation, created files gone');

  // Show History: the quick pick lists the generation and the revert; Show Diff opens a diff.
  await runCommand('Builder: Show History');
  await pickRow('a hero section for a bakery');
  await pickRow('Show Diff');
  await page.waitForSelector('.monaco-editor .view-lines >> text=/^[+].*Fresh.bread.daily/', { timeout: 15000 });
  await page.waitForSelector('.tab.active >> text=/\\.diff/', { timeout: 5000 });
  log('Show History → Show Diff opened the checkpoint diff');

  // The Undo button of a result message: apply an answer that rewrites sum.js, click Undo.
  const sumBefore = fs.readFileSync(sum, 'utf8');
  await page.evaluate((text) => navigator.clipboard.writeText(text), '<file path="src/sum.js">export const add = (a, b) => a + b;\n</file>');
  await runCommand('Builder: Apply Answer from Clipboard');
  const toast = page.locator('.notification-toast', { hasText: 'updated src/sum.js' }).last();
  await toast.waitFor({ state: 'visible', timeout: 15000 });
  // Clicked the moment the toast appears, the button's action did not run in 3 of 4 runs here
  // (the toast closed, nothing happened); with this settle it ran in each of the 4 runs since.
  await page.waitForTimeout(1500);
  await toast.locator('.monaco-button', { hasText: 'Undo' }).click();
  await page.waitForSelector('.notifications-toasts >> text=/Reverted 1 file — restored src\\/sum\\.js/', { timeout: 15000 }).catch(async (e) => {
    const msgs = await page.locator('.notification-list-item-message').allInnerTexts();
    const dialog = await page.locator('.monaco-dialog-box').allInnerTexts();
    throw new Error(`${e.message}; notifications: ${JSON.stringify(msgs)}; dialogs: ${JSON.stringify(dialog)}`);
  });
  await runCommand('File: Save All');
  await waitFor('sum.js back to its bytes before the apply', () => fs.readFileSync(sum, 'utf8') === sumBefore, 15000);
  log('the Undo button of the apply result took it back');

  // Create Sandbox in a project without package.json: the template's files land saved (none at
  // 0 bytes on disk), and the preview opens beside the code through code-server's port proxy
  // (a path prefix: the sandbox's Vite serves under it) and renders the app.
  fs.unlinkSync(path.join(workspace, 'package.json'));
  await runCommand('Builder: Create Sandbox');
  await page.waitForSelector('.notifications-toasts >> text=/Sandbox .* is running at .*template file/', { timeout: 240000 }).catch(async (e) => {
    const msgs = await page.locator('.notification-list-item-message').allInnerTexts();
    throw new Error(`${e.message}; notifications: ${JSON.stringify(msgs)}`);
  });
  log('sandbox running');
  const templateFiles = ['package.json', 'vite.config.js', 'tailwind.config.js', 'postcss.config.js', 'index.html', 'src/main.jsx', 'src/index.css'];
  await waitFor('the template files saved with content', () => templateFiles.every((f) => fs.existsSync(path.join(workspace, f)) && fs.statSync(path.join(workspace, f)).size > 0), 20000).catch((e) => {
    throw new Error(`${e.message}; sizes: ${JSON.stringify(templateFiles.map((f) => [f, fs.existsSync(path.join(workspace, f)) ? fs.statSync(path.join(workspace, f)).size : null]))}`);
  });
  if (!JSON.parse(fs.readFileSync(path.join(workspace, 'package.json'), 'utf8')).devDependencies?.vite) throw new Error('package.json on disk has no vite');
  const empty = Object.entries(snapshot()).filter(([, b64]) => b64 === '').map(([f]) => f);
  if (empty.length) throw new Error(`files at 0 bytes on disk: ${empty.join(', ')}`);
  log('template files on disk, none empty, without Save All');
  const appFrame = await waitFor('the preview frame (through the proxy)', () => page.frames().find((f) => /\/proxy\/\d+\//.test(f.url())), 30000).catch((e) => {
    throw new Error(`${e.message}; frames: ${JSON.stringify(page.frames().map((f) => f.url()))}`);
  });
  log('preview frame at', appFrame.url());
  await waitFor('the app rendered in the preview', async () => (await appFrame.locator('h1.title').textContent({ timeout: 1000 }).catch(() => null)) === 'Hello from Builder', 60000).catch(async (e) => {
    const body = await appFrame.locator('body').innerHTML({ timeout: 2000 }).catch((x) => `(${x.message})`);
    throw new Error(`${e.message}; frame body: ${body.slice(0, 1500)}`);
  });
  const previewShot = SCREENSHOT.replace(/\.png$/, '') + '-preview.png';
  await page.screenshot({ path: previewShot });
  log('the preview renders the app through the proxy (DOM check); screenshot', previewShot);
  // Hot reload through the proxy: an applied change reaches the sandbox and the panel updates in
  // place (Vite's HMR WebSocket goes through /proxy/PORT/ too; the page is not reloaded).
  await appFrame.evaluate(() => {
    globalThis.__builderMarker = 'same page';
  });
  const HMR_APP = APP.replace('Hello from Builder', 'Hello again, hot');
  await page.evaluate((text) => navigator.clipboard.writeText(text), `<file path="src/App.jsx">${HMR_APP}</file>`);
  await runCommand('Builder: Apply Answer from Clipboard');
  await waitFor('the preview to show the change', async () => (await appFrame.locator('h1.title').textContent({ timeout: 1000 }).catch(() => null)) === 'Hello again, hot', 30000);
  const marker = await appFrame.evaluate(() => globalThis.__builderMarker);
  if (marker !== 'same page') throw new Error('the preview reloaded instead of a hot update');
  log('an applied change hot-reloaded the preview through the proxy (same page)');
  await runCommand('Builder: Open Preview');
  await page.waitForTimeout(1000);
  await runCommand('Builder: Open Preview');
  await page.waitForTimeout(1000);
  const previewTabs = await page.locator('.tab', { hasText: 'Builder Preview' }).count();
  if (previewTabs !== 1) throw new Error(`${previewTabs} Builder Preview tabs after Open Preview twice`);
  log('Open Preview twice: one preview tab');
  await runCommand('Builder: Kill Sandbox');
  await page.waitForSelector('.notifications-toasts >> text=/stopped/', { timeout: 20000 });
  log('sandbox killed');

  // A wrong builder.serverPath: the extension restarts, says what to install, offers the settings.
  const bad = path.join(tmp, 'no-such-builder-lsp');
  // Both files: `builder.serverPath` is machine-overridable, so the Machine (server-side) file wins.
  for (const sub of ['User', 'Machine']) {
    fs.writeFileSync(path.join(userData, sub, 'settings.json'), JSON.stringify({ ...settings, 'builder.serverPath': bad }, null, 2));
  }
  await page.waitForSelector('.notifications-toasts >> text=/no executable builder-lsp is there.*cargo install builder-lsp/', { timeout: 20000 });
  await page.waitForSelector('.notifications-toasts >> text=Open Settings', { timeout: 5000 });
  log('a missing server binary is explained, with Open Settings');
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
