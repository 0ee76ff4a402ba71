-- Pure functions: user command arguments -> `workspace/executeCommand` argument objects, and
-- results -> one-line summaries. Nothing here touches editor state.

local M = {}

local function trim(s)
  return (s or ''):gsub('^%s+', ''):gsub('%s+$', '')
end

--- `key=value` words into a table (true/false become booleans); other words in `rest`.
function M.split_kv(words)
  local kv, rest = {}, {}
  for _, w in ipairs(words or {}) do
    local k, v = w:match('^([%w_]+)=(.*)$')
    if k then
      if v == 'true' then
        v = true
      elseif v == 'false' then
        v = false
      end
      kv[k] = v
    else
      table.insert(rest, w)
    end
  end
  return kv, rest
end

local function with_project(a, ctx)
  if ctx and ctx.project then
    a.project = ctx.project
  end
  return a
end

--- :BuilderGenerate {prompt}
--- ctx: { uri?, project?, model?, wait? }
function M.generate(prompt, ctx)
  ctx = ctx or {}
  prompt = trim(prompt)
  if prompt == '' then
    return nil, 'a prompt is needed, e.g. :BuilderGenerate a landing page for a bakery'
  end
  local a = { prompt = prompt, wait = ctx.wait and true or false }
  if ctx.model and ctx.model ~= '' then
    a.model = ctx.model
  end
  if ctx.uri then
    a.uri = ctx.uri
  end
  return with_project(a, ctx)
end

--- Lines of a range (or a register's text) -> the answer text.
function M.lines_to_text(lines)
  local text = table.concat(lines or {}, '\n')
  if text ~= '' and text:sub(-1) ~= '\n' then
    text = text .. '\n'
  end
  return text
end

--- :BuilderApply: the answer text -> builder.apply arguments.
function M.apply(text, ctx)
  if type(text) ~= 'string' or trim(text) == '' then
    return nil, 'no answer text: copy the model\'s answer (with <file path="..."> blocks) to a register, or select it'
  end
  return with_project({ response = text, wait = true }, ctx)
end

--- The register :BuilderApply reads: the one named, else `+` when a clipboard exists, else `"`.
function M.registers(arg, has_clipboard)
  arg = trim(arg)
  if arg ~= '' then
    return { arg }
  end
  if has_clipboard then
    return { '+', '"' }
  end
  return { '"' }
end

M.sandbox_actions = { 'create', 'status', 'kill', 'open', 'restart', 'logs' }

--- :BuilderSandbox {action} [provider] [key=value ...]
--- Returns { action, command, arguments, task } or nil, error.
function M.sandbox(words, ctx)
  words = words or {}
  local action = words[1] or 'status'
  local kv, rest = M.split_kv(vim.list_slice(words, 2))
  if action == 'create' then
    local a = {}
    local provider = rest[1] or kv.provider
    if provider ~= nil then
      if provider ~= 'local' and provider ~= 'e2b' and provider ~= 'vercel' then
        return nil, ('unknown sandbox provider %q (local, e2b or vercel)'):format(provider)
      end
      a.provider = provider
    end
    if #rest > 1 then
      return nil, ('unexpected %q; usage: :BuilderSandbox create [local|e2b|vercel] [template=react-vite] [isolation=auto|bwrap|none] [open=true|false]'):format(rest[2])
    end
    for k, v in pairs(kv) do
      if k == 'template' or k == 'isolation' then
        a[k] = v
      elseif k == 'open' then
        if type(v) ~= 'boolean' then
          return nil, 'open= takes true or false'
        end
        a.open = v
      elseif k ~= 'provider' then
        return nil, ('unknown option %q for :BuilderSandbox create'):format(k)
      end
    end
    a.wait = false
    return { action = action, command = 'builder.sandbox.create', arguments = with_project(a, ctx), task = true }
  end
  if #rest > 0 or next(kv) ~= nil then
    if action == 'logs' and tonumber(rest[1]) and #rest == 1 then
      return {
        action = action,
        command = 'builder.sandbox.logs',
        arguments = with_project({ lines = tonumber(rest[1]) }, ctx),
      }
    end
    return nil, ('unexpected arguments after %q'):format(action)
  end
  if action == 'status' or action == 'open' then
    return { action = action, command = 'builder.sandbox.status', arguments = with_project({}, ctx) }
  elseif action == 'kill' then
    return { action = action, command = 'builder.sandbox.kill', arguments = with_project({}, ctx) }
  elseif action == 'restart' then
    return {
      action = action,
      command = 'builder.sandbox.restart',
      arguments = with_project({ wait = false }, ctx),
      task = true,
    }
  elseif action == 'logs' then
    return { action = action, command = 'builder.sandbox.logs', arguments = with_project({}, ctx) }
  end
  return nil, ('unknown action %q (create, status, kill, open, restart, logs)'):format(action)
end

--- :BuilderInstall [-D|--dev] {pkg ...}
function M.install(words, ctx)
  local packages, dev = {}, false
  for _, w in ipairs(words or {}) do
    if w == '-D' or w == '--dev' or w == '--save-dev' then
      dev = true
    elseif w:sub(1, 1) == '-' then
      return nil, ('unknown flag %q (only -D / --dev)'):format(w)
    else
      table.insert(packages, w)
    end
  end
  if #packages == 0 then
    return nil, 'name at least one package, e.g. :BuilderInstall react-router-dom'
  end
  local a = { packages = packages, wait = false }
  if dev then
    a.dev = true
  end
  return with_project(a, ctx)
end

--- :BuilderZip [output]
function M.zip(words, ctx)
  local a = {}
  if words and words[1] then
    if #words > 1 then
      return nil, 'one output path at most'
    end
    a.output = words[1]
  end
  return with_project(a, ctx)
end

--- :BuilderCancel [taskId]
function M.cancel(words, ctx, running_task)
  local a = {}
  local id = (words and words[1]) or running_task
  if id then
    a.taskId = id
  end
  return with_project(a, ctx)
end

--- A checkpoint id as builder.history gives it (`00012-3fa9`).
function M.is_checkpoint_id(w)
  return type(w) == 'string' and w:match('^%d+%-%x+$') ~= nil
end

--- :BuilderHistory [limit]
function M.history(words, ctx)
  local a = {}
  local n = words and words[1]
  if n ~= nil then
    local limit = tonumber(n)
    if not limit or limit < 1 or limit % 1 ~= 0 then
      return nil, ('history: %q is not a number of checkpoints (e.g. :BuilderHistory 20)'):format(tostring(n))
    end
    a.limit = limit
  end
  return with_project(a, ctx)
end

--- :BuilderRevert[!] [checkpoint] [file ...]: the checkpoint (default `newest`, the caller's
--- newest id) and every later one; only the files named; `!` also reverts files changed since.
function M.revert(words, bang, ctx, newest)
  words = vim.deepcopy(words or {})
  local id
  if M.is_checkpoint_id(words[1]) then
    id = table.remove(words, 1)
  else
    id = newest
  end
  if not id then
    return nil, 'no checkpoint to revert: the history is empty (:BuilderHistory)'
  end
  local a = { checkpoint = id }
  if #words > 0 then
    a.files = words
  end
  if bang then
    a.force = true
  end
  return with_project(a, ctx)
end

M.review_actions = { 'show', 'accept', 'discard' }

--- vim.diagnostic items (any namespace: TypeScript's, ESLint's, ours) -> LSP diagnostics for
--- builder.fix. Neovim's own code_action sends a server only its own diagnostics, so
--- :BuilderFix is how another server's error reaches the model. Hints and infos are left out.
function M.fix_diagnostics(items)
  local out = {}
  for _, d in ipairs(items or {}) do
    local sev = d.severity or 1
    if sev <= 2 and type(d.message) == 'string' and d.message ~= '' then
      local lsp = d.user_data and d.user_data.lsp
      if type(lsp) == 'table' and lsp.range then
        out[#out + 1] = lsp
      else
        out[#out + 1] = {
          range = {
            start = { line = d.lnum or 0, character = d.col or 0 },
            ['end'] = { line = d.end_lnum or d.lnum or 0, character = d.end_col or d.col or 0 },
          },
          severity = sev,
          source = d.source,
          message = d.message,
        }
      end
    end
  end
  return out
end

--- :BuilderFix [all]: the diagnostics on the cursor line (or, with `all`, in the buffer).
function M.fix(words, items, ctx)
  ctx = ctx or {}
  local all = words and words[1] == 'all'
  if words and words[1] and not all then
    return nil, ('fix: unknown argument %q (use :BuilderFix or :BuilderFix all)'):format(tostring(words[1]))
  end
  local a = { diagnostics = M.fix_diagnostics(items) }
  if ctx.uri then
    a.uri = ctx.uri
  end
  if all then
    a.all = true
  elseif #a.diagnostics == 0 then
    return nil, 'fix: no error on this line (:BuilderFix all fixes every error the file has)'
  end
  return with_project(a, ctx)
end

--- :BuilderReview show|accept [file ...]|discard -> { command, arguments }.
function M.review(words, ctx)
  local action = words and words[1] or 'show'
  if not vim.tbl_contains(M.review_actions, action) then
    return nil, ('review: unknown action %q (show, accept, discard)'):format(tostring(action))
  end
  local a = {}
  if action == 'accept' and #words > 1 then
    a.files = vim.list_slice(words, 2)
  elseif action ~= 'accept' and #words > 1 then
    return nil, ('review %s takes no files'):format(action)
  end
  return { command = 'builder.review.' .. action, arguments = with_project(a, ctx) }
end

--- builder.history entries -> lines of the builder://history buffer, and the checkpoint id of
--- each line (for <CR> and `r` on it).
function M.history_lines(entries)
  local lines, ids = {}, {}
  if type(entries) ~= 'table' or #entries == 0 then
    return { 'No checkpoints yet: every apply, generation and revert records one.' }, { false }
  end
  for _, e in ipairs(entries) do
    local model = (e.model and e.model ~= vim.NIL) and ('  [' .. tostring(e.model) .. ']') or ''
    table.insert(lines, ('%s  %s  %-8s %s%s'):format(tostring(e.id), tostring(e.time), tostring(e.source),
      tostring(e.summary):gsub('\n', ' '), model))
    table.insert(ids, e.id)
    for _, f in ipairs(type(e.files) == 'table' and e.files or {}) do
      table.insert(lines, ('    %-8s %s'):format(tostring(f.change), tostring(f.path)))
      table.insert(ids, e.id)
    end
  end
  return lines, ids
end

local function count(t)
  return type(t) == 'table' and #t or 0
end

local function names(t, field)
  local out = {}
  for _, v in ipairs(type(t) == 'table' and t or {}) do
    table.insert(out, type(v) == 'table' and tostring(v[field or 'path'] or v.name or '?') or tostring(v))
  end
  return table.concat(out, ', ')
end

--- One line for a person, and a level ('info', 'warn', 'error').
function M.summary(command, r)
  if type(r) ~= 'table' then
    return command .. ': no result', 'warn'
  end
  local level = (count(r.errors) > 0 or r.applied == false) and 'warn' or 'info'
  if command == 'builder.apply' or command == 'builder.generate' then
    local msg = r.message
    if not msg or msg == '' then
      msg = ('%d created, %d updated, %d skipped'):format(count(r.filesCreated), count(r.filesUpdated), count(r.filesSkipped))
    end
    if count(r.filesSkipped) > 0 then
      msg = msg .. ' (skipped: ' .. names(r.filesSkipped) .. ')'
    end
    return msg, level
  elseif command == 'builder.sandbox.status' then
    if not r.active then
      return 'no sandbox is running (:BuilderSandbox create)', 'info'
    end
    return ('sandbox %s (%s) at %s — %s, up %ss%s'):format(
      tostring(r.sandboxId),
      tostring(r.provider),
      tostring(r.url),
      r.healthy and 'healthy' or 'not answering',
      tostring(r.uptimeSeconds or 0),
      r.isolation and (', isolation ' .. tostring(r.isolation)) or ''
    ),
      r.healthy and 'info' or 'warn'
  elseif command == 'builder.sandbox.kill' then
    if r.killed then
      return 'sandbox ' .. tostring(r.sandboxId) .. ' stopped', 'info'
    end
    return r.message or 'no sandbox was running', 'info'
  elseif command == 'builder.sandbox.create' then
    if r.url and r.url ~= vim.NIL then
      return ('sandbox %s ready at %s'):format(tostring(r.sandboxId), tostring(r.url)), 'info'
    end
    return 'sandbox not created: ' .. names(r.errors), 'error'
  elseif command == 'builder.sandbox.logs' then
    return table.concat(type(r.lines) == 'table' and r.lines or {}, '\n'), 'info'
  elseif command == 'builder.createZip' then
    return ('wrote %s (%s files, %s bytes)%s'):format(
      tostring(r.path),
      tostring(r.files),
      tostring(r.bytes),
      count(r.excluded) > 0 and (', left out ' .. count(r.excluded)) or ''
    ),
      'info'
  elseif command == 'builder.conversation.reset' then
    return 'conversation reset', 'info'
  elseif command == 'builder.installPackages' then
    local msg = ('installed %d, already there %d, failed %d'):format(
      count(r.installed),
      count(r.alreadyInstalled),
      count(r.failed)
    )
    return msg, count(r.failed) > 0 and 'warn' or 'info'
  elseif command == 'builder.revert' then
    local msg = r.message
    if not msg or msg == '' then
      msg = ('restored %d, deleted %d'):format(count(r.filesRestored), count(r.filesDeleted))
      if count(r.conflicts) > 0 then
        msg = msg .. '; changed since, left alone: ' .. names(r.conflicts)
      end
    end
    if count(r.conflicts) > 0 then
      msg = msg .. ' — :BuilderRevert! {id} {file} reverts them too'
      level = 'warn'
    end
    return msg, level
  elseif command == 'builder.task.cancel' then
    if r.cancelled then
      return 'cancelled ' .. tostring(r.taskId), 'info'
    end
    return r.message or 'nothing to cancel', 'info'
  elseif command == 'builder.models' then
    local lines = { 'default model: ' .. tostring(r.defaultModel ~= vim.NIL and r.defaultModel or 'none') }
    for _, p in ipairs(type(r.providers) == 'table' and r.providers or {}) do
      local key = p.keyPresent and ('key from ' .. tostring(p.keySource ~= vim.NIL and p.keySource or '?'))
        or (p.keyRequired and 'no key' or 'no key needed')
      table.insert(lines, ('  %s%s: %s%s'):format(
        tostring(p.provider),
        p.default and ' (default)' or '',
        key,
        p.baseUrl and p.baseUrl ~= vim.NIL and (', ' .. tostring(p.baseUrl)) or ''
      ))
    end
    return table.concat(lines, '\n'), 'info'
  end
  if r.message then
    return tostring(r.message), level
  end
  return command .. ' done', level
end

return M
