-- Completions in Neovim 0.11 through the plugin: setup({ completion = … }) against the real
-- builder-lsp and a loopback fake of the OpenAI-compatible `POST /v1/completions` (SSE
-- `text_completion` chunks, `data: [DONE]`). In insert mode <C-x><C-o> asks; the test picks the
-- `✦ builder` item like a user (<C-n><C-y>), and the buffer, then the file after :wall, must
-- hold exactly the multi-line completion.
--
--   BUILDER_LSP=target/debug/builder-lsp tests/nvim/plugin_test.sh tests/nvim/completion.lua

local uv = vim.uv or vim.loop
local here = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:gsub('^@', ''), ':p:h')
local H = dofile(here .. '/harness.lua')
local check = H.check

local MODEL = 'fim-test'
local KEY = 'fim-secret-key'
local BEFORE = '// Numbers.\nexport function clamp(x, lo, hi) {\n  if (x < lo) ret\n'
-- What the model streams: the rest of the function, then more than the enclosing block (the
-- server stops at the block's end).
local STREAMED = { 'urn lo;\n', '  if (x > hi) ', 'return hi;\n  return x;\n', '}\n', '\nexport const other = 1;\n' }
local AFTER = '// Numbers.\nexport function clamp(x, lo, hi) {\n  if (x < lo) return lo;\n  if (x > hi) return hi;\n  return x;\n}\n'

local function frames()
  local out = {}
  local function chunk(text, finish)
    return 'data: ' .. vim.json.encode({
      id = 'cmpl-test',
      object = 'text_completion',
      created = 1700000000,
      model = MODEL,
      choices = { { text = text, index = 0, logprobs = vim.NIL, finish_reason = finish or vim.NIL } },
    }) .. '\n\n'
  end
  for _, t in ipairs(STREAMED) do
    table.insert(out, chunk(t))
  end
  table.insert(out, chunk('', 'stop'))
  table.insert(out, 'data: [DONE]\n\n')
  return out
end

local function keys(s)
  return vim.api.nvim_replace_termcodes(s, true, false, true)
end

local function main()
  local bin = H.server_bin()
  check(vim.fn.has('nvim-0.11') == 1, 'Neovim 0.11 or newer is needed')
  vim.opt.rtp:prepend(H.plugin_dir())
  local builder = require('builder')
  local config = require('builder.config')

  -- Pure parts: the completion options reach the server camelCased; bad ones are reported.
  do
    local st = config.settings(config.resolve({ completion = { model = 'compatible/x', max_tokens = 48, on_typing = true,
      debounce_ms = 20, label = '* b' } }))
    check(vim.deep_equal(st.completion, { model = 'compatible/x', maxTokens = 48, onTyping = true, debounceMs = 20,
      label = '* b' }), 'completion settings: %s', vim.inspect(st.completion))
    local _, p1 = config.resolve({ completion = 'llamacpp/any' })
    check(#p1 == 1, 'a non-table completion must be reported: %s', vim.inspect(p1))
    local _, p2 = config.resolve({ completion = { modle = 'x' } })
    check(#p2 == 1 and p2[1]:find('modle', 1, true), 'an unknown completion key must be reported: %s', vim.inspect(p2))
    check(config.completion_mode(config.resolve({}), false) == nil, 'no completion table: completions stay off')
    check(config.completion_mode(config.resolve({ completion = { enabled = false } }), true) == nil,
      'enabled = false turns them off')
    check(config.completion_mode(config.resolve({ completion = {} }), true) == 'inline'
      and config.completion_mode(config.resolve({ completion = {} }), false) == 'menu', 'completion modes')
  end

  local fake = H.http_server(function(req, res)
    if req.method == 'POST' and req.path == '/v1/completions' then
      res.sse(frames(), 10)
    else
      res.json('404 Not Found', '{"error":{"message":"fake: not found","type":"invalid_request_error"}}')
    end
  end)
  H.log('fake FIM server on 127.0.0.1:%d', fake.port)

  local notes = {}
  local tmp, root, P = H.project('shop', {
    ['package.json'] = H.shop.PACKAGE_JSON,
    ['src/clamp.js'] = BEFORE,
  }, function(msg)
    table.insert(notes, tostring(msg))
  end)
  local file = P('src/clamp.js')
  vim.env.COMPATIBLE_BASE_URL = ('http://127.0.0.1:%d/v1'):format(fake.port)
  vim.env.COMPATIBLE_API_KEY = KEY

  builder.setup({
    cmd = { bin },
    cmd_env = H.state_env(tmp),
    -- A generous budget: on a loaded machine a late answer would be an empty list.
    completion = { model = 'compatible/' .. MODEL, max_tokens = 48, debounce_ms = 0, budget_ms = 8000 },
  })
  vim.o.completeopt = 'menu,menuone,noselect'
  vim.o.showmode = false
  vim.opt.shortmess:append('c')
  vim.cmd('filetype on')
  vim.cmd.edit(vim.fn.fnameescape(file))
  local client = H.wait_client()
  check(client.server_capabilities.completionProvider ~= nil, 'the server offers no textDocument/completion')
  check(client.server_capabilities.inlineCompletionProvider == nil,
    'Neovim 0.11 declares no inline completion, yet the server offers it')
  check(client.settings.builder.completion.maxTokens == 48 and client.settings.builder.completion.budgetMs == 8000,
    'settings.builder.completion: %s',
    vim.inspect(client.settings.builder.completion))
  check(vim.bo.omnifunc == 'v:lua.vim.lsp.omnifunc', "'omnifunc' is %q", vim.bo.omnifunc)
  H.log('client %d attached with the completion fallback', client.id)

  -- Insert mode at the end of line 3, <C-x><C-o>; a timer (running while Neovim waits in
  -- insert mode) picks the item once the menu shows it, or gives up.
  vim.api.nvim_win_set_cursor(0, { 3, 0 })
  local seen = {}
  local timer = uv.new_timer()
  local t0 = uv.hrtime()
  timer:start(30, 30, vim.schedule_wrap(function()
    if seen.done then
      return
    end
    if vim.fn.pumvisible() == 1 then
      seen.done = true
      seen.items = vim.fn.complete_info({ 'items' }).items
      vim.api.nvim_feedkeys(keys('<C-n><C-y><Esc>'), 't', false)
    elseif (uv.hrtime() - t0) / 1e6 > 10000 then
      seen.done, seen.timeout = true, true
      vim.api.nvim_feedkeys(keys('<Esc>'), 't', false)
    end
  end))
  vim.api.nvim_feedkeys(keys('A<C-x><C-o>'), 'tx!', false)
  timer:stop()
  timer:close()
  check(not seen.timeout, 'no completion menu within 10 s (fake saw %d requests)', #fake.requests)
  local labels = vim.tbl_map(function(i)
    return i.abbr
  end, seen.items or {})
  check(vim.deep_equal(labels, { '✦ builder' }), 'menu items: %s', vim.inspect(labels))
  check(vim.api.nvim_get_mode().mode == 'n', 'still in mode %s', vim.api.nvim_get_mode().mode)

  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n') .. '\n'
  check(text == AFTER, 'buffer after picking the item:\n%s\nexpected:\n%s', text, AFTER)
  local cur = vim.api.nvim_win_get_cursor(0)
  check(cur[1] == 6, 'cursor on line %d, expected 6 (the end of the completion)', cur[1])
  vim.cmd('silent wall')
  check(H.read_file(file) == AFTER, 'on disk after :wall: %s', vim.inspect(H.read_file(file)))
  vim.cmd('silent undo')
  check(table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n') .. '\n' == BEFORE,
    'one undo does not take the completion back: %s', vim.inspect(vim.api.nvim_buf_get_lines(0, 0, -1, false)))

  -- What the fake received: the FIM request on the OpenAI wire format, with setup's settings.
  check(#fake.errors == 0, 'fake: %s', table.concat(fake.errors, '; '))
  check(#fake.requests == 1, 'expected 1 request to the fake, got %d', #fake.requests)
  local req = fake.requests[1]
  check(req.headers['authorization'] == 'Bearer ' .. KEY, 'Authorization header %s',
    req.headers['authorization'] and 'wrong' or 'missing')
  local ok, body = pcall(vim.json.decode, req.body)
  check(ok and type(body) == 'table', 'request body is not JSON: %s', req.body:sub(1, 200))
  check(body.model == MODEL and body.stream == true and body.max_tokens == 48, 'request model/stream/max_tokens: %s',
    vim.inspect({ model = body.model, stream = body.stream, max_tokens = body.max_tokens }))
  check(type(body.prompt) == 'string' and vim.endswith(body.prompt, 'export function clamp(x, lo, hi) {\n  if (x < lo) ret'),
    'prompt does not end at the cursor: %s', vim.inspect(body.prompt))
  check(type(body.suffix) == 'string' and not body.suffix:find('ret', 1, true), 'suffix: %s', vim.inspect(body.suffix))
  vim.cmd('checkhealth builder')
  local report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  check(report:find('completion.model = compatible/' .. MODEL, 1, true) and report:find('✦ builder', 1, true),
    ':checkhealth builder does not show the completion model and mode:\n%s', report)
  check(not report:find(KEY, 1, true), ':checkhealth builder shows the key')
  for _, n in ipairs(notes) do
    check(not n:find(KEY, 1, true), 'a message showed the key')
  end
  fake.close()
end

H.run(main)
