-- builder-lsp for Neovim (>= 0.10): starts the server on web filetypes, runs its commands,
-- follows long tasks, and shows the model's raw text in builder://stream.

local config = require('builder.config')
local args = require('builder.args')
local save = require('builder.save')

local M = {}

--- Resolved options (nil until setup()).
M.opts = nil

--- Runtime state: tasks this plugin follows (by taskId and by progress token), last results.
M.state = {
  seq = 0,
  tasks = {}, -- taskId -> task
  by_token = {}, -- progress token -> task
  last = {}, -- command -> { result?, err?, taskId?, state? }
  template = 0, -- builder.sandbox.create requests/tasks of this plugin still running
  saved = {}, -- the last edit's { written = { fname... }, failed = { { fname, err }... } }
}

local uv = vim.uv or vim.loop
local has_011 = vim.fn.has('nvim-0.11') == 1

local function level_of(name)
  return ({ info = vim.log.levels.INFO, warn = vim.log.levels.WARN, error = vim.log.levels.ERROR })[name]
    or vim.log.levels.INFO
end

function M.notify(msg, level)
  vim.notify('Builder: ' .. msg, type(level) == 'string' and level_of(level) or (level or vim.log.levels.INFO), {
    title = 'builder',
  })
end

local function opts()
  if not M.opts then
    M.opts = config.resolve({})
  end
  return M.opts
end

-- Client method calls differ between 0.10 (client.request(...)) and 0.11 (client:request(...)).
local function client_request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function client_request_sync(client, method, params, timeout, bufnr)
  if has_011 then
    return client:request_sync(method, params, timeout, bufnr)
  end
  return client.request_sync(method, params, timeout, bufnr)
end

M._request_sync = client_request_sync

local function root_of(client)
  return client.root_dir or (client.config and client.config.root_dir)
end

--- The builder client for `bufnr` (default: current buffer), else the one whose root holds the
--- current directory, else the only one.
function M.client(bufnr)
  local name = opts().name
  local attached = vim.lsp.get_clients({ bufnr = bufnr or 0, name = name })
  if #attached > 0 then
    return attached[1]
  end
  local all = vim.lsp.get_clients({ name = name })
  if #all <= 1 then
    return all[1]
  end
  local cwd = vim.fn.getcwd()
  for _, c in ipairs(all) do
    local root = root_of(c)
    if root and (cwd == root or vim.startswith(cwd, root .. '/')) then
      return c
    end
  end
  return all[1]
end

local function is_file_buffer(bufnr)
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= '' then
    return false
  end
  local name = vim.api.nvim_buf_get_name(bufnr)
  return name ~= '' and not name:match('^%a[%w+.-]*://')
end

--- Context the commands pass: the current file (primary context) and the client's project.
function M.context(client, bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local ctx = { project = client and root_of(client) or nil }
  if client and is_file_buffer(bufnr) and vim.lsp.buf_is_attached(bufnr, client.id) then
    ctx.uri = vim.uri_from_bufnr(bufnr)
  end
  return ctx
end

--- Fires `User BuilderDone` with { command, result?, err?, taskId?, state? } and remembers it.
local function done(command, data)
  data.command = command
  M.state.last[command] = data
  vim.api.nvim_exec_autocmds('User', { pattern = 'BuilderDone', modeline = false, data = data })
end

local function error_text(err)
  if type(err) == 'table' then
    return tostring(err.message or vim.inspect(err)), err.code
  end
  return tostring(err), nil
end

--- Sends `workspace/executeCommand` with one argument object.
--- cb(err, result, client); `token` becomes the request's workDoneToken.
function M.execute(command, arguments, cb, o)
  o = o or {}
  local client = o.client or M.client()
  if not client then
    local msg = 'builder-lsp is not running: open a JS/TS/CSS/HTML/JSON file in a project (or check :checkhealth builder)'
    M.notify(msg, 'error')
    if cb then
      cb({ message = msg, code = -32803 }, nil, nil)
    end
    return
  end
  if type(arguments) ~= 'table' or next(arguments) == nil then
    arguments = vim.empty_dict()
  end
  local params = { command = command, arguments = { arguments } }
  if o.token then
    params.workDoneToken = o.token
  end
  local ok = client_request(client, 'workspace/executeCommand', params, function(err, result)
    if cb then
      cb(err, result, client)
    end
  end, o.bufnr)
  if ok == false then
    local msg = command .. ': the request could not be sent (server stopped?)'
    M.notify(msg, 'error')
    if cb then
      cb({ message = msg }, nil, client)
    end
  end
end

--- Runs a command whose answer is its result; notifies a summary and fires BuilderDone.
--- on_result(result, client) may take over the display (return true to skip the summary).
function M.run(command, arguments, on_result)
  M.execute(command, arguments, function(err, result, client)
    if err then
      local text, code = error_text(err)
      M.notify(text, 'error')
      done(command, { err = { message = text, code = code } })
      return
    end
    local handled = on_result and on_result(result, client)
    if not handled then
      local msg, level = args.summary(command, result)
      M.notify(msg, level)
    end
    done(command, { result = result })
  end)
end

-- Tasks ---------------------------------------------------------------------------------------

local function stop_timer(t)
  if t.timer then
    t.timer:stop()
    if not t.timer:is_closing() then
      t.timer:close()
    end
    t.timer = nil
  end
end

local function template_over(t)
  if t.template then
    t.template = nil
    M.state.template = math.max(0, M.state.template - 1)
  end
end

local function finish_task(t, snapshot)
  if t.finished then
    return
  end
  t.finished = true
  stop_timer(t)
  template_over(t)
  M.state.tasks[t.id] = nil
  M.state.by_token[t.token] = nil
  local result = snapshot and snapshot.result
  local data = {
    taskId = t.id,
    state = snapshot and snapshot.state or 'unknown',
    message = snapshot and snapshot.message,
    result = result,
  }
  if t.on_done then
    pcall(t.on_done, data, t.client)
  end
  done(t.command, data)
end

--- Asks the server for the task's state; finishes it once it is no longer running.
local function check_task(t)
  if t.finished or t.inflight or not t.id then
    return
  end
  local stopped
  if has_011 then
    stopped = t.client:is_stopped()
  else
    stopped = t.client.is_stopped()
  end
  if stopped then
    M.notify(t.command .. ': the server stopped before task ' .. t.id .. ' finished', 'error')
    return finish_task(t, { state = 'failed', message = 'server stopped' })
  end
  t.inflight = true
  M.execute('builder.task.status', { taskId = t.id }, function(err, snap)
    t.inflight = false
    if err then
      local text = error_text(err)
      M.notify('task ' .. t.id .. ': ' .. text, 'error')
      return finish_task(t, { state = 'failed', message = text })
    end
    if type(snap) == 'table' and snap.state ~= 'running' then
      finish_task(t, snap)
    end
  end, { client = t.client })
end

--- Follows a task the server started: on `$/progress` end (our token) and every poll_ms.
local function follow_task(t)
  M.state.tasks[t.id] = t
  t.timer = uv.new_timer()
  t.timer:start(opts().poll_ms, opts().poll_ms, vim.schedule_wrap(function()
    check_task(t)
  end))
  if t.ended then
    check_task(t)
  end
end

local function next_token(command)
  M.state.seq = M.state.seq + 1
  local short = command:gsub('^builder%.', '')
  return ('builder-nvim/%s/%d'):format(short, M.state.seq), M.state.seq
end

--- Starts a long command. With `wait = false` in the arguments the server answers
--- `{taskId, started}` and the plugin follows the task; the server's own showMessage carries the
--- summary. With `wait = true` the answer is the result and the plugin shows the summary.
function M.run_task(command, arguments, on_done)
  local token, seq = next_token(command)
  local t = { token = token, seq = seq, command = command, on_done = on_done }
  M.state.by_token[token] = t
  if command == 'builder.sandbox.create' then
    -- Its edit (the template's files, package.json) is always saved, see M.on_apply_edit.
    t.template = true
    M.state.template = M.state.template + 1
  end
  M.execute(command, arguments, function(err, result, client)
    if err then
      template_over(t)
      M.state.by_token[token] = nil
      local text, code = error_text(err)
      M.notify(text, 'error')
      done(command, { err = { message = text, code = code } })
      return
    end
    if type(result) == 'table' and result.taskId and result.started then
      t.id = result.taskId
      t.client = client
      follow_task(t)
      return
    end
    template_over(t)
    M.state.by_token[token] = nil
    local msg, level = args.summary(command, result)
    M.notify(msg, level)
    local data = { result = result, state = 'done' }
    if on_done then
      pcall(on_done, data, client)
    end
    done(command, data)
  end, { token = token })
end

--- The newest task this plugin follows (for :BuilderCancel without an id).
function M.running_task()
  local newest
  for _, t in pairs(M.state.tasks) do
    if not newest or t.seq > newest.seq then
      newest = t
    end
  end
  return newest and newest.id or nil
end

-- Progress and stream --------------------------------------------------------------------------

local function on_progress(ev)
  local data = ev.data or {}
  local client = vim.lsp.get_client_by_id(data.client_id or -1)
  if not client or client.name ~= opts().name then
    return
  end
  local params = data.params or {}
  local value = params.value
  if type(value) ~= 'table' then
    return
  end
  local t = M.state.by_token[params.token]
  if t and value.kind == 'end' then
    t.ended = true
    vim.schedule(function()
      check_task(t)
    end)
  end
  if not opts().progress then
    return
  end
  local parts = { 'builder: ' .. tostring(value.title or 'working') }
  if value.message and value.message ~= '' then
    table.insert(parts, ' — ' .. value.message)
  end
  if value.percentage then
    table.insert(parts, (' (%d%%)'):format(value.percentage))
  end
  vim.api.nvim_echo({ { table.concat(parts), value.kind == 'end' and 'MoreMsg' or 'None' } }, false, {})
end

--- Handler of `builder/generationDelta {taskId, text}`.
function M.on_delta(_, params)
  if type(params) == 'table' then
    require('builder.stream').append(params.taskId, params.text)
  end
end

-- Saving Builder's edits ------------------------------------------------------------------------

--- Whether an edit is the sandbox template's: it arrives while a `builder.sandbox.create` this
--- plugin started is running, and it only creates files or changes the project's package.json.
local function is_template(targets, client)
  if M.state.template <= 0 or #targets == 0 then
    return false
  end
  local root = client and root_of(client)
  for _, t in ipairs(targets) do
    if not t.created and not (root and t.fname == root .. '/package.json') then
      return false
    end
  end
  return true
end

--- Neovim's text sync has no notion of 'eol': after the plugin changed it (the server's text
--- has no final newline), builder-lsp still believes the buffer ends in one, and would call the
--- file changed since its checkpoint. Reopening the document sends its exact text again.
local function resync(client, buf)
  if client and vim.lsp.buf_is_attached(buf, client.id) then
    vim.lsp.buf_detach_client(buf, client.id)
    vim.lsp.buf_attach_client(buf, client.id)
  end
end

--- The `workspace/applyEdit` handler with `o` the options (a function returning them).
local function apply_edit(o, err, params, ctx, conf)
  local default = vim.lsp.handlers['workspace/applyEdit']
  local edit = type(params) == 'table' and params.edit or nil
  local ok_plan, targets = pcall(save.targets, edit)
  targets = ok_plan and targets or {}
  local snap = save.snapshot(targets)
  local result = default(err, params, ctx, conf)
  if type(result) ~= 'table' or result.applied ~= true or #targets == 0 then
    return result
  end
  local ok, report = pcall(function()
    local client = ctx and vim.lsp.get_client_by_id(ctx.client_id)
    local write = o().save_after_apply ~= false or is_template(targets, client)
    return save.land(targets, snap, write, function(buf)
      resync(client, buf)
    end)
  end)
  if not ok then
    M.notify('saving the edit failed: ' .. tostring(report), 'warn')
    return result
  end
  M.state.saved = report
  if #report.failed > 0 then
    local parts = {}
    for _, f in ipairs(report.failed) do
      table.insert(parts, vim.fn.fnamemodify(f[1], ':~:.') .. ' (' .. f[2] .. ')')
    end
    M.notify(('could not save %d file%s: %s'):format(#report.failed, #report.failed == 1 and '' or 's',
      table.concat(parts, '; ')), 'warn')
  end
  return result
end

--- The builder client's `workspace/applyEdit` handler: Neovim's own handler applies the edit,
--- then the buffers it changed are written (`save_after_apply` of setup(); always for the
--- template's files). Returns the default handler's answer unchanged.
function M.on_apply_edit(err, params, ctx, conf)
  return apply_edit(opts, err, params, ctx, conf)
end

-- Starting the server ---------------------------------------------------------------------------

--- The client configuration (for vim.lsp.config('builder_lsp', ...) on Neovim 0.11+).
function M.lsp_config(user)
  local o = user and config.resolve(user) or opts()
  local conf = config.lsp_config(o)
  -- Options given here (vim.lsp.config) decide `save_after_apply`; else those of setup().
  local on_apply_edit = M.on_apply_edit
  if user then
    on_apply_edit = function(err, params, ctx, c)
      return apply_edit(function()
        return o
      end, err, params, ctx, c)
    end
  end
  conf.handlers = { ['builder/generationDelta'] = M.on_delta, ['workspace/applyEdit'] = on_apply_edit }
  return conf
end

--- Starts (or reuses) the server for `bufnr` with the project root from the root markers.
function M.start(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if not is_file_buffer(bufnr) then
    return nil
  end
  local o = opts()
  if vim.fn.executable(o.cmd[1]) ~= 1 then
    if not M.state.warned_missing then
      M.state.warned_missing = true
      M.notify(('`%s` not found; install builder-lsp or set cmd = { "/path/to/builder-lsp" } (see :checkhealth builder)')
        :format(o.cmd[1]), 'error')
    end
    return nil
  end
  local conf = M.lsp_config()
  conf.filetypes = nil
  conf.root_markers = nil
  conf.root_dir = vim.fs.root(bufnr, o.root_markers) or vim.fn.getcwd()
  return vim.lsp.start(conf, { bufnr = bufnr })
end

-- Completions ------------------------------------------------------------------------------------

--- After the `✦ builder` item is accepted from the menu: Vim inserted only the item's `word`
--- (the first run of non-blanks of its edit, a complete-item cannot hold a newline), so replace
--- that word with the edit's whole, multi-line text, byte for byte.
function M.expand_completed(bufnr)
  local reason = (vim.v.event or {}).reason
  if reason ~= nil and reason ~= 'accept' then
    return false
  end
  local item = vim.v.completed_item
  local lsp_data = type(item) == 'table' and vim.tbl_get(item, 'user_data', 'nvim', 'lsp') or nil
  local ci = type(lsp_data) == 'table' and lsp_data.completion_item or nil
  if type(ci) ~= 'table' or type(ci.textEdit) ~= 'table' or type(ci.textEdit.newText) ~= 'string' then
    return false
  end
  local client = vim.lsp.get_client_by_id(lsp_data.client_id or -1)
  if not client or client.name ~= opts().name then
    return false
  end
  local text, word = ci.textEdit.newText, item.word or ''
  if text == word or vim.api.nvim_get_current_buf() ~= bufnr then
    return false
  end
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local line = vim.api.nvim_get_current_line()
  if col < #word or line:sub(col - #word + 1, col) ~= word then
    return false -- the buffer is not as the menu left it: touch nothing
  end
  local lines = vim.split(text, '\n', { plain = true })
  vim.api.nvim_buf_set_text(bufnr, row - 1, col - #word, row - 1, col, lines)
  local last_row = row - 1 + #lines
  local last_col = #lines == 1 and (col - #word + #lines[1]) or #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { last_row, last_col })
  return true
end

--- Turns on completions for a buffer the server attached to, in the way this Neovim has:
--- ghost text with vim.lsp.inline_completion (0.12), else the `✦ builder` item in the menu
--- (vim.lsp.completion on 0.11; 'omnifunc', i.e. <C-x><C-o>, everywhere).
function M.enable_completion(client, bufnr)
  -- Inline only when this Neovim has it and the server offers it (it does when the client
  -- declares the capability); otherwise the server offers the completion fallback.
  local caps = client.server_capabilities or {}
  local inline = vim.lsp.inline_completion
  local has_inline = type(inline) == 'table' and type(inline.enable) == 'function'
    and caps.inlineCompletionProvider ~= nil
  local mode = config.completion_mode(opts(), has_inline)
  if mode == 'inline' then
    local ok, err = pcall(inline.enable, true, { bufnr = bufnr, client_id = client.id })
    if not ok then
      M.notify('inline completions could not be enabled: ' .. tostring(err), 'warn')
    end
  elseif mode == 'menu' and caps.completionProvider ~= nil then
    local c = opts().completion or {}
    if vim.lsp.completion and vim.lsp.completion.enable then
      vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = c.on_typing == true })
    end
    if vim.bo[bufnr].omnifunc == '' then
      vim.bo[bufnr].omnifunc = 'v:lua.vim.lsp.omnifunc'
    end
    local group = vim.api.nvim_create_augroup('builder_completion_' .. bufnr, { clear = true })
    vim.api.nvim_create_autocmd('CompleteDone', {
      group = group,
      buffer = bufnr,
      callback = function(ev)
        M.expand_completed(ev.buf)
      end,
    })
  end
  return mode
end

function M.setup(user)
  local o, problems = config.resolve(user)
  M.opts = o
  for _, p in ipairs(problems) do
    M.notify('setup: ' .. p, 'warn')
  end
  -- Global as well, so a client from vim.lsp.config/nvim-lspconfig streams too.
  vim.lsp.handlers['builder/generationDelta'] = M.on_delta
  require('builder.commands').create(M)

  local group = vim.api.nvim_create_augroup('builder', { clear = true })
  vim.api.nvim_create_autocmd('LspProgress', { group = group, callback = on_progress })
  vim.api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if client and client.name == o.name then
        M.enable_completion(client, ev.buf)
      end
    end,
  })
  if o.autostart then
    vim.api.nvim_create_autocmd('FileType', {
      group = group,
      pattern = o.filetypes,
      callback = function(ev)
        M.start(ev.buf)
      end,
    })
    -- Buffers opened before setup().
    for _, b in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(b) and vim.tbl_contains(o.filetypes, vim.bo[b].filetype) then
        M.start(b)
      end
    end
  end
  return M
end

return M
