// The extension's palette commands and what each one calls on the server. One table feeds
// package.json's `contributes.commands` (checked by a test), the registration in extension.ts,
// and the contract test against the server's advertised `executeCommandProvider.commands`.
//
// Palette ids live in the `builderLsp.` namespace on purpose: vscode-languageclient registers
// every command the server advertises (`builder.generate`, …) as a VS Code command of the same
// name, so the extension's own commands must not reuse those ids.

export interface PaletteCommand {
  /** VS Code command id. */
  readonly id: string;
  /** Title exactly as the palette shows it. */
  readonly title: string;
  /** Server commands (`workspace/executeCommand`) this palette command may call. */
  readonly server: readonly string[];
  /** For commands that call no server command: what they do instead (documented in README). */
  readonly clientOnly?: string;
}

export const PALETTE: readonly PaletteCommand[] = [
  { id: 'builderLsp.generate', title: 'Builder: Generate…', server: ['builder.models', 'builder.generate'] },
  { id: 'builderLsp.applyClipboard', title: 'Builder: Apply Answer from Clipboard', server: ['builder.apply'] },
  {
    id: 'builderLsp.sandboxCreate',
    title: 'Builder: Create Sandbox',
    server: ['builder.sandbox.create', 'builder.sandbox.status'],
  },
  { id: 'builderLsp.openPreview', title: 'Builder: Open Preview', server: ['builder.sandbox.status'] },
  { id: 'builderLsp.sandboxStatus', title: 'Builder: Sandbox Status', server: ['builder.sandbox.status'] },
  {
    id: 'builderLsp.sandboxKill',
    title: 'Builder: Kill Sandbox',
    server: ['builder.sandbox.kill', 'builder.sandbox.status'],
  },
  { id: 'builderLsp.installPackages', title: 'Builder: Install Packages…', server: ['builder.installPackages'] },
  {
    id: 'builderLsp.detectPackages',
    title: 'Builder: Detect Missing Packages',
    server: ['builder.detectPackages', 'builder.installPackages'],
  },
  { id: 'builderLsp.exportZip', title: 'Builder: Export Zip', server: ['builder.createZip'] },
  { id: 'builderLsp.resetConversation', title: 'Builder: Reset Conversation', server: ['builder.conversation.reset'] },
  { id: 'builderLsp.cancelTask', title: 'Builder: Cancel Running Task', server: ['builder.task.cancel'] },
  {
    id: 'builderLsp.showHistory',
    title: 'Builder: Show History',
    server: ['builder.history', 'builder.diff', 'builder.revert'],
  },
  {
    id: 'builderLsp.undoLastGeneration',
    title: 'Builder: Undo Last Generation',
    server: ['builder.history', 'builder.revert'],
  },
  {
    id: 'builderLsp.toggleCompletions',
    title: 'Builder: Toggle Inline Completions',
    server: [],
    clientOnly:
      'flips builder.completion.enabled (the status-bar item does the same); ghost text comes from textDocument/inlineCompletion',
  },
  {
    id: 'builderLsp.setApiKey',
    title: 'Builder: Set API Key…',
    server: [],
    clientOnly: 'stores the key in VS Code SecretStorage and restarts the server (keys reach it in initializationOptions.apiKeys)',
  },
  {
    id: 'builderLsp.showOutput',
    title: 'Builder: Show Output',
    server: [],
    clientOnly: 'shows the "Builder" output channel (model text as it streams, server log)',
  },
  {
    id: 'builderLsp.restartServer',
    title: 'Builder: Restart Server',
    server: [],
    clientOnly: 'stops and starts builder-lsp (re-reads builder.serverPath and the stored keys)',
  },
];

/**
 * The Builder view's commands (title-bar and inline actions of its trees; hidden from the
 * palette). The view's trees also read `builder.conversation.get`, `builder.sandbox.errors`
 * and `builder.models` (listed on Refresh).
 */
export const VIEW_COMMANDS: readonly PaletteCommand[] = [
  {
    id: 'builderLsp.view.refresh',
    title: 'Builder: Refresh View',
    server: ['builder.conversation.get', 'builder.history', 'builder.sandbox.errors', 'builder.models'],
  },
  { id: 'builderLsp.view.revert', title: 'Builder: Revert to Before This', server: ['builder.history', 'builder.revert'] },
  { id: 'builderLsp.view.diff', title: 'Builder: Show Diff', server: ['builder.diff'] },
];

/** Every server command the extension may call, sorted, without duplicates. */
export function serverCommandsUsed(table: readonly PaletteCommand[] = [...PALETTE, ...VIEW_COMMANDS]): string[] {
  return [...new Set(table.flatMap((c) => c.server))].sort();
}

/** Problems with the table itself: a command with neither a server command nor a client action. */
export function tableProblems(table: readonly PaletteCommand[] = PALETTE): string[] {
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const c of table) {
    if (ids.has(c.id)) problems.push(`${c.id}: duplicate id`);
    ids.add(c.id);
    if (!c.title.startsWith('Builder: ')) problems.push(`${c.id}: title must start with "Builder: "`);
    if (c.server.length === 0 && !c.clientOnly) problems.push(`${c.id}: maps to no server command and no client action`);
    if (c.id.startsWith('builder.')) problems.push(`${c.id}: collides with the server's command namespace`);
  }
  return problems;
}
