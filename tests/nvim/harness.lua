-- Shared pieces of the headless Neovim tests (plugin.lua, completion.lua, history.lua, review.lua,
-- save.lua, template.lua): checks that fail with a message, a watchdog, file, buffer and project
-- helpers, a loopback HTTP/1.1 listener on vim.uv, and the
-- runner that exits Neovim with 0 (pass), 1 (fail) or 3 (timeout).

local uv = vim.uv or vim.loop
local H = {}

local started = uv.hrtime()
local Fail = {}

function H.elapsed()
  return math.floor((uv.hrtime() - started) / 1e6)
end

function H.log(fmt, ...)
  io.stderr:write(('[nvim-test %5d ms] '):format(H.elapsed()) .. fmt:format(...) .. '\n')
end

function H.fail(fmt, ...)
  error(setmetatable({ msg = fmt:format(...) }, Fail), 2)
end

function H.check(cond, fmt, ...)
  if not cond then
    H.fail(fmt, ...)
  end
end

function H.wait_for(what, ms, cond)
  if not vim.wait(ms, cond, 20) then
    H.fail('timed out after %d ms waiting for %s', ms, what)
  end
end

function H.read_file(path)
  local f = io.open(path, 'rb')
  if not f then
    return nil
  end
  local s = f:read('*a')
  f:close()
  return s
end

function H.write_file(path, text)
  vim.fn.mkdir(vim.fn.fnamemodify(path, ':h'), 'p')
  local f = assert(io.open(path, 'wb'))
  f:write(text)
  f:close()
end

function H.exists(path)
  return uv.fs_stat(path) ~= nil
end

--- The plugin directory (absolute: tests change directory).
function H.plugin_dir()
  return vim.env.BUILDER_PLUGIN_DIR
    or vim.fn.fnamemodify(debug.getinfo(1, 'S').source:gsub('^@', ''), ':p:h:h:h') .. '/editors/neovim'
end

--- The server binary from BUILDER_LSP, absolute.
function H.server_bin()
  local bin = vim.env.BUILDER_LSP
  H.check(bin and bin ~= '', 'set BUILDER_LSP to the builder-lsp binary')
  H.check(vim.fn.executable(bin) == 1, 'BUILDER_LSP=%s is not executable', bin)
  return vim.fn.fnamemodify(bin, ':p')
end

--- An HTTP/1.1 request head → method, path, headers (names lowercased).
function H.parse_head(head)
  local lines = vim.split(head, '\r\n', { plain = true })
  local method, path = lines[1]:match('^(%u+) (%S+) HTTP/1%.[01]$')
  local headers = {}
  for i = 2, #lines do
    local k, v = lines[i]:match('^([^:]+):%s*(.-)%s*$')
    if k then
      headers[k:lower()] = v
    end
  end
  return method, path, headers
end

local function close(sock)
  if not sock:is_closing() then
    sock:close()
  end
end

--- A loopback HTTP/1.1 server (one request per connection, `Connection: close`).
--- handler(req, res) with req = { method, path, headers, body } and
--- res.json(status_line, body) / res.sse(frames, every_ms). Returns { port, requests, errors, close() }.
function H.http_server(handler)
  local srv = { requests = {}, errors = {} }
  local server = uv.new_tcp()
  assert(server:bind('127.0.0.1', 0))
  local function on_connection(sock)
    local buf, handled = '', false
    sock:read_start(function(err, data)
      if err or not data then
        return close(sock)
      end
      if handled then
        return
      end
      buf = buf .. data
      local he = buf:find('\r\n\r\n', 1, true)
      if not he then
        return
      end
      local method, path, headers = H.parse_head(buf:sub(1, he - 1))
      local body = buf:sub(he + 4)
      if #body < (tonumber(headers['content-length'] or '0') or 0) then
        return
      end
      handled = true
      local req = { method = method, path = path, headers = headers, body = body }
      table.insert(srv.requests, req)
      local res = {}
      function res.json(status, text)
        sock:write(('HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s')
          :format(status, #text, text))
        sock:shutdown(function()
          close(sock)
        end)
      end
      function res.sse(frames, every_ms)
        sock:write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n')
        local i, timer = 0, uv.new_timer()
        timer:start(5, every_ms or 10, function()
          i = i + 1
          if sock:is_closing() then
            timer:stop()
            timer:close()
            return
          end
          if i <= #frames then
            sock:write(frames[i])
          else
            timer:stop()
            timer:close()
            sock:shutdown(function()
              close(sock)
            end)
          end
        end)
      end
      local ok, e = pcall(handler, req, res)
      if not ok then
        table.insert(srv.errors, 'handler: ' .. tostring(e))
        res.json('500 Internal Server Error', '{"error":{"message":"fake: handler failed"}}')
      end
    end)
  end
  assert(server:listen(16, function(err)
    if err then
      table.insert(srv.errors, 'listen: ' .. tostring(err))
      return
    end
    local sock = uv.new_tcp()
    server:accept(sock)
    on_connection(sock)
  end))
  srv.port = server:getsockname().port
  function srv.close()
    close(server)
  end
  return srv
end

--- A project folder <tempdir>/<name> holding `files` (rel → text), made the current directory;
--- the server logs at warn unless BUILDER_LOG says otherwise, and every vim.notify is echoed to
--- stderr (after on_notify(msg, level), when given). Returns tmp, root and P (P(rel) = root/rel).
function H.project(name, files, on_notify)
  local tmp = vim.fn.tempname()
  local root = tmp .. '/' .. name
  local function P(rel)
    return root .. '/' .. rel
  end
  vim.fn.mkdir(root, 'p')
  for rel, text in pairs(files or {}) do
    H.write_file(P(rel), text)
  end
  vim.env.BUILDER_LOG = vim.env.BUILDER_LOG or 'warn'
  vim.cmd.cd(vim.fn.fnameescape(root))
  vim.notify = function(msg, level)
    if on_notify then
      on_notify(msg, level)
    end
    io.stderr:write('  notify[' .. tostring(level) .. ']: ' .. tostring(msg) .. '\n')
  end
  return tmp, root, P
end

--- The server's cmd_env keeping its state and cache under `tmp`.
function H.state_env(tmp)
  return { BUILDER_STATE_DIR = tmp .. '/state', BUILDER_CACHE_DIR = tmp .. '/cache' }
end

--- A `<file>` block of an answer.
function H.file_block(path, text)
  return '<file path="' .. path .. '">\n' .. text .. '</file>\n'
end

--- An answer: the explanation, then a `<file>` block for each { path, text } of `files`.
function H.answer(explanation, files)
  local parts = { '<explanation>' .. explanation .. '</explanation>\n' }
  for _, f in ipairs(files) do
    table.insert(parts, H.file_block(f[1], f[2]))
  end
  return table.concat(parts)
end

--- The small React project most scripts start from (src/App.jsx and src/index.css before the
--- answer), and the files an answer adds to it.
H.shop = {
  PACKAGE_JSON = '{ "name": "shop" }\n',
  APP_BEFORE = 'export default function App() {\n  return null;\n}\n',
  CSS_BEFORE = 'body { margin: 0 }\n',
  APP_WITH_CARD = 'import { Card } from "./parts/Card.jsx";\n\nexport default function App() {\n  return <Card title="Hi" />;\n}\n',
  NEW_JS = 'export const greeting = "hello";\n',
  CARD = 'export function Card({ title }) {\n  return <h2>{title}</h2>;\n}\n',
}

--- The shop's answer that adds a Card and a greeting: App.jsx and index.css (`css_after`)
--- updated, then each { path, text } of `extra`, then src/new.js and src/parts/Card.jsx created.
function H.shop.card_answer(css_after, extra)
  local files = { { 'src/App.jsx', H.shop.APP_WITH_CARD }, { 'src/index.css', css_after } }
  vim.list_extend(files, extra or {})
  vim.list_extend(files, { { 'src/new.js', H.shop.NEW_JS }, { 'src/parts/Card.jsx', H.shop.CARD } })
  return H.answer('A card and a greeting.', files)
end

--- H.project('shop', …) holding package.json, src/App.jsx and src/index.css as before the
--- answer, plus `extra` (rel → text).
function H.shop_project(extra, on_notify)
  local files = {
    ['package.json'] = H.shop.PACKAGE_JSON,
    ['src/App.jsx'] = H.shop.APP_BEFORE,
    ['src/index.css'] = H.shop.CSS_BEFORE,
  }
  return H.project('shop', vim.tbl_extend('force', files, extra or {}), on_notify)
end

--- A buffer's lines joined with '\n' (no final newline).
function H.buffer_text(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf or 0, 0, -1, false), '\n')
end

--- The names of the loaded file buffers with unsaved changes (full paths; tails with `tails`,
--- sorted).
function H.modified_buffers(tails)
  local out = {}
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and vim.bo[b].modified and vim.bo[b].buftype == '' then
      local name = vim.api.nvim_buf_get_name(b)
      table.insert(out, tails and vim.fn.fnamemodify(name, ':t') or name)
    end
  end
  if tails then
    table.sort(out)
  end
  return out
end

--- A sorted copy of a list (nil → {}).
function H.sorted(list)
  local c = vim.deepcopy(list or {})
  table.sort(c)
  return c
end

--- The builder client of the current buffer once it is initialized.
function H.wait_client(name)
  local client
  H.wait_for('builder-lsp to attach and initialize', 10000, function()
    client = vim.lsp.get_clients({ bufnr = 0, name = name or 'builder_lsp' })[1]
    return client ~= nil and client.initialized == true
  end)
  return client
end

--- Collects `User BuilderDone` data; wait(command) takes the next one for that command.
function H.results()
  local list = {}
  vim.api.nvim_create_autocmd('User', {
    pattern = 'BuilderDone',
    callback = function(ev)
      table.insert(list, ev.data)
    end,
  })
  return {
    wait = function(command, ms)
      local found
      H.wait_for(command .. ' to finish', ms or 15000, function()
        for i, r in ipairs(list) do
          if r.command == command then
            found = table.remove(list, i)
            return true
          end
        end
        return false
      end)
      return found
    end,
  }
end

--- Runs main() with a watchdog; stops the clients and exits Neovim with the outcome.
function H.run(main, overall_ms)
  overall_ms = overall_ms or tonumber(vim.env.BUILDER_TEST_TIMEOUT_MS or '') or 60000
  local watchdog = uv.new_timer()
  watchdog:start(overall_ms, 0, function()
    io.stderr:write(('[nvim-test] FAIL: overall timeout (%d ms)\n'):format(overall_ms))
    os.exit(3)
  end)
  local ok, err = xpcall(main, function(e)
    if getmetatable(e) == Fail then
      return e.msg
    end
    return debug.traceback(tostring(e), 2)
  end)
  for _, c in ipairs(vim.lsp.get_clients()) do
    pcall(function()
      vim.lsp.stop_client(c.id, true)
    end)
  end
  if ok then
    H.log('PASS')
    vim.cmd('qa!')
  else
    H.log('FAIL: %s', tostring(err))
    vim.cmd('cquit 1')
  end
end

return H
