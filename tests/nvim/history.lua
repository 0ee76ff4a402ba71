-- History through the plugin, against the real builder-lsp: :BuilderApply an answer that
-- updates an open file and a closed one and creates two files (saved as it lands, then :wall
-- changes nothing); :BuilderHistory lists the
-- checkpoint (id, time, summary, files) and <CR> shows its diff; :BuilderRevert (the newest)
-- and :wall leave every byte as before and the created files gone; :BuilderRevert {id} of the
-- revert brings the answer back; a file changed since is a conflict, left alone unless
-- :BuilderRevert! names it.
--
--   BUILDER_LSP=target/debug/builder-lsp tests/nvim/plugin_test.sh tests/nvim/history.lua

local here = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:gsub('^@', ''), ':p:h')
local H = dofile(here .. '/harness.lua')
local check = H.check

local APP_BEFORE, CSS_BEFORE, NEW_JS, CARD = H.shop.APP_BEFORE, H.shop.CSS_BEFORE, H.shop.NEW_JS, H.shop.CARD
local APP_AFTER = H.shop.APP_WITH_CARD
local CSS_AFTER = 'body {\n  margin: 0;\n  font-family: sans-serif;\n}\n'
local ANSWER = H.shop.card_answer(CSS_AFTER)

local function main()
  local bin = H.server_bin()
  vim.opt.rtp:prepend(H.plugin_dir())
  local builder = require('builder')
  local args = require('builder.args')

  -- Pure parts: the arguments each command sends.
  do
    check(vim.deep_equal(args.history({}, { project = '/p' }), { project = '/p' }), 'history args')
    check(args.history({ '5' }, {}).limit == 5 and args.history({ 'x' }, {}) == nil and args.history({ '0' }, {}) == nil,
      'history limit')
    check(vim.deep_equal(args.revert({}, false, {}, '00002-ab12'), { checkpoint = '00002-ab12' }), 'revert newest')
    check(vim.deep_equal(args.revert({ '00001-ffff', 'src/a.js' }, true, { project = '/p' }, '00002-ab12'),
      { checkpoint = '00001-ffff', files = { 'src/a.js' }, force = true, project = '/p' }), 'revert id, files, force')
    check(vim.deep_equal(args.revert({ 'src/a.js' }, false, {}, '00002-ab12'),
      { checkpoint = '00002-ab12', files = { 'src/a.js' } }), 'revert files of the newest')
    check(args.revert({}, false, {}, nil) == nil, 'revert with an empty history must be refused')
    check(vim.deep_equal(args.review({ 'accept', 'src/a.js' }, {}),
      { command = 'builder.review.accept', arguments = { files = { 'src/a.js' } } }), 'review accept files')
    check(args.review({}, {}).command == 'builder.review.show' and args.review({ 'discard' }, {}).command
      == 'builder.review.discard', 'review show/discard')
    local fx = args.fix({}, {
      { lnum = 1, col = 8, message = "Type 'string' is not assignable", severity = 1, source = 'ts' },
      { lnum = 1, col = 0, message = 'a hint', severity = 4 },
      { lnum = 3, col = 2, message = 'ours', severity = 1, user_data = { lsp = { range = { start = { line = 3, character = 2 } }, message = 'ours', source = 'vite' } } },
    }, { uri = 'file:///p/a.ts', project = '/p' })
    check(fx and #fx.diagnostics == 2 and fx.diagnostics[1].source == 'ts' and fx.diagnostics[1].range.start.character == 8
      and fx.diagnostics[2].source == 'vite' and fx.uri == 'file:///p/a.ts' and fx.project == '/p' and fx.all == nil, 'fix args')
    check(args.fix({}, {}, {}) == nil and args.fix({ 'all' }, {}, {}).all == true and args.fix({ 'x' }, {}, {}) == nil, 'fix words')
    check(args.review({ 'apply' }, {}) == nil and args.review({ 'discard', 'x' }, {}) == nil, 'bad review words')
    local lines, ids = args.history_lines({ { id = '00001-aaaa', time = 't', source = 'apply', summary = 's',
      files = { { path = 'a.js', change = 'created' } } } })
    check(#lines == 2 and lines[2]:find('created', 1, true) and ids[2] == '00001-aaaa', 'history lines: %s',
      vim.inspect(lines))
  end

  local tmp, root, P = H.shop_project()
  local results = H.results()

  builder.setup({ cmd = { bin }, cmd_env = H.state_env(tmp) })
  for _, name in ipairs({ 'BuilderHistory', 'BuilderRevert', 'BuilderReview' }) do
    check(vim.fn.exists(':' .. name) == 2, ':%s is not defined', name)
  end
  vim.cmd('filetype on')
  vim.cmd.edit(vim.fn.fnameescape(P('src/App.jsx')))
  local client = H.wait_client()

  -- An empty history first.
  vim.cmd('BuilderHistory')
  local h0 = results.wait('builder.history')
  check(h0.err == nil and type(h0.result) == 'table' and #h0.result == 0, 'history before any apply: %s', vim.inspect(h0))
  vim.cmd('close')

  -- Apply, save.
  vim.fn.setreg('"', ANSWER)
  vim.cmd('BuilderApply')
  local a = results.wait('builder.apply')
  check(a.err == nil and a.result.applied == true, 'apply: %s', vim.inspect(a))
  -- save_after_apply (the default) wrote them already.
  check(#H.modified_buffers() == 0, 'unsaved buffers after apply: %s', vim.inspect(H.modified_buffers()))
  for rel, body in pairs({ ['src/App.jsx'] = APP_AFTER, ['src/index.css'] = CSS_AFTER, ['src/new.js'] = NEW_JS,
    ['src/parts/Card.jsx'] = CARD }) do
    check(H.read_file(P(rel)) == body, '%s after apply (no :wall): %s', rel, vim.inspect(H.read_file(P(rel))))
  end
  vim.cmd('silent wall')
  H.log('applied and saved')

  -- :BuilderHistory shows the checkpoint; <CR> on it opens its diff.
  vim.cmd.edit(vim.fn.fnameescape(P('src/App.jsx')))
  vim.cmd('BuilderHistory')
  local h1 = results.wait('builder.history')
  check(h1.err == nil and #h1.result == 1, 'history after apply: %s', vim.inspect(h1))
  local cp = h1.result[1]
  check(vim.api.nvim_buf_get_name(0) == 'builder://history', ':BuilderHistory shows %s', vim.api.nvim_buf_get_name(0))
  local shown = H.buffer_text()
  check(vim.startswith(shown, cp.id .. '  ' .. cp.time .. '  '), 'the first line names id and time:\n%s', shown)
  check(shown:find(cp.summary, 1, true), 'the summary %q is not shown:\n%s', cp.summary, shown)
  for _, want in ipairs({ 'created  src/new.js', 'created  src/parts/Card.jsx', 'updated  src/App.jsx',
    'updated  src/index.css' }) do
    check(shown:find(want, 1, true), '%q missing from builder://history:\n%s', want, shown)
  end
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('<CR>', true, false, true), 'x', false)
  local d = results.wait('builder.diff')
  check(d.err == nil, 'diff: %s', vim.inspect(d.err))
  check(vim.api.nvim_buf_get_name(0) == 'builder://diff/' .. cp.id and vim.bo.filetype == 'diff',
    '<CR> opened %s (%s)', vim.api.nvim_buf_get_name(0), vim.bo.filetype)
  local diff = H.buffer_text()
  check(diff:find('+++ b/src/new.js', 1, true) and diff:find('+export const greeting', 1, true)
    and diff:find('-  return null;', 1, true), 'diff buffer:\n%s', diff)
  vim.cmd('close')
  vim.cmd('close')
  H.log('history %s shown with its diff', cp.id)

  -- :BuilderRevert (newest), :wall: as before, created files gone.
  vim.cmd.edit(vim.fn.fnameescape(P('src/new.js'))) -- a created file open in a buffer, too
  vim.cmd.edit(vim.fn.fnameescape(P('src/App.jsx')))
  vim.cmd('BuilderRevert')
  local r = results.wait('builder.revert')
  check(r.err == nil and r.result.applied == true, 'revert: %s', vim.inspect(r))
  table.sort(r.result.filesDeleted)
  check(vim.deep_equal(r.result.filesDeleted, { 'src/new.js', 'src/parts/Card.jsx' }), 'filesDeleted: %s',
    vim.inspect(r.result.filesDeleted))
  check(#r.result.conflicts == 0, 'conflicts: %s', vim.inspect(r.result.conflicts))
  check(#H.modified_buffers() == 0, 'unsaved buffers after the revert: %s', vim.inspect(H.modified_buffers()))
  check(H.read_file(P('src/App.jsx')) == APP_BEFORE and H.read_file(P('src/index.css')) == CSS_BEFORE,
    'the revert was not saved (no :wall)')
  vim.cmd('silent wall')
  check(H.read_file(P('src/App.jsx')) == APP_BEFORE, 'App.jsx after revert: %s', vim.inspect(H.read_file(P('src/App.jsx'))))
  check(H.read_file(P('src/index.css')) == CSS_BEFORE, 'index.css after revert: %s',
    vim.inspect(H.read_file(P('src/index.css'))))
  check(H.read_file(P('package.json')) == '{ "name": "shop" }\n', 'package.json changed')
  check(not H.exists(P('src/new.js')) and not H.exists(P('src/parts/Card.jsx')), 'a created file is still there')
  check(vim.fn.bufloaded(P('src/new.js')) == 0, 'the deleted file is still loaded in a buffer')
  check(H.buffer_text(vim.fn.bufnr(P('src/App.jsx'))) .. '\n' == APP_BEFORE, 'App.jsx buffer after revert')
  H.log('reverted: bytes as before, created files gone')

  -- The revert is a checkpoint too: :BuilderRevert {its id} brings the answer back.
  local hist = builder._request_sync(client, 'workspace/executeCommand',
    { command = 'builder.history', arguments = { { limit = 5 } } }, 5000)
  local list = hist and hist.result or {}
  check(#list == 2 and list[1].source == 'revert' and list[2].id == cp.id, 'history after the revert: %s',
    vim.inspect(list))
  vim.cmd('BuilderRevert ' .. list[1].id)
  local r2 = results.wait('builder.revert')
  check(r2.err == nil and r2.result.applied == true, 'revert of the revert: %s', vim.inspect(r2))
  vim.cmd('silent wall')
  for rel, body in pairs({ ['src/App.jsx'] = APP_AFTER, ['src/index.css'] = CSS_AFTER, ['src/new.js'] = NEW_JS,
    ['src/parts/Card.jsx'] = CARD }) do
    check(H.read_file(P(rel)) == body, '%s after reverting the revert: %s', rel, vim.inspect(H.read_file(P(rel))))
  end
  H.log('revert of the revert restored the answer')

  -- A file changed since the checkpoint is a conflict: left alone without !, reverted with it.
  local MINE = 'body { margin: 0; color: teal; }\n'
  local cbuf = vim.fn.bufadd(P('src/index.css'))
  vim.fn.bufload(cbuf)
  vim.api.nvim_buf_set_lines(cbuf, 0, -1, false, { vim.trim(MINE) })
  vim.api.nvim_buf_call(cbuf, function()
    vim.cmd('silent write')
  end)
  vim.cmd('BuilderRevert')
  local rc = results.wait('builder.revert')
  check(rc.err == nil, 'revert with a conflict: %s', vim.inspect(rc.err))
  local conflicted = vim.tbl_map(function(c)
    return c.path
  end, rc.result.conflicts or {})
  check(vim.deep_equal(conflicted, { 'src/index.css' }), 'conflicts: %s', vim.inspect(rc.result.conflicts))
  vim.cmd('silent wall')
  check(H.read_file(P('src/index.css')) == MINE, 'a conflicting file was changed: %s',
    vim.inspect(H.read_file(P('src/index.css'))))
  check(H.read_file(P('src/App.jsx')) == APP_BEFORE and not H.exists(P('src/new.js')),
    'the files without conflict were not reverted')
  vim.cmd('BuilderRevert! ' .. list[2].id .. ' src/index.css')
  local rf = results.wait('builder.revert')
  check(rf.err == nil and rf.result.applied == true and #rf.result.conflicts == 0, 'forced revert: %s',
    vim.inspect(rf))
  vim.cmd('silent wall')
  check(H.read_file(P('src/index.css')) == CSS_BEFORE, 'index.css after :BuilderRevert!: %s',
    vim.inspect(H.read_file(P('src/index.css'))))
  H.log('conflict left alone, then reverted with !')

  -- A bad id: the server's InvalidParams reaches the user, nothing changes.
  vim.cmd('BuilderRevert 99999-dead')
  local r3 = results.wait('builder.revert')
  check(r3.err and tostring(r3.err.message):find('99999-dead', 1, true), 'unknown checkpoint: %s', vim.inspect(r3))
  check(H.read_file(P('src/App.jsx')) == APP_BEFORE, 'a refused revert changed App.jsx')
end

H.run(main)
