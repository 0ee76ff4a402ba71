-- Shared pieces of the headless Neovim tests (plugin.lua, completion.lua, history.lua, review.lua): checks that fail
-- with a message, a watchdog, file helpers, a loopback HTTP/1.1 listener on vim.uv, and the
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
