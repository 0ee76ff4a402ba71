-- Driven by tests/nvim.rs: start builder-lsp as a real Neovim LSP client, run builder.apply,
-- save with :wall, and dump the result and every loaded buffer as JSON.
local bin = vim.env.BUILDER_BIN
local root = vim.env.BUILDER_ROOT
local answer = table.concat(vim.fn.readfile(vim.env.BUILDER_ANSWER, 'b'), '\n')
local out = vim.env.BUILDER_OUT

local function finish(tbl)
  vim.fn.writefile({ vim.json.encode(tbl) }, out)
  vim.cmd('qa!')
end

vim.cmd('edit ' .. vim.fn.fnameescape(root .. '/src/App.jsx'))
local id = vim.lsp.start({
  name = 'builder',
  cmd = { bin },
  root_dir = root,
  cmd_env = { BUILDER_STATE_DIR = vim.env.BUILDER_STATE_DIR, BUILDER_LOG = 'warn' },
})
if not id then
  return finish({ err = 'vim.lsp.start failed' })
end
local ok = vim.wait(10000, function()
  local c = vim.lsp.get_client_by_id(id)
  return c ~= nil and c.initialized == true
end, 20)
if not ok then
  return finish({ err = 'server did not initialize' })
end
local client = vim.lsp.get_client_by_id(id)
local done, result, err = false, nil, nil
client:request('workspace/executeCommand', {
  command = 'builder.apply',
  arguments = { { response = answer, wait = true } },
}, function(e, r)
  err, result, done = e, r, true
end, 0)
if not vim.wait(20000, function() return done end, 20) then
  return finish({ err = 'builder.apply timed out' })
end
vim.cmd('silent! wall')
local bufs, modified = {}, {}
for _, b in ipairs(vim.api.nvim_list_bufs()) do
  if vim.api.nvim_buf_is_loaded(b) and vim.api.nvim_buf_get_name(b) ~= '' then
    local name = vim.api.nvim_buf_get_name(b)
    bufs[name] = table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\n')
    if vim.bo[b].modified then
      table.insert(modified, name)
    end
  end
end
finish({ err = err and vim.inspect(err) or vim.NIL, result = result, bufs = bufs, modified = modified,
  encoding = client.offset_encoding })
