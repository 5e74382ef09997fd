-- The insert-mode keys: each acts on the shown hint, and otherwise does what
-- it did before the plugin (another plugin's or the user's mapping, or the
-- key itself).

local api = vim.api
local hint = require('llama_nvim.hint')
local state = require('llama_nvim.state')
local M = {}

---@type table<string, table> lhs -> the mapping we replaced (a maparg() dict, plus id)
local fallbacks = {}

---@type string[] what went wrong at the last install (for :checkhealth)
local last_problems = {}

---@type string[] the keys the last install mapped
local installed = {}

local function termcodes(keys)
  return api.nvim_replace_termcodes(keys, true, true, true)
end

-- Keys to run instead of ours when no hint is shown.
local function fallback(lhs)
  local orig = fallbacks[lhs]
  if not orig then
    return termcodes(lhs)
  end
  if orig.callback and orig.expr ~= 1 then
    -- A non-expr Lua mapping may edit the buffer; run it outside our textlock.
    -- (By number: key names inside the <Cmd> text would be turned into keys.)
    return termcodes(string.format('<Cmd>lua require("llama_nvim")._run_fallback(%d)<CR>', orig.id))
  end
  local keys
  if orig.callback then
    keys = orig.callback() or ''
  elseif orig.expr == 1 then
    keys = api.nvim_eval(orig.rhs)
  else
    keys = orig.rhs
  end
  if orig.expr ~= 1 or orig.replace_keycodes == 1 then
    keys = termcodes(keys)
  end
  return keys
end

---Runs the Lua callback of a replaced mapping (see fallback).
---@param id integer
function M.run_fallback(id)
  for _, orig in pairs(fallbacks) do
    if orig.id == id and orig.callback then
      orig.callback()
    end
  end
end

local function map(lhs, action)
  if lhs == nil or lhs == '' then
    return
  end
  local existing = vim.fn.maparg(lhs, 'i', false, true)
  -- Only a global mapping is ours to wrap; buffer-local ones already win over ours.
  if existing.lhs and existing.buffer ~= 1 and not (existing.desc or ''):match('^llama.nvim') then
    existing.id = vim.tbl_count(fallbacks) + 1
    fallbacks[lhs] = existing
  end
  local orig = fallbacks[lhs]
  vim.keymap.set('i', lhs, function()
    return action(lhs)
  end, {
    expr = true,
    replace_keycodes = false,
    -- Behave like the mapping we replaced: recursive if it was.
    remap = orig ~= nil and orig.noremap == 0,
    silent = true,
    desc = 'llama.nvim: ' .. lhs,
  })
end

-- A key that runs `call` (a function of the public module, outside the expr
-- textlock) on the shown hint, and does what it did before when none is shown.
local function hint_action(call)
  local keys = termcodes('<Cmd>lua require("llama_nvim").' .. call .. '<CR>')
  return function(lhs)
    if vim.fn.pumvisible() == 0 and hint.valid() then
      return keys
    end
    return fallback(lhs)
  end
end

local function trigger_action(lhs)
  if not state.enabled then
    return fallback(lhs)
  end
  return termcodes('<Cmd>lua require("llama_nvim").trigger()<CR>')
end

---Unknown <Key> names in a keymap option: nvim_replace_termcodes leaves them as text.
---@param lhs string
---@return string[]
local function unknown_keys(lhs)
  local bad = {}
  for name in lhs:gmatch('<[^<>]+>') do
    if termcodes(name) == name then
      bad[#bad + 1] = name
    end
  end
  return bad
end

M.unknown_keys = unknown_keys

---Maps every key the options name.
---@param opts llama_nvim.Options
---@return string[] problems one message per key that could not be mapped as asked
function M.install(opts)
  local problems = {}
  local keys = {
    { 'keymap_accept_full', hint_action("accept('full')") },
    { 'keymap_accept_line', hint_action("accept('line')") },
    { 'keymap_accept_word', hint_action("accept('word')") },
    { 'keymap_trigger', trigger_action },
    { 'keymap_next', hint_action('cycle(1)') },
    { 'keymap_prev', hint_action('cycle(-1)') },
  }
  for _, k in ipairs(keys) do
    local lhs = opts[k[1]]
    local bad = unknown_keys(lhs or '')
    if #bad > 0 then
      local default = opts.keymap_defaults[k[1]]
      problems[#problems + 1] =
        string.format('g:llama_config.%s: unknown key name %s in %q; using the default %q', k[1], bad[1], lhs, default)
      lhs = default
    end
    local ok, err = pcall(map, lhs, k[2])
    if not ok then
      problems[#problems + 1] = string.format('g:llama_config.%s: cannot map %q: %s', k[1], lhs, err)
    elseif lhs and lhs ~= '' then
      installed[#installed + 1] = lhs
    end
  end
  last_problems = problems
  return problems
end

---Removes the keys the last install mapped, giving back the mappings they
---replaced (before setting up again with other keys, :LlamaReload).
function M.uninstall()
  for _, lhs in ipairs(installed) do
    local ours = vim.fn.maparg(lhs, 'i', false, true)
    if ours.lhs and (ours.desc or ''):match('^llama.nvim') then
      pcall(vim.keymap.del, 'i', lhs)
    end
    local orig = fallbacks[lhs]
    if orig and vim.fn.maparg(lhs, 'i') == '' then
      pcall(vim.fn.mapset, 'i', false, orig)
    end
  end
  installed = {}
end

---The problems of the last install.
---@return string[]
function M.problems()
  return last_problems
end

return M
