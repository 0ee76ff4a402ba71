-- Saving builder-lsp's own edits when they land (`save_after_apply`, default on).
--
-- The builder client's `workspace/applyEdit` handler is wrapped (see init.lua): Neovim's default
-- handler applies the edit, then exactly the buffers that edit changed are written, so what the
-- server decided is on disk at once. Other buffers — even modified ones — are never written.

local M = {}

--- The server sends Neovim a new file's text without its final "\n" (a new buffer already
--- holds a line, and writing it adds the newline back; see src/server/workspace_edit.rs): a
--- created file's bytes are the inserted text plus "\n" (empty stays empty).
function M.created_bytes(inserted)
  if inserted == '' then
    return ''
  end
  return inserted .. '\n'
end

local function fname_of(uri)
  local ok, f = pcall(vim.uri_to_fname, uri)
  return ok and f or nil
end

--- What a WorkspaceEdit writes text into (pure). Returns a list, in first-seen order, of
--- `{ uri, fname, created, edits = n, text? }`: `created` when a CreateFile for it comes before
--- its text; `text` the new text when a single edit carries the file's text (the server sends
--- whole-document replacements, and a created file's one insert). Deleted files and renames
--- without text edits are not targets: there is nothing to write.
function M.targets(edit)
  local out, by_uri, created = {}, {}, {}
  local function add(uri, edits)
    if type(uri) ~= 'string' or type(edits) ~= 'table' or #edits == 0 then
      return
    end
    local fname = fname_of(uri)
    if not fname then
      return
    end
    local t = by_uri[fname]
    if not t then
      t = { uri = uri, fname = fname, created = created[fname] == true, edits = 0 }
      by_uri[fname] = t
      table.insert(out, t)
    end
    for _, e in ipairs(edits) do
      t.edits = t.edits + 1
      t.text = t.edits == 1 and type(e) == 'table' and type(e.newText) == 'string' and e.newText or nil
    end
  end
  if type(edit) ~= 'table' then
    return out
  end
  if type(edit.documentChanges) == 'table' then
    for _, change in ipairs(edit.documentChanges) do
      if type(change) == 'table' then
        if change.kind == 'create' then
          local f = fname_of(change.uri)
          if f and not by_uri[f] then
            created[f] = true
          end
        elseif change.kind == nil and type(change.textDocument) == 'table' then
          add(change.textDocument.uri, change.edits)
        end
      end
    end
  elseif type(edit.changes) == 'table' then
    local uris = vim.tbl_keys(edit.changes)
    table.sort(uris)
    for _, uri in ipairs(uris) do
      add(uri, edit.changes[uri])
    end
  end
  return out
end

--- The bytes the server means a target to have, when the edit says (else nil).
function M.intended(t)
  if type(t.text) ~= 'string' then
    return nil
  end
  if t.created then
    return M.created_bytes(t.text)
  end
  return t.text
end

--- How a buffer holding `lines` must end to be written as `bytes` (pure): 'eol' (write the
--- final newline), 'drop' (remove the last, empty line, then 'eol'), 'noeol' (no final
--- newline), or nil when the buffer does not hold `bytes` (an edit of part of the file: leave
--- Neovim's own rules alone). "\r\n" counts as "\n" (Neovim's edit does the same).
function M.ending(lines, bytes)
  local want = bytes:gsub('\r\n?', '\n')
  local joined = table.concat(lines, '\n')
  if want == '' then
    return joined == '' and 'noeol' or nil
  end
  if joined .. '\n' == want then
    return 'eol'
  end
  if joined == want then
    return want:sub(-1) == '\n' and 'drop' or 'noeol'
  end
  return nil
end

--- The loaded-or-not buffer named `fname`, without creating one.
function M.find_buf(fname)
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(b) == fname then
      return b
    end
  end
  return nil
end

--- Before the edit: each target's buffer and changedtick, to tell afterwards which buffers the
--- edit really changed (Neovim skips a TextDocumentEdit whose version is older than the buffer).
function M.snapshot(targets)
  local snap = {}
  for _, t in ipairs(targets) do
    local b = M.find_buf(t.fname)
    snap[t.fname] = {
      buf = b,
      tick = b and vim.api.nvim_buf_is_loaded(b) and vim.api.nvim_buf_get_changedtick(b) or nil,
    }
  end
  return snap
end

--- Makes `buf` end as `how` says; returns whether 'eol' changed.
local function set_ending(buf, how, bytes)
  local eol_before = vim.bo[buf].eol
  if how == 'drop' then
    pcall(vim.api.nvim_buf_call, buf, function()
      pcall(vim.cmd, 'undojoin')
      vim.api.nvim_buf_set_lines(buf, -2, -1, false, {})
    end)
    how = 'eol'
  end
  if how == 'eol' then
    vim.bo[buf].eol = true
  elseif how == 'noeol' then
    -- No final newline in the server's text: keep it that way at every write of this buffer
    -- (with 'fixeol' on, Neovim would add one).
    vim.bo[buf].eol = false
    vim.bo[buf].fixeol = false
  end
  -- A new buffer takes the content's line ending when it is "\r\n" throughout.
  if bytes and bytes:find('\r\n', 1, true) and not bytes:gsub('\r\n', ''):find('[\r\n]') then
    vim.bo[buf].fileformat = 'dos'
  end
  return vim.bo[buf].eol ~= eol_before
end

--- `:write` of one buffer. BufWritePre/FileWritePre are ignored so no format-on-save or
--- whitespace hook changes the server's bytes (the checkpoint records exactly them, and a later
--- revert would call a reformatted file a conflict); BufWritePost still runs, so language
--- servers — builder-lsp too — get `didSave`. Never `:write!`: a 'readonly' buffer stays
--- unwritten.
function M.write(buf)
  local ok, err = pcall(vim.api.nvim_buf_call, buf, function()
    local ei = vim.o.eventignore
    vim.o.eventignore = (ei == '' and '' or ei .. ',') .. 'BufWritePre,FileWritePre'
    local wrote, e = pcall(vim.cmd, 'silent lockmarks write')
    vim.o.eventignore = ei
    return wrote and '' or tostring(e)
  end)
  if ok and err == '' then
    return true
  end
  -- "...: Vim(write):E45: 'readonly' option is set (add ! to override)" -> "E45: ..."
  err = tostring(err)
  return false, err:match('(E%d+:[^\n]*)') or vim.split(err, '\n', { plain = true })[1]
end

--- Whether the file changed on disk since Neovim read it into `buf` (`:write` would stop and
--- ask). Asked with `:checktime` while a FileChangedShell autocommand of ours takes the event,
--- so there is no prompt and no reload, and Neovim still warns at the user's own `:write`.
function M.changed_on_disk(buf)
  local reason
  local ok, id = pcall(vim.api.nvim_create_autocmd, 'FileChangedShell', {
    buffer = buf,
    callback = function()
      reason = vim.v.fcs_reason
      vim.v.fcs_choice = ''
    end,
  })
  if not ok then
    return false
  end
  pcall(vim.cmd, 'checktime ' .. buf)
  pcall(vim.api.nvim_del_autocmd, id)
  return reason == 'changed' or reason == 'conflict'
end

--- After the edit landed: fixes the ending of each buffer the edit changed so its bytes are the
--- server's, and writes those that are modified when `write` is true. `on_eol(buf)` is called
--- for a buffer whose 'eol' changed (language servers do not hear of that option). Returns
--- `{ written = { fname... }, failed = { { fname, err }... } }`.
function M.land(targets, snap, write, on_eol)
  local report = { written = {}, failed = {} }
  for _, t in ipairs(targets) do
    local before = snap[t.fname] or {}
    local buf = M.find_buf(t.fname)
    local changed = buf ~= nil
      and vim.api.nvim_buf_is_loaded(buf)
      and (before.buf ~= buf or before.tick == nil or vim.api.nvim_buf_get_changedtick(buf) ~= before.tick)
    if changed and vim.bo[buf].buftype == '' then
      local bytes = M.intended(t)
      local how = bytes and M.ending(vim.api.nvim_buf_get_lines(buf, 0, -1, false), bytes) or nil
      if how and set_ending(buf, how, t.created and bytes or nil) and on_eol then
        pcall(on_eol, buf)
      end
      if write and vim.bo[buf].modified and before.tick ~= nil and M.changed_on_disk(buf) then
        table.insert(report.failed, { t.fname, 'changed on disk since it was read; :write! keeps the edit, :edit! the disk' })
      elseif write and vim.bo[buf].modified then
        local ok, err = M.write(buf)
        if ok and not vim.bo[buf].modified then
          table.insert(report.written, t.fname)
        else
          table.insert(report.failed, { t.fname, ok and 'still modified after :write' or tostring(err) })
        end
      end
    end
  end
  return report
end

return M
