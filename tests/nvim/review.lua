-- Review through the plugin, against the real builder-lsp: with `review = "on"` (Neovim has no
-- change annotations, so the server holds the change set) :BuilderApply of an answer that
-- updates an open file and creates one writes nothing; :BuilderReview show opens the read-only
-- diff (window/showDocument); :BuilderReview accept FILE lands only that file (checkpointed) and
-- :wall saves it, the other is never created; a second apply and :BuilderReview discard leave
-- every byte as it was.
--
--   BUILDER_LSP=target/debug/builder-lsp tests/nvim/plugin_test.sh tests/nvim/review.lua

local here = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:gsub('^@', ''), ':p:h')
local H = dofile(here .. '/harness.lua')
local check = H.check

local APP_BEFORE, CSS_BEFORE, NEW_JS = H.shop.APP_BEFORE, H.shop.CSS_BEFORE, H.shop.NEW_JS
local APP_AFTER = 'import { greeting } from "./new.js";\n\nexport default function App() {\n  return <p>{greeting}</p>;\n}\n'
local ANSWER = H.answer('A greeting.', { { 'src/App.jsx', APP_AFTER }, { 'src/new.js', NEW_JS } })
local CSS_AFTER = 'body {\n  margin: 0;\n  color: teal;\n}\n'
local OTHER_JS = 'export const other = 1;\n'
local ANSWER2 = H.answer('Teal, and another module.', {
  { 'src/index.css', CSS_AFTER },
  { 'src/App.jsx', APP_BEFORE },
  { 'src/other.js', OTHER_JS },
})

local function main()
  local bin = H.server_bin()
  vim.opt.rtp:prepend(H.plugin_dir())
  local builder = require('builder')

  local tmp, root, P = H.shop_project()
  local results = H.results()
  local function on_disk_as_before(what)
    check(H.read_file(P('src/App.jsx')) == APP_BEFORE, '%s: App.jsx on disk: %s', what,
      vim.inspect(H.read_file(P('src/App.jsx'))))
    check(H.read_file(P('src/index.css')) == CSS_BEFORE, '%s: index.css on disk changed', what)
    check(not H.exists(P('src/new.js')), '%s: src/new.js was created', what)
  end

  builder.setup({
    cmd = { bin },
    review = 'on',
    cmd_env = H.state_env(tmp),
  })
  check(vim.fn.exists(':BuilderReview') == 2, ':BuilderReview is not defined')
  vim.cmd('filetype on')
  vim.cmd.edit(vim.fn.fnameescape(P('src/App.jsx')))
  local app_buf = vim.api.nvim_get_current_buf()
  local client = H.wait_client()

  -- Nothing pending yet: the server's error reaches the user.
  vim.cmd('BuilderReview')
  local s0 = results.wait('builder.review.show')
  check(s0.err and tostring(s0.err.message):find('no change set is pending', 1, true), 'show before apply: %s',
    vim.inspect(s0))

  -- Apply under review: held, nothing written, nothing created, the buffer untouched.
  vim.fn.setreg('"', ANSWER)
  vim.cmd('BuilderApply')
  local a = results.wait('builder.apply')
  check(a.err == nil and type(a.result) == 'table', 'apply: %s', vim.inspect(a))
  check(a.result.review and a.result.review.mode == 'pending', 'apply was not held for review: %s',
    vim.inspect(a.result))
  check(a.result.applied ~= true and a.result.checkpoint == nil, 'a held apply claims it applied: %s',
    vim.inspect(a.result))
  local held = vim.tbl_map(function(f)
    return f.path
  end, a.result.review.files or {})
  check(vim.deep_equal(H.sorted(held), { 'src/App.jsx', 'src/new.js' }), 'held files: %s', vim.inspect(a.result.review))
  vim.cmd('silent wall')
  check(#H.modified_buffers() == 0, 'a held apply left unsaved buffers: %s', vim.inspect(H.modified_buffers()))
  check(H.buffer_text(app_buf) .. '\n' == APP_BEFORE, 'a held apply edited the App.jsx buffer')
  on_disk_as_before('held apply + :wall')
  H.log('apply held for review; nothing written')

  -- :BuilderReview show: the server writes the diff and opens it in this window.
  vim.cmd('BuilderReview show')
  local s = results.wait('builder.review.show')
  check(s.err == nil and type(s.result) == 'table', 'show: %s', vim.inspect(s))
  check(s.result.shown == true, 'the server did not see the diff shown: %s', vim.inspect(s.result))
  local diff_path = s.result.path
  H.wait_for('the diff buffer', 5000, function()
    return vim.api.nvim_buf_get_name(0) == diff_path
  end)
  local diff = H.buffer_text()
  for _, want in ipairs({ '+++ b/src/new.js', '+export const greeting = "hello";', '-  return null;',
    '+  return <p>{greeting}</p>;', '+++ b/src/App.jsx' }) do
    check(diff:find(want, 1, true), '%q missing from the diff buffer:\n%s', want, diff)
  end
  check(diff .. '\n' == s.result.diff or diff == s.result.diff, 'the buffer is not the diff the server sent')
  -- By mode, not filewritable(): root may write any file.
  local st = (vim.uv or vim.loop).fs_stat(diff_path)
  check(st and bit.band(st.mode, tonumber('222', 8)) == 0, 'the diff file %s is not read-only (mode %o)', diff_path,
    st and st.mode or 0)
  on_disk_as_before('after show')
  H.log('diff shown: %s', diff_path)
  vim.cmd.buffer(app_buf)

  -- Accept one file: App.jsx lands (in its buffer; :wall saves it), new.js is dropped.
  vim.cmd('BuilderReview accept src/App.jsx')
  local acc = results.wait('builder.review.accept')
  check(acc.err == nil and type(acc.result) == 'table', 'accept: %s', vim.inspect(acc))
  check(acc.result.applied == true and type(acc.result.checkpoint) == 'string', 'accept result: %s',
    vim.inspect(acc.result))
  check(vim.deep_equal(acc.result.filesDeclined, { 'src/new.js' }), 'filesDeclined: %s',
    vim.inspect(acc.result.filesDeclined))
  vim.cmd('silent wall')
  check(#H.modified_buffers() == 0, 'unsaved buffers after :wall: %s', vim.inspect(H.modified_buffers()))
  check(H.read_file(P('src/App.jsx')) == APP_AFTER, 'App.jsx after accept + :wall: %s',
    vim.inspect(H.read_file(P('src/App.jsx'))))
  check(not H.exists(P('src/new.js')), 'src/new.js was created though not accepted')
  check(H.read_file(P('src/index.css')) == CSS_BEFORE, 'index.css changed by the accept')
  local hist = builder._request_sync(client, 'workspace/executeCommand',
    { command = 'builder.history', arguments = { { limit = 5 } } }, 5000)
  local list = hist and hist.result or {}
  check(#list == 1 and list[1].id == acc.result.checkpoint, 'history after accept: %s', vim.inspect(list))
  local cp_files = vim.tbl_map(function(f)
    return f.path
  end, list[1].files or {})
  check(vim.deep_equal(cp_files, { 'src/App.jsx' }), 'the checkpoint holds %s', vim.inspect(cp_files))
  -- Nothing is pending any more.
  vim.cmd('BuilderReview accept')
  local acc2 = results.wait('builder.review.accept')
  check(acc2.err and tostring(acc2.err.message):find('no change set is pending', 1, true),
    'a second accept: %s', vim.inspect(acc2))
  H.log('accepted src/App.jsx only (checkpoint %s)', acc.result.checkpoint)

  -- A second apply, then discard: nothing changes on disk or in a buffer.
  local function now_on_disk()
    return {
      app = H.read_file(P('src/App.jsx')),
      css = H.read_file(P('src/index.css')),
      new = H.exists(P('src/new.js')),
      other = H.exists(P('src/other.js')),
    }
  end
  local before = now_on_disk()
  vim.fn.setreg('"', ANSWER2)
  vim.cmd('BuilderApply')
  local a2 = results.wait('builder.apply')
  check(a2.err == nil and a2.result.review and a2.result.review.mode == 'pending', 'second apply: %s',
    vim.inspect(a2))
  check(a2.result.review.replacedPending ~= true, 'nothing was pending, yet it replaced one: %s',
    vim.inspect(a2.result.review))
  vim.cmd('BuilderReview discard')
  local dis = results.wait('builder.review.discard')
  check(dis.err == nil and type(dis.result) == 'table', 'discard: %s', vim.inspect(dis))
  local dropped = vim.tbl_map(function(f)
    return f.path
  end, dis.result.files or {})
  check(vim.deep_equal(H.sorted(dropped), { 'src/App.jsx', 'src/index.css', 'src/other.js' }), 'discarded: %s',
    vim.inspect(dis.result))
  vim.cmd('silent wall')
  check(#H.modified_buffers() == 0, 'unsaved buffers after discard: %s', vim.inspect(H.modified_buffers()))
  check(vim.deep_equal(now_on_disk(), before), 'discard changed the disk: %s -> %s', vim.inspect(before),
    vim.inspect(now_on_disk()))
  check(H.buffer_text(app_buf) .. '\n' == APP_AFTER, 'the App.jsx buffer changed by the discarded set')
  vim.cmd('BuilderReview discard')
  local dis2 = results.wait('builder.review.discard')
  check(dis2.err and tostring(dis2.err.message):find('no change set is pending', 1, true),
    'discard with nothing pending: %s', vim.inspect(dis2))
  local hist2 = builder._request_sync(client, 'workspace/executeCommand',
    { command = 'builder.history', arguments = { { limit = 5 } } }, 5000)
  check(hist2 and #hist2.result == 1, 'a discarded set was checkpointed: %s', vim.inspect(hist2))
  H.log('second set discarded; disk unchanged')

  -- Bad words stay in the plugin: nothing is sent.
  vim.cmd('BuilderReview discard src/App.jsx')
  check(vim.deep_equal(now_on_disk(), before), 'a refused :BuilderReview changed the disk')
end

H.run(main)
