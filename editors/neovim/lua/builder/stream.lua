-- The builder://stream scratch buffer: raw model text from builder/generationDelta.

local M = {}

M.name = 'builder://stream'
local last_task = nil

local function find()
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_valid(b) and vim.api.nvim_buf_get_name(b) == M.name then
      return b
    end
  end
end

--- The stream buffer, created on first use (unlisted scratch, not modifiable by hand).
function M.buf()
  local b = find()
  if b then
    return b
  end
  b = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_name(b, M.name)
  vim.bo[b].buftype = 'nofile'
  vim.bo[b].bufhidden = 'hide'
  vim.bo[b].swapfile = false
  vim.bo[b].modifiable = false
  return b
end

--- Text of the buffer (for tests and :BuilderStream users).
function M.text()
  local b = find()
  if not b then
    return ''
  end
  return table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\n')
end

local function insert_at_end(b, text)
  local n = vim.api.nvim_buf_line_count(b)
  local last = vim.api.nvim_buf_get_lines(b, n - 1, n, false)[1] or ''
  vim.bo[b].modifiable = true
  vim.api.nvim_buf_set_text(b, n - 1, #last, n - 1, #last, vim.split(text, '\n', { plain = true }))
  vim.bo[b].modifiable = false
end

--- Appends one delta; a new task starts with a header line.
function M.append(task_id, text)
  if type(text) ~= 'string' or text == '' then
    return
  end
  local b = M.buf()
  -- Windows whose cursor is on the last line follow the text.
  local follow = {}
  local n = vim.api.nvim_buf_line_count(b)
  for _, w in ipairs(vim.fn.win_findbuf(b)) do
    if vim.api.nvim_win_get_cursor(w)[1] >= n then
      table.insert(follow, w)
    end
  end
  if task_id ~= last_task then
    last_task = task_id
    local empty = n == 1 and (vim.api.nvim_buf_get_lines(b, 0, 1, false)[1] or '') == ''
    insert_at_end(b, (empty and '' or '\n\n') .. '=== builder task ' .. tostring(task_id) .. ' ===\n')
  end
  insert_at_end(b, text)
  local last = vim.api.nvim_buf_line_count(b)
  for _, w in ipairs(follow) do
    pcall(vim.api.nvim_win_set_cursor, w, { last, 0 })
  end
end

--- Shows the buffer in a split (or focuses the window that shows it).
function M.open()
  local b = M.buf()
  local wins = vim.fn.win_findbuf(b)
  if #wins > 0 then
    vim.api.nvim_set_current_win(wins[1])
  else
    vim.cmd('botright split')
    vim.api.nvim_win_set_buf(0, b)
  end
  vim.api.nvim_win_set_cursor(0, { vim.api.nvim_buf_line_count(b), 0 })
  return b
end

return M
