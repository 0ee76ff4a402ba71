-- The sandbox template's files are saved even with save_after_apply = false, against the real
-- builder-lsp and a real local sandbox (real npm and Vite: tests/editors.rs runs this only when
-- the npm registry answers). :BuilderSandbox create local in a workspace without package.json
-- writes the template (package.json, vite.config.js, index.html, src/…) as one workspace edit of
-- created files; every one of them is on disk with the template's bytes at once (no :wall), and
-- a buffer the user modified stays modified.
--
--   BUILDER_LSP=target/debug/builder-lsp tests/nvim/plugin_test.sh tests/nvim/template.lua

local here = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:gsub('^@', ''), ':p:h')
local H = dofile(here .. '/harness.lua')
local check = H.check

--- The template's files as the server embeds them: src/sandbox/template.rs, `files()` maps each
--- path to a `const NAME: &str = r#"…"#;`.
local function template_files()
  local repo = vim.fn.fnamemodify(here, ':h:h')
  local src = H.read_file(repo .. '/src/sandbox/template.rs')
  check(src, 'src/sandbox/template.rs not found under %s', repo)
  local out = {}
  for path, const in src:gmatch('%("([^"]+)", ([A-Z_]+)%)') do
    local body = src:match('const ' .. const .. ': &str = r#"(.-)"#;')
    check(body, 'no const %s in template.rs', const)
    out[path] = body
  end
  check(out['vite.config.js'] and out['src/main.jsx'], 'template files: %s', vim.inspect(vim.tbl_keys(out)))
  return out
end

local function main()
  local bin = H.server_bin()
  vim.opt.rtp:prepend(H.plugin_dir())
  local builder = require('builder')
  local template = template_files()

  local tmp, root = H.project('app', { ['notes.js'] = '// mine\n' })
  vim.fn.mkdir(root .. '/.git', 'p') -- the root marker; no package.json: the template applies
  local results = H.results()
  builder.setup({
    cmd = { bin },
    cmd_env = H.state_env(tmp),
    save_after_apply = false,
    sandbox = { provider = 'local', open_preview = false },
    poll_ms = 250,
  })
  vim.cmd('filetype on')
  vim.cmd.edit(vim.fn.fnameescape(root .. '/notes.js'))
  local mine = vim.api.nvim_get_current_buf()
  H.wait_client()
  vim.api.nvim_buf_set_lines(mine, 0, -1, false, { '// mine, unsaved' })

  vim.cmd('BuilderSandbox create local open=false')
  local c = results.wait('builder.sandbox.create', 150000)
  check(c.err == nil and c.state == 'done', 'sandbox create: %s', vim.inspect(c))
  local applied = (c.result or {}).templateApplied or {}
  check(#applied > 0, 'no template files applied: %s', vim.inspect(c.result))
  H.log('sandbox %s at %s; template: %s', tostring(c.result.sandboxId), tostring(c.result.url),
    table.concat(applied, ', '))
  for _, rel in ipairs(applied) do
    local disk = H.read_file(root .. '/' .. rel)
    check(disk and disk ~= '', '%s is empty on disk after the create', rel)
    if rel == 'package.json' then
      local ok, pkg = pcall(vim.json.decode, disk)
      check(ok and pkg.devDependencies and pkg.devDependencies.vite, 'package.json on disk: %s', disk)
      check(c.result.manifest == nil or disk == c.result.manifest, 'package.json is not the manifest')
    else
      check(disk == template[rel], '%s on disk differs from the template: %s', rel, vim.inspect(disk))
    end
    local b = vim.fn.bufnr(root .. '/' .. rel)
    check(b == -1 or not vim.bo[b].modified, '%s is still modified in its buffer', rel)
  end
  check(vim.bo[mine].modified and H.read_file(root .. '/notes.js') == '// mine\n',
    'the user\'s modified buffer was saved')
  check(builder.state.template == 0, 'the plugin still counts a running sandbox create')

  vim.cmd('BuilderSandbox kill')
  local k = results.wait('builder.sandbox.kill', 30000)
  check(k.err == nil, 'kill: %s', vim.inspect(k))
end

H.run(main, 170000)
