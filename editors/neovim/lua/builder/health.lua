-- :checkhealth builder. Names of keys only, never their values.

local config = require('builder.config')

local M = {}

local function present(name)
  local v = vim.env[name]
  return type(v) == 'string' and v ~= ''
end

local function first_line(s)
  return ((s or ''):gsub('\r', ''):match('[^\n]*') or '')
end

function M.check()
  local health = vim.health
  local builder = require('builder')

  health.start('builder-lsp: Neovim')
  local v = vim.version()
  local vs = ('%d.%d.%d'):format(v.major, v.minor, v.patch)
  if vim.fn.has('nvim-0.10') == 1 then
    health.ok('Neovim ' .. vs)
  else
    health.error('Neovim ' .. vs .. ' is too old: the plugin needs 0.10 or newer')
  end
  local opts = builder.opts
  if not opts then
    health.warn('require("builder").setup() has not run; showing defaults')
    opts = config.resolve({})
  end

  health.start('builder-lsp: server binary')
  local exe = opts.cmd[1]
  local path = vim.fn.exepath(exe)
  if path == '' then
    health.error(('`%s` not found (cmd = %s)'):format(exe, vim.inspect(opts.cmd)), {
      'Install it: cargo install --path . (in a clone of builder-lsp)',
      'or pass the full path: require("builder").setup({ cmd = { "/path/to/builder-lsp" } })',
    })
  else
    health.ok('found: ' .. path)
    local ok, res = pcall(function()
      return vim.system({ path, '--version' }, { text = true }):wait(5000)
    end)
    if ok and res and res.code == 0 then
      health.ok('version: ' .. first_line(res.stdout))
    else
      health.warn(('`%s --version` failed: %s'):format(path, ok and first_line(res and res.stderr) or tostring(res)))
    end
  end

  health.start('builder-lsp: provider keys (names only)')
  local cmd_env = type(opts.cmd_env) == 'table' and opts.cmd_env or {}
  local setup_keys = config.api_keys(opts) or {}
  local any = false
  for _, p in ipairs(config.key_env) do
    local where = {}
    for _, name in ipairs(p.env) do
      if present(name) then
        table.insert(where, name)
      elseif type(cmd_env[name]) == 'string' and cmd_env[name] ~= '' then
        table.insert(where, name .. ' (cmd_env)')
      end
    end
    if setup_keys[p.provider] then
      table.insert(where, 'setup({ api_keys })')
    end
    if #where > 0 then
      any = true
      health.ok(p.provider .. ': key from ' .. table.concat(where, ', '))
    else
      health.info(p.provider .. ': no key')
    end
  end
  if not any then
    health.warn('no provider key found in the environment', {
      'export ANTHROPIC_API_KEY / OPENAI_API_KEY / GEMINI_API_KEY / GROQ_API_KEY / OPENROUTER_API_KEY',
      "or put it in the project's .env, or use ollama/... models (no key)",
    })
  end
  local model = opts.model or vim.env.DEFAULT_AI_MODEL
  health.info('default model: ' .. (model and model ~= '' and model or '(server default)'))

  health.start('builder-lsp: completions')
  local c = opts.completion
  local cmodel = type(c) == 'table' and (c.model or vim.env.BUILDER_COMPLETION_MODEL) or nil
  if type(c) ~= 'table' or c.enabled == false then
    health.info('off (setup({ completion = { model = "llamacpp/any" } }) turns them on)')
  else
    local inline = type(vim.lsp.inline_completion) == 'table' and type(vim.lsp.inline_completion.enable) == 'function'
    health.info(('shown as %s'):format(inline and 'ghost text (vim.lsp.inline_completion)'
      or 'the "' .. tostring(c.label or '✦ builder') .. '" item of the completion menu (<C-x><C-o>)'))
    if cmodel and cmodel ~= '' then
      health.ok('completion.model = ' .. cmodel)
    else
      health.warn('no completion.model: the server offers no completions', {
        'setup({ completion = { model = "ollama/qwen2.5-coder:1.5b" } }), or BUILDER_COMPLETION_MODEL',
      })
    end
  end

  health.start('builder-lsp: sandbox')
  local provider = (opts.sandbox and opts.sandbox.provider) or 'local'
  health.info('sandbox.provider = ' .. provider
    .. (opts.sandbox and opts.sandbox.isolation and (', isolation = ' .. opts.sandbox.isolation) or ''))
  local sets = config.sandbox_env[provider]
  if sets then
    local found, wanted = nil, {}
    for _, set in ipairs(sets) do
      if #vim.tbl_filter(present, set) == #set then
        found = set
        break
      end
      table.insert(wanted, table.concat(set, ' + '))
    end
    if found then
      health.ok(provider .. ' credentials: ' .. table.concat(found, ', '))
    else
      health.warn(provider .. ' credentials missing: set ' .. table.concat(wanted, ', or '))
    end
  end

  local clients = vim.lsp.get_clients({ name = opts.name })
  if #clients == 0 then
    health.info('no builder-lsp client is running (open a JS/TS/CSS/HTML/JSON file)')
    return
  end
  for _, client in ipairs(clients) do
    local root = client.root_dir or (client.config and client.config.root_dir) or '?'
    health.ok(('client %d running for %s'):format(client.id, root))
    local params = { command = 'builder.sandbox.status', arguments = { { project = root ~= '?' and root or nil } } }
    if params.arguments[1].project == nil then
      params.arguments = { vim.empty_dict() }
    end
    local res, err = builder._request_sync(client, 'workspace/executeCommand', params, 3000)
    if not res then
      health.warn('builder.sandbox.status: no answer (' .. tostring(err) .. ')')
    elseif res.err then
      health.warn('builder.sandbox.status: ' .. tostring(res.err.message or vim.inspect(res.err)))
    elseif type(res.result) == 'table' and res.result.active then
      local r = res.result
      health.ok(('sandbox %s (%s) at %s, %s'):format(
        tostring(r.sandboxId),
        tostring(r.provider),
        tostring(r.url),
        r.healthy and 'healthy' or 'not answering'
      ))
    else
      health.info('no sandbox running for this project')
    end
  end
end

return M
