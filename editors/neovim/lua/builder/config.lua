-- Options of require("builder").setup() and the LSP client configuration built from them.
-- Pure functions (no editor state), so tests can check exactly what reaches the server.

local M = {}

M.web_filetypes = {
  'javascript',
  'javascriptreact',
  'typescript',
  'typescriptreact',
  'css',
  'html',
  'json',
}

--- Environment variables that carry provider keys (their values are never read for display).
M.key_env = {
  { provider = 'anthropic', env = { 'ANTHROPIC_API_KEY' } },
  { provider = 'openai', env = { 'OPENAI_API_KEY' } },
  { provider = 'google', env = { 'GEMINI_API_KEY', 'GOOGLE_API_KEY' } },
  { provider = 'groq', env = { 'GROQ_API_KEY' } },
  { provider = 'openrouter', env = { 'OPENROUTER_API_KEY' } },
  { provider = 'compatible', env = { 'COMPATIBLE_API_KEY' } },
}

--- Credentials of the cloud sandbox providers (names only): any one complete set is enough.
M.sandbox_env = {
  e2b = { { 'E2B_API_KEY' } },
  vercel = { { 'VERCEL_TOKEN', 'VERCEL_TEAM_ID', 'VERCEL_PROJECT_ID' }, { 'VERCEL_OIDC_TOKEN' } },
}

M.defaults = {
  --- The server command; the first element is looked up on PATH.
  cmd = { 'builder-lsp' },
  --- Extra environment for the server process (merged into Neovim's own).
  cmd_env = nil,
  --- Client name (also used by :Builder* commands to find the client).
  name = 'builder_lsp',
  filetypes = M.web_filetypes,
  root_markers = { 'package.json', '.git' },
  --- Start the server on FileType. false: only define the commands (e.g. with vim.lsp.config).
  autostart = true,
  --- Ask the server for builder/generationDelta and append the text to builder://stream.
  stream = true,
  --- Echo $/progress of builder tasks in the message area (turn off when fidget.nvim shows them).
  progress = true,
  --- :BuilderGenerate holds the request open until the result (true) or runs a task (false).
  wait = false,
  --- Poll interval for a running task's status (the $/progress `end` also triggers a check).
  poll_ms = 1000,
  --- `:write` the buffers a builder-lsp workspace edit changed, as soon as it lands (only those,
  --- only when modified). false: they stay unsaved, except the sandbox template's files.
  save_after_apply = true,

  -- Server settings (sent as `settings.builder` and in `initializationOptions`).
  model = nil, -- "provider/model", e.g. "anthropic/claude-sonnet-4-5"
  temperature = nil,
  max_tokens = nil,
  max_response_bytes = nil,
  context_tokens = nil,
  continue_truncated = nil,
  allow_protected = nil,
  diagnostics = nil,
  diagnostics_debounce_ms = nil,
  install_packages = nil,
  review = nil, -- "on": hold change sets for :BuilderReview (Neovim has no change annotations)
  base_urls = nil, -- { openai = "http://127.0.0.1:8080/v1", ... }
  sandbox = { provider = 'local' }, -- provider, isolation, open_preview
  zip = nil, -- max_files, max_file_bytes, max_total_bytes
  --- Inline completions (ghost text) from `completion.model`, e.g.
  --- { model = "llamacpp/any" } or { model = "ollama/qwen2.5-coder:1.5b", debounce_ms = 75 }.
  --- Keys: enabled, model, debounce_ms, max_tokens, context_lines, context_tokens, on_typing,
  --- label, budget_ms. Neovim 0.12 shows them with vim.lsp.inline_completion; 0.11 gets one
  --- "✦ builder" item in the completion menu (<C-x><C-o>); accepting it inserts all of it.
  completion = nil,
  --- Keys by provider id, or a function returning that table (e.g. from a password manager).
  --- Sent only in initializationOptions. Prefer the environment (OPENAI_API_KEY, ...).
  api_keys = nil,
  --- Raw camelCase server settings, merged over everything above.
  settings = nil,

  -- Passed through to vim.lsp.start().
  on_attach = nil,
  capabilities = nil,
}

local scalar_keys = {
  model = 'model',
  temperature = 'temperature',
  max_tokens = 'maxTokens',
  max_response_bytes = 'maxResponseBytes',
  context_tokens = 'contextTokens',
  continue_truncated = 'continueTruncated',
  allow_protected = 'allowProtected',
  diagnostics = 'diagnostics',
  diagnostics_debounce_ms = 'diagnosticsDebounceMs',
  install_packages = 'installPackages',
  review = 'review',
}

local sandbox_keys = { provider = 'provider', isolation = 'isolation', open_preview = 'openPreview' }
local zip_keys = { max_files = 'maxFiles', max_file_bytes = 'maxFileBytes', max_total_bytes = 'maxTotalBytes' }
local completion_keys = {
  enabled = 'enabled',
  model = 'model',
  debounce_ms = 'debounceMs',
  max_tokens = 'maxTokens',
  context_lines = 'contextLines',
  context_tokens = 'contextTokens',
  on_typing = 'onTyping',
  label = 'label',
  budget_ms = 'budgetMs',
}

local function is_list(t)
  if vim.islist then
    return vim.islist(t)
  end
  return vim.tbl_islist(t)
end

--- Drops empty tables (they would be encoded as JSON arrays and refused by the server).
local function prune(t)
  if type(t) ~= 'table' then
    return t
  end
  local out = {}
  for k, v in pairs(t) do
    if type(v) == 'table' and next(v) == nil then
      -- dropped: {} would be encoded as [] and refused
    elseif type(v) == 'table' and not is_list(v) then
      v = prune(v)
      if next(v) ~= nil then
        out[k] = v
      end
    elseif v ~= nil then
      out[k] = v
    end
  end
  return out
end

local function mapped(src, keys)
  local out = {}
  if type(src) ~= 'table' then
    return out
  end
  for from, to in pairs(keys) do
    if src[from] ~= nil then
      out[to] = src[from]
    end
  end
  -- camelCase keys given directly are accepted too.
  for _, to in pairs(keys) do
    if src[to] ~= nil and out[to] == nil then
      out[to] = src[to]
    end
  end
  return out
end

--- Merges user options over the defaults; returns the options and a list of problems.
function M.resolve(user)
  user = user or {}
  local problems = {}
  local opts = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), user)
  -- Lists replace, never merge element-wise.
  for _, k in ipairs({ 'cmd', 'filetypes', 'root_markers' }) do
    if user[k] ~= nil then
      opts[k] = user[k]
    end
  end
  if type(opts.cmd) == 'string' then
    opts.cmd = { opts.cmd }
  end
  if type(opts.cmd) ~= 'table' or type(opts.cmd[1]) ~= 'string' or opts.cmd[1] == '' then
    table.insert(problems, '`cmd` must be a list like { "builder-lsp" }')
    opts.cmd = vim.deepcopy(M.defaults.cmd)
  end
  if opts.api_keys ~= nil and type(opts.api_keys) ~= 'table' and type(opts.api_keys) ~= 'function' then
    table.insert(problems, '`api_keys` must be a table or a function returning one')
    opts.api_keys = nil
  end
  if opts.completion ~= nil and type(opts.completion) ~= 'table' then
    table.insert(problems, '`completion` must be a table like { model = "llamacpp/any" }')
    opts.completion = nil
  elseif opts.completion ~= nil then
    local known = {}
    for k, v in pairs(completion_keys) do
      known[k], known[v] = true, true
    end
    for k in pairs(opts.completion) do
      if not known[k] then
        table.insert(problems, ('`completion.%s` is not a completion option'):format(tostring(k)))
      end
    end
  end
  if type(opts.save_after_apply) ~= 'boolean' then
    table.insert(problems, '`save_after_apply` must be true or false')
    opts.save_after_apply = M.defaults.save_after_apply
  end
  local provider = opts.sandbox and opts.sandbox.provider
  if provider ~= nil and provider ~= 'local' and provider ~= 'e2b' and provider ~= 'vercel' then
    table.insert(problems, ('`sandbox.provider` = %q (expected "local", "e2b" or "vercel")'):format(tostring(provider)))
  end
  return opts, problems
end

--- The `builder` settings section (camelCase, as the server reads it).
function M.settings(opts)
  local s = mapped(opts, scalar_keys)
  s.sandbox = mapped(opts.sandbox, sandbox_keys)
  s.zip = mapped(opts.zip, zip_keys)
  s.completion = mapped(opts.completion, completion_keys)
  if type(opts.base_urls) == 'table' then
    s.baseUrls = vim.deepcopy(opts.base_urls)
  end
  s.streamDeltas = opts.stream and true or false
  if type(opts.settings) == 'table' then
    s = vim.tbl_deep_extend('force', s, opts.settings)
  end
  s.apiKeys = nil -- keys travel only in initializationOptions
  return prune(s)
end

--- Keys from setup (table or function); nil when none were given.
function M.api_keys(opts)
  local keys = opts.api_keys
  if type(keys) == 'function' then
    local ok, v = pcall(keys)
    keys = ok and v or nil
  end
  if type(keys) ~= 'table' then
    return nil
  end
  local out = {}
  for k, v in pairs(keys) do
    if type(v) == 'string' and v ~= '' then
      out[k] = v
    end
  end
  return next(out) and out or nil
end

--- initializationOptions: the settings, `streamDeltas`, and `apiKeys` only when setup gave keys.
function M.init_options(opts)
  local o = M.settings(opts)
  o.streamDeltas = opts.stream and true or false
  o.apiKeys = M.api_keys(opts)
  return o
end

local function empty_dict_if_empty(t)
  if next(t) == nil then
    return vim.empty_dict()
  end
  return t
end

--- The table for vim.lsp.start() (root_dir added by the caller) or vim.lsp.config().
function M.lsp_config(opts)
  local conf = {
    name = opts.name,
    cmd = vim.deepcopy(opts.cmd),
    cmd_env = opts.cmd_env,
    filetypes = vim.deepcopy(opts.filetypes),
    root_markers = vim.deepcopy(opts.root_markers),
    settings = { builder = empty_dict_if_empty(M.settings(opts)) },
    init_options = empty_dict_if_empty(M.init_options(opts)),
    on_attach = opts.on_attach,
    capabilities = opts.capabilities,
  }
  return conf
end

--- How completions are shown: "inline" (Neovim 0.12 vim.lsp.inline_completion), "menu"
--- (0.11 vim.lsp.completion), or nil when setup() did not ask for completions.
function M.completion_mode(opts, has_inline)
  local c = opts.completion
  if type(c) ~= 'table' or c.enabled == false then
    return nil
  end
  return has_inline and 'inline' or 'menu'
end

return M
