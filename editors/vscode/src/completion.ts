// Inline completions (ghost text, Tab accepts): what the status-bar toggle shows, and whether the
// extension asks the server at all. The provider itself is vscode-languageclient's
// InlineCompletionItemFeature (a "proposed" feature in client 9, registered by extension.ts): it
// declares `textDocument.inlineCompletion`, so builder-lsp advertises `inlineCompletionProvider`,
// and it sends `textDocument/inlineCompletion` with VS Code's cancellation token, which becomes
// `$/cancelRequest` (the server then closes the model request).

export const TOGGLE_COMMAND = 'builderLsp.toggleCompletions';

export interface CompletionView {
  text: string;
  tooltip: string;
  /** Whether a request can give anything: on, and a model is set. */
  active: boolean;
}

function model(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

/** The status-bar item for `builder.completion.enabled` and `builder.completion.model`. */
export function completionView(enabled: unknown, completionModel: unknown): CompletionView {
  const m = model(completionModel);
  if (enabled === false) {
    return { text: '$(circle-slash) Builder', tooltip: 'Builder inline completions: off — click to turn on', active: false };
  }
  if (!m) {
    return {
      text: '$(sparkle) Builder',
      tooltip: 'Builder inline completions: on, but no `builder.completion.model` is set (e.g. `ollama/qwen2.5-coder:1.5b`) — click to turn off',
      active: false,
    };
  }
  return { text: '$(sparkle) Builder', tooltip: `Builder inline completions: on (${m}) — click to turn off`, active: true };
}
