-- The :Builder* user commands. Argument parsing lives in builder.args (pure functions).

local args = require('builder.args')

local M = {}

local function ctx_for(b)
  local client = b.client()
  return b.context(client), client
end

function M.generate(b, prompt, wait)
  local function go(p)
    local ctx = ctx_for(b)
    ctx.wait = wait
    local a, err = args.generate(p, ctx)
    if not a then
      return b.notify(err, 'warn')
    end
    b.run_task('builder.generate', a)
  end
  if prompt and vim.trim(prompt) ~= '' then
    return go(prompt)
  end
  vim.ui.input({ prompt = 'Builder: ' }, function(input)
    if input and vim.trim(input) ~= '' then
      go(input)
    end
  end)
end

--- :BuilderApply [register], or :{range}BuilderApply for the selected lines.
function M.apply(b, cmd)
  local text
  if cmd.range and cmd.range > 0 then
    text = args.lines_to_text(vim.api.nvim_buf_get_lines(0, cmd.line1 - 1, cmd.line2, false))
  else
    for _, r in ipairs(args.registers(cmd.args, vim.fn.has('clipboard') == 1)) do
      local ok, v = pcall(vim.fn.getreg, r)
      if ok and type(v) == 'string' and vim.trim(v) ~= '' then
        text = v
        break
      end
    end
  end
  local a, err = args.apply(text, ctx_for(b))
  if not a then
    return b.notify(err, 'warn')
  end
  b.run('builder.apply', a)
end

local function open_url(b, url)
  if vim.ui.open then
    local ok, err = pcall(vim.ui.open, url)
    if ok then
      return b.notify('opening ' .. url)
    end
    b.notify('could not open the browser (' .. tostring(err) .. '); the preview is at ' .. url, 'warn')
  else
    b.notify('the preview is at ' .. url)
  end
end

function M.sandbox(b, words)
  local s, err = args.sandbox(words, ctx_for(b))
  if not s then
    return b.notify(err, 'warn')
  end
  if s.task then
    return b.run_task(s.command, s.arguments)
  end
  if s.action == 'open' then
    return b.run(s.command, s.arguments, function(r)
      if type(r) == 'table' and r.active and type(r.url) == 'string' then
        open_url(b, r.url)
      else
        b.notify('no sandbox is running; start one with :BuilderSandbox create', 'warn')
      end
      return true
    end)
  end
  b.run(s.command, s.arguments)
end

function M.install(b, words)
  local a, err = args.install(words, ctx_for(b))
  if not a then
    return b.notify(err, 'warn')
  end
  b.run_task('builder.installPackages', a)
end

function M.zip(b, words)
  local a, err = args.zip(words, ctx_for(b))
  if not a then
    return b.notify(err, 'warn')
  end
  b.run('builder.createZip', a)
end

function M.cancel(b, words)
  local ctx = ctx_for(b)
  b.run('builder.task.cancel', args.cancel(words, { project = ctx.project }, b.running_task()))
end

--- Shows builder.history in the builder://history scratch buffer: <CR> on a line opens that
--- checkpoint's diff, `r` reverts it (and everything after it).
function M.show_history(b, entries)
  local lines, ids = args.history_lines(entries)
  local name = 'builder://history'
  local buf = vim.fn.bufnr(name)
  if buf == -1 then
    buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(buf, name)
    vim.bo[buf].buftype = 'nofile'
    vim.bo[buf].bufhidden = 'hide'
    vim.bo[buf].swapfile = false
  end
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  vim.b[buf].builder_checkpoints = ids
  local function id_here()
    local id = (vim.b[buf].builder_checkpoints or {})[vim.api.nvim_win_get_cursor(0)[1]]
    return id ~= false and id or nil
  end
  vim.keymap.set('n', '<CR>', function()
    local id = id_here()
    if id then
      M.diff(b, id)
    end
  end, { buffer = buf, desc = 'builder: the diff of this checkpoint' })
  vim.keymap.set('n', 'r', function()
    local id = id_here()
    if id then
      M.revert(b, { id }, false)
    end
  end, { buffer = buf, desc = 'builder: revert this checkpoint and every later one' })
  if vim.fn.bufwinid(buf) == -1 then
    vim.cmd('botright split')
    vim.api.nvim_win_set_buf(0, buf)
  end
  return buf
end

function M.history(b, words)
  local a, err = args.history(words, ctx_for(b))
  if not a then
    return b.notify(err, 'warn')
  end
  b.run('builder.history', a, function(result)
    M.show_history(b, result)
    return true
  end)
end

--- builder.diff of one checkpoint in a read-only `diff` buffer.
function M.diff(b, id)
  local ctx = ctx_for(b)
  b.run('builder.diff', { checkpoint = id, project = ctx.project }, function(r)
    local buf = vim.api.nvim_create_buf(false, true)
    pcall(vim.api.nvim_buf_set_name, buf, 'builder://diff/' .. id)
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(type(r) == 'table' and r.diff or '', '\n', { plain = true }))
    vim.bo[buf].filetype = 'diff'
    vim.bo[buf].modifiable = false
    vim.cmd('botright split')
    vim.api.nvim_win_set_buf(0, buf)
    return true
  end)
end

--- :BuilderRevert[!] [checkpoint] [file ...]; without an id, the newest checkpoint.
function M.revert(b, words, bang)
  local ctx = ctx_for(b)
  local function go(newest)
    local a, err = args.revert(words, bang, ctx, newest)
    if not a then
      return b.notify(err, 'warn')
    end
    b.run('builder.revert', a)
  end
  if args.is_checkpoint_id(words and words[1]) then
    return go(nil)
  end
  b.execute('builder.history', { limit = 1, project = ctx.project }, function(err, result)
    if err then
      b.notify('history: ' .. tostring(err.message or err), 'error')
      return
    end
    go(type(result) == 'table' and result[1] and result[1].id or nil)
  end)
end

--- :BuilderReview show|accept [file ...]|discard (change sets held while `review` is on).
function M.review(b, words)
  local r, err = args.review(words, ctx_for(b))
  if not r then
    return b.notify(err, 'warn')
  end
  b.run(r.command, r.arguments)
end

--- :BuilderFix [all]: every server's errors on the cursor line (or in the buffer) to the model.
function M.fix(b, words)
  local ctx = ctx_for(b)
  local all = words and words[1] == 'all'
  local opts = all and {} or { lnum = vim.api.nvim_win_get_cursor(0)[1] - 1 }
  local a, err = args.fix(words, vim.diagnostic.get(0, opts), ctx)
  if not a then
    return b.notify(err, 'warn')
  end
  b.run_task('builder.fix', a)
end

local function complete_words(list)
  return function(lead)
    return vim.tbl_filter(function(w)
      return vim.startswith(w, lead)
    end, list)
  end
end

function M.create(b)
  local cmd = vim.api.nvim_create_user_command
  cmd('BuilderGenerate', function(c)
    M.generate(b, c.args, b.opts and b.opts.wait)
  end, { nargs = '*', desc = 'builder-lsp: generate from a prompt (asks when empty)' })
  cmd('BuilderApply', function(c)
    M.apply(b, c)
  end, { nargs = '?', range = true, desc = 'builder-lsp: apply an answer from a register or the selected lines' })
  cmd('BuilderSandbox', function(c)
    M.sandbox(b, c.fargs)
  end, {
    nargs = '*',
    desc = 'builder-lsp: sandbox create|status|kill|open|restart|logs',
    complete = function(lead, line)
      local words = vim.split(vim.trim(line), '%s+')
      local n = #words + (line:match('%s$') and 1 or 0)
      if n <= 2 then
        return complete_words(args.sandbox_actions)(lead)
      end
      if words[2] == 'create' then
        return complete_words({ 'local', 'e2b', 'vercel', 'template=react-vite', 'isolation=', 'open=' })(lead)
      end
      return {}
    end,
  })
  cmd('BuilderInstall', function(c)
    M.install(b, c.fargs)
  end, { nargs = '+', desc = 'builder-lsp: install packages ([-D] name[@version] ...)' })
  cmd('BuilderZip', function(c)
    M.zip(b, c.fargs)
  end, { nargs = '?', complete = 'file', desc = 'builder-lsp: zip the project' })
  cmd('BuilderReset', function()
    b.run('builder.conversation.reset', { project = ctx_for(b).project })
  end, { nargs = 0, desc = 'builder-lsp: start a new conversation' })
  cmd('BuilderModels', function()
    b.run('builder.models', { project = ctx_for(b).project })
  end, { nargs = 0, desc = 'builder-lsp: providers, default model, which keys are present' })
  cmd('BuilderCancel', function(c)
    M.cancel(b, c.fargs)
  end, { nargs = '?', desc = 'builder-lsp: cancel the running task (or the one named)' })
  cmd('BuilderHistory', function(c)
    M.history(b, c.fargs)
  end, { nargs = '?', desc = 'builder-lsp: the checkpoints (<CR>: diff, r: revert)' })
  cmd('BuilderRevert', function(c)
    M.revert(b, c.fargs, c.bang)
  end, {
    nargs = '*',
    bang = true,
    complete = 'file',
    desc = 'builder-lsp: take a checkpoint (default: the newest) and every later one back; ! also reverts files changed since',
  })
  cmd('BuilderReview', function(c)
    M.review(b, c.fargs)
  end, {
    nargs = '*',
    desc = 'builder-lsp: the pending change set: show|accept [file ...]|discard',
    complete = function(lead, line)
      local words = vim.split(vim.trim(line), '%s+')
      local n = #words + (line:match('%s$') and 1 or 0)
      if n <= 2 then
        return complete_words(args.review_actions)(lead)
      end
      return vim.fn.getcompletion(lead, 'file')
    end,
  })
  cmd('BuilderFix', function(c)
    M.fix(b, c.fargs)
  end, {
    nargs = '?',
    complete = complete_words({ 'all' }),
    desc = "builder-lsp: fix the errors on this line (any server's) with the model; all: the whole file",
  })
  cmd('BuilderStream', function()
    require('builder.stream').open()
  end, { nargs = 0, desc = 'builder-lsp: show the raw model text (builder://stream)' })
end

return M
