-- End-to-end test of editors/neovim against a real builder-lsp, in headless Neovim.
--
--   BUILDER_LSP=target/debug/builder-lsp tests/nvim/plugin_test.sh
-- or directly:
--   nvim --headless -u NONE -i NONE -n --cmd 'set rtp^=editors/neovim' -c 'luafile tests/nvim/plugin.lua'
--
-- A loopback fake OpenAI-compatible server runs inside this Neovim (vim.uv). Exit status 0 on
-- success; on failure the reason is printed to stderr and Neovim exits with 1 (3 on timeout).
-- BUILDER_TEST_ALLOW_NO_SANDBOX=1 accepts a server whose sandbox commands answer "not available"
-- (local development against an older binary only; CI does not set it).

local here = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:gsub('^@', ''), ':p:h')
local H = dofile(here .. '/harness.lua')
local log, fail, check, read_file, write_file, wait_for =
  H.log, H.fail, H.check, H.read_file, H.write_file, H.wait_for

--------------------------------------------------------------------------------------------------
-- Answers the fake model streams, and the exact bytes the files must have.

local FILE_A, BODY_A = 'src/page.js', 'export const title = "Hello from the fake model";\nexport const items = ["a", "b"];\n'
local FILE_B, BODY_B = 'src/page.css', 'h1 {\n  color: rebeccapurple;\n}\n'
local ANSWER = table.concat({
  '<explanation>A page with a title and a style.</explanation>\n',
  '<file path="' .. FILE_A .. '">\n' .. BODY_A .. '</file>\n',
  '<file path="' .. FILE_B .. '">\n' .. BODY_B .. '</file>\n',
})

local FILE_C, BODY_C = 'src/extra.js', 'export const extra = 42;\n'
local ANSWER_REG = 'Here you go:\n<file path="' .. FILE_C .. '">\n' .. BODY_C .. '</file>\n'
local FILE_SLOW = 'src/slow.js'
local ANSWER_SLOW = '<file path="' .. FILE_SLOW .. '">\n' .. string.rep('// line\n', 90) .. '</file>\n'
local FILE_D, BODY_D = 'src/range.js', 'export const fromRange = true;\n'
local ANSWER_RANGE = '<file path="' .. FILE_D .. '">\n' .. BODY_D .. '</file>'

--- The answer cut into uneven pieces (splitting tags), as a model stream would.
local function chunks(s)
  local out, i, sizes, k = {}, 1, { 7, 23, 5, 40, 11, 64, 3 }, 1
  while i <= #s do
    local n = sizes[(k - 1) % #sizes + 1]
    table.insert(out, s:sub(i, i + n - 1))
    i, k = i + n, k + 1
  end
  return out
end

local function sse_frames(text)
  local frames = {}
  local function frame(choices, extra)
    local obj = {
      id = 'chatcmpl-test',
      object = 'chat.completion.chunk',
      created = 1700000000,
      model = 'gpt-4o-mini',
      choices = choices,
    }
    for k, v in pairs(extra or {}) do
      obj[k] = v
    end
    return 'data: ' .. vim.json.encode(obj) .. '\n\n'
  end
  table.insert(frames, frame({ { index = 0, delta = { role = 'assistant', content = '' }, finish_reason = vim.NIL } }))
  for _, c in ipairs(chunks(text)) do
    table.insert(frames, frame({ { index = 0, delta = { content = c }, finish_reason = vim.NIL } }))
  end
  table.insert(frames, frame({ { index = 0, delta = vim.empty_dict(), finish_reason = 'stop' } }))
  table.insert(frames, frame({}, { usage = { prompt_tokens = 120, completion_tokens = 60, total_tokens = 180 } }))
  table.insert(frames, 'data: [DONE]\n\n')
  return frames
end

--------------------------------------------------------------------------------------------------
-- The fake OpenAI-compatible server (loopback TCP, inside this Neovim's event loop).

local fake = { requests = {}, errors = {} }

local function start_fake()
  fake.answers = { { frames = sse_frames(ANSWER), every_ms = 15 } }
  local srv
  srv = H.http_server(function(req, res)
    if req.headers['transfer-encoding'] then
      table.insert(srv.errors, 'chunked request bodies are not supported by the fake: ' .. req.headers['transfer-encoding'])
      return res.json('400 Bad Request', '{"error":{"message":"fake: no chunked bodies"}}')
    end
    if req.method == 'POST' and req.path == '/v1/chat/completions' then
      local answer = table.remove(fake.answers, 1) or { frames = {}, every_ms = 15 }
      res.sse(answer.frames, answer.every_ms)
    else
      table.insert(srv.errors, ('unexpected request %s %s'):format(tostring(req.method), tostring(req.path)))
      res.json('404 Not Found', '{"error":{"message":"fake: not found","type":"invalid_request_error"}}')
    end
  end)
  fake.server, fake.requests, fake.errors, fake.port = srv, srv.requests, srv.errors, srv.port
end

--------------------------------------------------------------------------------------------------

local function main()
  local bin = H.server_bin()
  check(vim.fn.has('nvim-0.10') == 1, 'Neovim 0.10 or newer is needed')

  -- The plugin by absolute path (the test changes directory, so a relative 'rtp' entry such as
  -- --cmd 'set rtp+=editors/neovim' would stop resolving).
  vim.opt.rtp:prepend(H.plugin_dir())
  local builder = require('builder')
  local stream = require('builder.stream')
  local args = require('builder.args')
  local config = require('builder.config')

  -- Pure parts first (fast failures).
  do
    local s = assert(args.sandbox({ 'create', 'e2b', 'template=react-vite', 'open=false' }))
    check(s.command == 'builder.sandbox.create' and s.task, 'sandbox create command: %s', vim.inspect(s))
    check(vim.deep_equal(s.arguments, { provider = 'e2b', template = 'react-vite', open = false, wait = false }),
      'sandbox create arguments: %s', vim.inspect(s.arguments))
    check(args.sandbox({ 'create', 'docker' }) == nil, 'an unknown sandbox provider must be refused')
    check(args.sandbox({ 'status' }).command == 'builder.sandbox.status', 'sandbox status')
    check(args.sandbox({ 'open' }).command == 'builder.sandbox.status', 'sandbox open asks for the status')
    check(args.sandbox({ 'kill' }).command == 'builder.sandbox.kill', 'sandbox kill')
    check(args.sandbox({ 'explode' }) == nil, 'an unknown sandbox action must be refused')
    local i = assert(args.install({ '-D', 'vitest', 'react-router-dom@6' }))
    check(vim.deep_equal(i, { packages = { 'vitest', 'react-router-dom@6' }, dev = true, wait = false }),
      'install arguments: %s', vim.inspect(i))
    check(args.install({}) == nil and args.install({ '--force', 'x' }) == nil, 'install must refuse no packages / unknown flags')
    check(args.generate('  ', {}) == nil, 'an empty prompt must be refused')
    local g = args.generate(' make a page ', { uri = 'file:///p/a.js', project = '/p' })
    check(vim.deep_equal(g, { prompt = 'make a page', uri = 'file:///p/a.js', project = '/p', wait = false }),
      'generate arguments: %s', vim.inspect(g))
    check(args.lines_to_text({ 'a', 'b' }) == 'a\nb\n', 'lines_to_text')
    check(vim.deep_equal(args.registers('', false), { '"' }) and vim.deep_equal(args.registers('', true), { '+', '"' })
      and vim.deep_equal(args.registers('a', true), { 'a' }), 'register order')
    check(vim.deep_equal(args.cancel({}, {}, 't7'), { taskId = 't7' }), 'cancel defaults to the followed task')
    local o = config.resolve({ model = 'openai/gpt-4o', base_urls = {}, sandbox = { isolation = 'none' },
      max_tokens = 900, settings = { contextTokens = 5 } })
    local st = config.settings(o)
    check(st.model == 'openai/gpt-4o' and st.maxTokens == 900 and st.contextTokens == 5 and st.baseUrls == nil
      and st.sandbox.provider == 'local' and st.sandbox.isolation == 'none' and st.streamDeltas == true
      and st.apiKeys == nil, 'settings: %s', vim.inspect(st))
    local io1 = config.init_options(o)
    check(io1.streamDeltas == true and io1.apiKeys == nil, 'init options without keys: %s', vim.inspect(io1))
    local io2 = config.init_options(config.resolve({ api_keys = function() return { openai = 'k' } end }))
    check(io2.apiKeys and io2.apiKeys.openai == 'k', 'init options carry keys given in setup')
    check(config.settings(config.resolve({ api_keys = { openai = 'k' } })).apiKeys == nil,
      'keys must not be sent through workspace/configuration')
    local _, problems = config.resolve({ sandbox = { provider = 'docker' } })
    check(#problems == 1, 'a bad sandbox provider must be reported')
    log('pure functions ok')
  end

  -- Messages the plugin shows (checked for leaked keys at the end).
  local notes = {}
  local orig_notify = vim.notify
  vim.notify = function(msg, level, o)
    table.insert(notes, { msg = tostring(msg), level = level })
    io.stderr:write('  notify[' .. tostring(level) .. ']: ' .. tostring(msg):gsub('\n', '\n    ') .. '\n')
  end

  -- Results of every command.
  local wait_result = H.results().wait

  -- Progress as Neovim delivers it (LspProgress), for the plugin's token.
  local progress, begin_tokens = {}, {}
  vim.api.nvim_create_autocmd('LspProgress', {
    callback = function(ev)
      local p = ev.data and ev.data.params
      if p and type(p.token) == 'string' and p.token:match('^builder%-nvim/') then
        table.insert(progress, (p.value or {}).kind)
        if (p.value or {}).kind == 'begin' then
          begin_tokens[p.token] = (begin_tokens[p.token] or 0) + 1
        end
      end
    end,
  })

  start_fake()
  log('fake model on 127.0.0.1:%d', fake.port)

  local tmp = vim.fn.tempname()
  local root = tmp .. '/shop'
  vim.fn.mkdir(root .. '/src', 'p')
  write_file(root .. '/package.json', '{\n  "name": "shop",\n  "private": true\n}\n')
  write_file(root .. '/index.js', 'console.log("hello");\n')

  local KEY = 'test-key'
  vim.env.OPENAI_API_KEY = KEY
  vim.env.OPENAI_BASE_URL = ('http://127.0.0.1:%d/v1'):format(fake.port)
  vim.env.DEFAULT_AI_MODEL = 'openai/gpt-4o-mini'
  vim.env.BUILDER_LOG = vim.env.BUILDER_LOG or 'warn'
  vim.cmd.cd(vim.fn.fnameescape(root))

  builder.setup({
    cmd = { bin },
    cmd_env = H.state_env(tmp),
    stream = true,
    sandbox = { provider = 'local' },
    poll_ms = 500,
    install_packages = false,
  })
  for _, name in ipairs({ 'BuilderGenerate', 'BuilderApply', 'BuilderSandbox', 'BuilderInstall', 'BuilderZip',
    'BuilderReset', 'BuilderModels', 'BuilderCancel', 'BuilderStream' }) do
    check(vim.fn.exists(':' .. name) == 2, ':%s is not defined', name)
  end

  vim.cmd('filetype on')
  vim.cmd.edit(vim.fn.fnameescape(root .. '/index.js'))
  check(vim.bo.filetype == 'javascript', 'index.js has filetype %q', vim.bo.filetype)
  local client
  wait_for('builder-lsp to attach and initialize', 10000, function()
    client = vim.lsp.get_clients({ bufnr = 0, name = 'builder_lsp' })[1]
    return client ~= nil and client.initialized == true
  end)
  check(client.root_dir == root, 'root_dir %s, expected %s', tostring(client.root_dir), root)
  check(client.config.init_options.streamDeltas == true and client.config.init_options.apiKeys == nil,
    'init_options: %s', vim.inspect(client.config.init_options))
  check(client.settings.builder.installPackages == false, 'settings.builder: %s', vim.inspect(client.settings))
  log('client %d attached, root %s', client.id, root)

  -- :BuilderGenerate (task mode: {taskId, started}, $/progress, then builder.task.status).
  vim.cmd('BuilderGenerate make a page')
  local g = wait_result('builder.generate', 20000)
  check(g.err == nil, 'builder.generate failed: %s', vim.inspect(g.err))
  check(g.taskId, 'builder.generate did not run as a task: %s', vim.inspect(g))
  check(g.state == 'done', 'generate task ended %s: %s', tostring(g.state), vim.inspect(g.result))
  local r = g.result or {}
  for _, f in ipairs({ FILE_A, FILE_B }) do
    check(vim.tbl_contains(r.filesCreated or {}, f), '%s not in filesCreated: %s', f, vim.inspect(r))
  end
  check(vim.tbl_contains(progress, 'begin') and vim.tbl_contains(progress, 'end'),
    'no $/progress begin/end on the plugin token: %s', vim.inspect(progress))
  log('generate done: %s', tostring(r.message))

  vim.cmd('silent wall')
  local clients = vim.lsp.get_clients({ name = 'builder_lsp' })
  check(#clients == 1, 'expected one builder client for the project, got %d', #clients)
  check(vim.lsp.buf_is_attached(vim.fn.bufnr(root .. '/' .. FILE_A), client.id),
    'the generated file\'s buffer is not attached to the client')
  check(read_file(root .. '/' .. FILE_A) == BODY_A, '%s on disk: %s', FILE_A, vim.inspect(read_file(root .. '/' .. FILE_A)))
  check(read_file(root .. '/' .. FILE_B) == BODY_B, '%s on disk: %s', FILE_B, vim.inspect(read_file(root .. '/' .. FILE_B)))

  check(#fake.errors == 0, 'fake server: %s', table.concat(fake.errors, '; '))
  local chat = vim.tbl_filter(function(q)
    return q.path == '/v1/chat/completions'
  end, fake.requests)
  check(#chat == 1, 'expected 1 chat request, got %d', #chat)
  check(chat[1].headers['authorization'] == 'Bearer ' .. KEY, 'Authorization header: %s',
    chat[1].headers['authorization'] and 'present but wrong' or 'missing')
  check(chat[1].body:find('make a page', 1, true), 'the prompt is not in the request body')
  local ok_body, req = pcall(vim.json.decode, chat[1].body)
  check(ok_body and req.stream == true and req.model == 'gpt-4o-mini', 'request body: stream/model wrong: %s',
    chat[1].body:sub(1, 300))

  -- The raw text reached builder://stream.
  wait_for('the stream buffer', 3000, function()
    return stream.text():find(ANSWER, 1, true) ~= nil
  end)
  vim.cmd('BuilderStream')
  check(vim.api.nvim_buf_get_name(0) == 'builder://stream', ':BuilderStream did not show builder://stream')
  vim.cmd('close')
  log('stream buffer ok')

  -- :BuilderApply from the unnamed register (and + when a clipboard exists).
  if vim.fn.has('clipboard') == 1 then
    vim.fn.setreg('+', ANSWER_REG)
  end
  vim.fn.setreg('"', ANSWER_REG)
  vim.cmd('BuilderApply')
  local a = wait_result('builder.apply')
  check(a.err == nil, 'builder.apply failed: %s', vim.inspect(a.err))
  check(vim.tbl_contains(a.result.filesCreated or {}, FILE_C), 'apply result: %s', vim.inspect(a.result))
  vim.cmd('silent wall')
  check(read_file(root .. '/' .. FILE_C) == BODY_C, '%s on disk: %s', FILE_C, vim.inspect(read_file(root .. '/' .. FILE_C)))

  -- :{range}BuilderApply from selected lines of a scratch buffer.
  vim.cmd('enew')
  vim.bo.buftype = 'nofile'
  vim.api.nvim_buf_set_lines(0, 0, -1, false, vim.split('some chat text\n' .. ANSWER_RANGE .. '\nmore text', '\n'))
  vim.cmd('2,4BuilderApply')
  local ar = wait_result('builder.apply')
  check(ar.err == nil and vim.tbl_contains(ar.result.filesCreated or {}, FILE_D), 'range apply: %s', vim.inspect(ar))
  vim.cmd('silent wall')
  check(read_file(root .. '/' .. FILE_D) == BODY_D, '%s on disk: %s', FILE_D, vim.inspect(read_file(root .. '/' .. FILE_D)))
  vim.cmd('bwipeout!')
  log('apply (register and range) ok')

  -- :BuilderSandbox status
  vim.cmd('BuilderSandbox status')
  local s = wait_result('builder.sandbox.status')
  if s.err then
    local not_yet = s.err.code == -32803 and tostring(s.err.message):find('not available', 1, true)
    if not_yet and vim.env.BUILDER_TEST_ALLOW_NO_SANDBOX == '1' then
      log('SKIP sandbox status: %s (allowed by BUILDER_TEST_ALLOW_NO_SANDBOX=1)', s.err.message)
    else
      fail('builder.sandbox.status failed: %s (code %s)', tostring(s.err.message), tostring(s.err.code))
    end
  else
    check(type(s.result) == 'table' and s.result.active == false, 'sandbox status: %s', vim.inspect(s.result))
    log('sandbox status ok (no sandbox)')
  end

  -- :BuilderModels, :BuilderCancel, :BuilderReset, :BuilderZip
  vim.cmd('BuilderModels')
  local m = wait_result('builder.models')
  check(m.err == nil and m.result.defaultModel == 'openai/gpt-4o-mini', 'models: %s', vim.inspect(m))
  local openai
  for _, p in ipairs(m.result.providers or {}) do
    if p.provider == 'openai' then
      openai = p
    end
  end
  check(openai and openai.keyPresent == true, 'models: openai key not reported present: %s', vim.inspect(openai))
  vim.cmd('BuilderCancel')
  local c = wait_result('builder.task.cancel')
  check(c.err == nil and c.result.cancelled == false, 'cancel with nothing running: %s', vim.inspect(c))

  -- A slow generation, cancelled with :BuilderCancel once its text starts to arrive.
  table.insert(fake.answers, { frames = sse_frames(ANSWER_SLOW), every_ms = 150 })
  local before = #stream.text()
  vim.cmd('BuilderGenerate write a slow file')
  wait_for('the slow generation to stream', 10000, function()
    return builder.running_task() ~= nil and #stream.text() > before + 20
  end)
  local slow_id = builder.running_task()
  vim.cmd('BuilderCancel')
  local c2 = wait_result('builder.task.cancel')
  check(c2.err == nil and c2.result.cancelled == true and c2.result.taskId == slow_id, 'cancel: %s', vim.inspect(c2))
  local gs = wait_result('builder.generate', 10000)
  check(gs.taskId == slow_id and gs.state == 'cancelled', 'cancelled generate ended %s: %s', tostring(gs.state),
    vim.inspect(gs.result))
  check(vim.fn.filereadable(root .. '/' .. FILE_SLOW) == 0, '%s exists after the cancel', FILE_SLOW)
  check(builder.running_task() == nil, 'the plugin still follows a cancelled task')
  check(vim.tbl_count(begin_tokens) == 2 and not vim.tbl_contains(vim.tbl_values(begin_tokens), 2),
    'each task needs its own progress token: %s', vim.inspect(begin_tokens))
  log('cancel ok')
  vim.cmd('BuilderReset')
  local rs = wait_result('builder.conversation.reset')
  check(rs.err == nil and type(rs.result) == 'table' and rs.result.conversationId, 'reset: %s', vim.inspect(rs))
  vim.cmd('BuilderZip ' .. vim.fn.fnameescape(tmp .. '/out.zip'))
  local z = wait_result('builder.createZip')
  check(z.err == nil and vim.fn.filereadable(tmp .. '/out.zip') == 1, 'zip: %s', vim.inspect(z))
  log('models, cancel, reset, zip ok')

  -- :checkhealth builder
  vim.cmd('checkhealth builder')
  local report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  check(report:find(bin, 1, true), ':checkhealth builder does not mention the binary %s:\n%s', bin, report)
  check(report:find('builder-lsp ', 1, true) and report:find('version:', 1, true),
    ':checkhealth builder does not show --version:\n%s', report)
  check(report:find('OPENAI_API_KEY', 1, true), ':checkhealth builder does not list OPENAI_API_KEY:\n%s', report)
  check(not report:find(KEY, 1, true), ':checkhealth builder shows the key value')
  check(report:find('client %d+ running'), ':checkhealth builder does not see the client:\n%s', report)
  log('checkhealth ok')

  for _, n in ipairs(notes) do
    check(not n.msg:find(KEY, 1, true), 'a message showed the key value')
  end
  vim.notify = orig_notify
end

H.run(function()
  -- Keep the traceback of an unexpected error; a failed check passes through as it is.
  local ok, err = xpcall(main, function(e)
    return type(e) == 'table' and e or debug.traceback(tostring(e), 2)
  end)
  if fake.server then
    fake.server.close()
  end
  if not ok then
    error(err, 0)
  end
end)
