-- save_after_apply through the plugin, against the real builder-lsp, never with :wall before a
-- check: :BuilderApply of an answer that updates an open file, a closed one, a closed file
-- without a final newline, and creates two files (one in a new folder) — every byte on disk at
-- once, and a buffer the user modified that the edit did not touch stays modified and unsaved;
-- :BuilderRevert — the old bytes on disk at once, created files gone; a 'readonly' buffer the
-- edit touched is reported once and left modified; with save_after_apply = false nothing the
-- edit changed is written (created files stay empty on disk) until :wall, which then writes
-- exactly the server's bytes. A BufWritePre hook (format-on-save) does not run on the plugin's
-- writes; BufWritePost does.
--
--   BUILDER_LSP=target/debug/builder-lsp tests/nvim/plugin_test.sh tests/nvim/save.lua

local here = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:gsub('^@', ''), ':p:h')
local H = dofile(here .. '/harness.lua')
local check = H.check

local APP_BEFORE, CSS_BEFORE, NEW_JS, CARD = H.shop.APP_BEFORE, H.shop.CSS_BEFORE, H.shop.NEW_JS, H.shop.CARD
local NOEOL_BEFORE = 'export const x = 1;' -- no final newline on disk
local MINE_BEFORE = 'export const mine = 1;\n'
local APP_AFTER = H.shop.APP_WITH_CARD
local CSS_AFTER = 'body {\n  margin: 0;\n}' -- the answer's file has no final newline
local NOEOL_AFTER = 'export const x = 2;\n'
local ANSWER = H.shop.card_answer(CSS_AFTER, { { 'src/noeol.js', NOEOL_AFTER } })

--- The tails of the modified file buffers, sorted.
local function modified_buffers()
  return H.modified_buffers(true)
end

local function main()
  local bin = H.server_bin()
  vim.opt.rtp:prepend(H.plugin_dir())
  local builder = require('builder')
  local save = require('builder.save')
  local config = require('builder.config')

  -- Pure parts: what an edit touches, and how a buffer must end to hold the server's bytes.
  do
    local u = vim.uri_from_fname
    local edit = { documentChanges = {
      { kind = 'create', uri = u('/p/new.js') },
      { textDocument = { uri = u('/p/new.js') }, edits = { { newText = 'a\nb' } } },
      { textDocument = { uri = u('/p/old.js'), version = 3 }, edits = { { newText = 'x\n' } } },
      { kind = 'delete', uri = u('/p/gone.js') },
      { kind = 'rename', oldUri = u('/p/r.js'), newUri = u('/p/s.js') },
      { textDocument = { uri = u('/p/two.js') }, edits = { { newText = '1' }, { newText = '2' } } },
    } }
    local ts = save.targets(edit)
    check(#ts == 3 and ts[1].fname == '/p/new.js' and ts[1].created and ts[1].text == 'a\nb'
      and ts[2].fname == '/p/old.js' and not ts[2].created and ts[2].text == 'x\n'
      and ts[3].fname == '/p/two.js' and ts[3].text == nil, 'targets: %s', vim.inspect(ts))
    check(save.intended(ts[1]) == 'a\nb\n' and save.intended(ts[2]) == 'x\n' and save.intended(ts[3]) == nil,
      'intended bytes')
    check(save.created_bytes('') == '', 'an empty new file stays empty')
    local plain = save.targets({ changes = { [u('/p/b.js')] = { { newText = 'b' } }, [u('/p/a.js')] = {} } })
    check(#plain == 1 and plain[1].fname == '/p/b.js' and plain[1].text == 'b', 'changes form: %s', vim.inspect(plain))
    check(save.ending({ 'a', 'b' }, 'a\nb\n') == 'eol' and save.ending({ 'a', '' }, 'a\n') == 'drop'
      and save.ending({ 'a' }, 'a') == 'noeol' and save.ending({ '' }, '') == 'noeol'
      and save.ending({ 'a', 'b' }, 'a\r\nb\r\n') == 'eol' and save.ending({ 'a', 'c' }, 'a\nb\n') == nil,
      'endings')
    local o, problems = config.resolve({})
    check(o.save_after_apply == true and #problems == 0, 'save_after_apply defaults to true')
    check(builder.lsp_config().handlers['workspace/applyEdit'] == builder.on_apply_edit
      and type(builder.lsp_config({ save_after_apply = false }).handlers['workspace/applyEdit']) == 'function',
      'lsp_config() handlers')
    local o2, p2 = config.resolve({ save_after_apply = 'yes' })
    check(o2.save_after_apply == true and #p2 == 1, 'a bad save_after_apply must be reported')
  end

  local notes = {}
  local tmp, root, P = H.shop_project({ ['src/mine.js'] = MINE_BEFORE }, function(msg, level)
    table.insert(notes, { msg = tostring(msg), level = level })
  end)
  local function before_files()
    H.write_file(P('src/App.jsx'), APP_BEFORE)
    H.write_file(P('src/index.css'), CSS_BEFORE)
    H.write_file(P('src/noeol.js'), NOEOL_BEFORE)
  end
  before_files()
  local results = H.results()
  local setup = {
    cmd = { bin },
    cmd_env = H.state_env(tmp),
  }
  builder.setup(setup)
  vim.cmd('filetype on')

  -- The user's unsaved work in a buffer the answer does not touch.
  vim.cmd.edit(vim.fn.fnameescape(P('src/mine.js')))
  local mine = vim.api.nvim_get_current_buf()
  local client = H.wait_client()
  check(client.config.handlers and client.config.handlers['workspace/applyEdit'] == builder.on_apply_edit,
    'the builder client has no applyEdit handler of the plugin')
  vim.api.nvim_buf_set_lines(mine, 0, -1, false, { 'export const mine = 2; // unsaved' })
  vim.cmd.edit(vim.fn.fnameescape(P('src/App.jsx'))) -- open, clean
  local app = vim.api.nvim_get_current_buf()

  local function on_disk(want, what)
    for rel, body in pairs(want) do
      if body == false then
        check(not H.exists(P(rel)), '%s: %s still exists', what, rel)
      else
        check(H.read_file(P(rel)) == body, '%s: %s on disk is %s, expected %s', what, rel,
          vim.inspect(H.read_file(P(rel))), vim.inspect(body))
      end
    end
  end
  local function mine_untouched(what)
    check(vim.bo[mine].modified, '%s: the user\'s modified buffer was saved', what)
    check(vim.api.nvim_buf_get_lines(mine, 0, -1, false)[1] == 'export const mine = 2; // unsaved',
      '%s: the user\'s buffer changed', what)
    check(H.read_file(P('src/mine.js')) == MINE_BEFORE, '%s: src/mine.js on disk changed', what)
  end
  local AFTER = { ['src/App.jsx'] = APP_AFTER, ['src/index.css'] = CSS_AFTER, ['src/noeol.js'] = NOEOL_AFTER,
    ['src/new.js'] = NEW_JS, ['src/parts/Card.jsx'] = CARD }
  local BEFORE = { ['src/App.jsx'] = APP_BEFORE, ['src/index.css'] = CSS_BEFORE, ['src/noeol.js'] = NOEOL_BEFORE,
    ['src/new.js'] = false, ['src/parts/Card.jsx'] = false }

  -- A format-on-save hook (BufWritePre) must not change Builder's bytes; BufWritePost still runs.
  local pre, post = 0, 0
  local hooks = vim.api.nvim_create_augroup('test_write_hooks', { clear = true })
  vim.api.nvim_create_autocmd('BufWritePre', {
    group = hooks,
    callback = function(ev)
      pre = pre + 1
      vim.api.nvim_buf_set_lines(ev.buf, -1, -1, false, { '// formatted' })
    end,
  })
  vim.api.nvim_create_autocmd('BufWritePost', {
    group = hooks,
    callback = function()
      post = post + 1
    end,
  })

  -- Apply: everything on disk at once, no :wall.
  vim.fn.setreg('"', ANSWER)
  vim.cmd('BuilderApply')
  local a = results.wait('builder.apply')
  check(a.err == nil and a.result.applied == true and a.result.appliedVia == 'workspaceEdit', 'apply: %s',
    vim.inspect(a))
  check(#(a.result.writtenToDisk or {}) == 0, 'the server wrote files itself: %s', vim.inspect(a.result))
  on_disk(AFTER, 'after apply')
  check(vim.deep_equal(modified_buffers(), { 'mine.js' }), 'modified buffers after apply: %s',
    vim.inspect(modified_buffers()))
  mine_untouched('after apply')
  check(#builder.state.saved.written == 5 and #builder.state.saved.failed == 0, 'saved: %s',
    vim.inspect(builder.state.saved))
  check(table.concat(vim.api.nvim_buf_get_lines(app, 0, -1, false), '\n') .. '\n' == APP_AFTER, 'App.jsx buffer')
  check(pre == 0 and post == 5 and vim.o.eventignore == '', 'write hooks: BufWritePre %d, BufWritePost %d, ei=%q',
    pre, post, vim.o.eventignore)
  H.log('apply saved every file it changed, exact bytes; the user\'s buffer left alone')

  -- Revert: the old bytes at once, created files gone.
  vim.cmd('BuilderRevert')
  local r = results.wait('builder.revert')
  check(r.err == nil and r.result.applied == true and #r.result.conflicts == 0, 'revert: %s', vim.inspect(r))
  on_disk(BEFORE, 'after revert')
  check(vim.deep_equal(modified_buffers(), { 'mine.js' }), 'modified buffers after revert: %s',
    vim.inspect(modified_buffers()))
  mine_untouched('after revert')
  H.log('revert saved: bytes as before, created files gone')

  vim.api.nvim_del_augroup_by_id(hooks)

  -- A buffer the edit touches but that cannot be written: reported once, left modified.
  vim.cmd.edit(vim.fn.fnameescape(P('src/index.css')))
  local css = vim.api.nvim_get_current_buf()
  vim.bo[css].readonly = true
  local n_notes = #notes
  vim.cmd('BuilderApply')
  local a2 = results.wait('builder.apply')
  check(a2.err == nil and a2.result.applied == true, 'apply with a readonly buffer: %s', vim.inspect(a2))
  local failed = vim.tbl_filter(function(n)
    return n.msg:find('could not save', 1, true) ~= nil
  end, vim.list_slice(notes, n_notes + 1))
  check(#failed == 1 and failed[1].msg:find('index.css', 1, true) and failed[1].msg:find('E45', 1, true)
    and failed[1].level == vim.log.levels.WARN, 'the readonly buffer was not reported once: %s', vim.inspect(failed))
  check(vim.bo[css].modified and H.read_file(P('src/index.css')) == CSS_BEFORE, 'the readonly buffer was written')
  local rest = vim.deepcopy(AFTER)
  rest['src/index.css'] = nil
  on_disk(rest, 'apply with a readonly buffer')
  vim.bo[css].readonly = false
  vim.api.nvim_buf_call(css, function()
    vim.cmd('silent write')
  end)
  check(H.read_file(P('src/index.css')) == CSS_AFTER, 'index.css after the user\'s :write: %s',
    vim.inspect(H.read_file(P('src/index.css'))))
  vim.cmd('BuilderRevert')
  local r2 = results.wait('builder.revert')
  check(r2.err == nil and r2.result.applied == true and #r2.result.conflicts == 0, 'second revert: %s', vim.inspect(r2))
  on_disk(BEFORE, 'after the second revert')
  H.log('a readonly buffer is reported once and left unsaved')

  -- save_after_apply = false: nothing written until :wall; then exactly the server's bytes.
  builder.setup(vim.tbl_extend('force', setup, { save_after_apply = false }))
  check(#vim.lsp.get_clients({ name = 'builder_lsp' }) == 1, 'setup() again started a second client')
  vim.cmd('BuilderApply')
  local a3 = results.wait('builder.apply')
  check(a3.err == nil and a3.result.applied == true, 'apply with save_after_apply = false: %s', vim.inspect(a3))
  on_disk({ ['src/App.jsx'] = APP_BEFORE, ['src/index.css'] = CSS_BEFORE, ['src/noeol.js'] = NOEOL_BEFORE,
    -- Neovim creates a new file empty on disk; its text stays in the buffer.
    ['src/new.js'] = '', ['src/parts/Card.jsx'] = '' }, 'apply with save_after_apply = false')
  check(vim.deep_equal(modified_buffers(), { 'App.jsx', 'Card.jsx', 'index.css', 'mine.js', 'new.js', 'noeol.js' }),
    'modified buffers with save_after_apply = false: %s', vim.inspect(modified_buffers()))
  vim.cmd('silent wall')
  AFTER['src/mine.js'] = 'export const mine = 2; // unsaved\n'
  on_disk(AFTER, ':wall after an unsaved apply')
  check(#modified_buffers() == 0, 'unsaved buffers after :wall: %s', vim.inspect(modified_buffers()))
  vim.cmd('BuilderRevert')
  local r3 = results.wait('builder.revert')
  check(r3.err == nil and r3.result.applied == true, 'revert with save_after_apply = false: %s', vim.inspect(r3))
  check(H.read_file(P('src/App.jsx')) == APP_AFTER, 'an unsaved revert wrote App.jsx')
  check(vim.tbl_contains(modified_buffers(), 'App.jsx'), 'App.jsx is not modified after an unsaved revert')
  check(not H.exists(P('src/new.js')), 'a deleted file is back')
  vim.cmd('silent wall')
  BEFORE['src/mine.js'] = AFTER['src/mine.js']
  on_disk(BEFORE, ':wall after an unsaved revert')
  H.log('save_after_apply = false: unsaved until :wall, then the exact bytes')
end

H.run(main)
