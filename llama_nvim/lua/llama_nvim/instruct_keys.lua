-- The keys of instruction editing. The trigger is a visual-mode key, mapped
-- unless the user mapped that key to something else. The accept / cancel /
-- rerun / continue keys are normal-mode and buffer-local, mapped only while an
-- instruction is pending in that buffer; the buffer's own mappings of those
-- keys are put back afterwards, and where the cursor is on no instruction a
-- key does what it did before (the buffer's or a global mapping, or the key).

local api = vim.api
local M = {}

---@type table<integer, table<string, table|false>> buf -> lhs -> its buffer-local mapping before ours
local saved = {}
---@type string|nil the visual-mode trigger key we mapped
local trigger_key = nil

local function termcodes(keys)
  return api.nvim_replace_termcodes(keys, true, true, true)
end

---Does what `lhs` did before ours in `buf`: the buffer's own mapping, a
---global one, or (for `builtin` keys like <Tab>) the key itself.
---@param buf integer
---@param lhs string
---@param builtin boolean
function M.fallback(buf, lhs, builtin)
  local orig = saved[buf] and saved[buf][lhs] or nil
  if not orig then
    local global = vim.fn.maparg(lhs, 'n', false, true)
    orig = global.lhs and global.buffer ~= 1 and global or nil
  end
  if orig and orig.callback then
    local keys = orig.callback()
    if orig.expr == 1 and type(keys) == 'string' then
      api.nvim_feedkeys(termcodes(keys), orig.noremap == 1 and 'n' or 'm', false)
    end
  elseif orig and orig.rhs then
    local keys = orig.expr == 1 and api.nvim_eval(orig.rhs) or orig.rhs
    api.nvim_feedkeys(termcodes(keys), orig.noremap == 1 and 'n' or 'm', false)
  elseif builtin then
    local count = vim.v.count > 0 and tostring(vim.v.count) or ''
    api.nvim_feedkeys(count .. termcodes(lhs), 'n', false)
  end
end

---Maps each `keys` lhs to its action in `buf` (once per buffer until unmap).
---@param buf integer
---@param keys table<string, function> lhs -> action
function M.map(buf, keys)
  if saved[buf] then
    return
  end
  saved[buf] = {}
  for lhs, action in pairs(keys) do
    if lhs ~= '' then
      local existing = api.nvim_buf_call(buf, function()
        return vim.fn.maparg(lhs, 'n', false, true)
      end)
      saved[buf][lhs] = existing.lhs and existing.buffer == 1 and existing or false
      vim.keymap.set('n', lhs, action, { buffer = buf, silent = true, desc = 'llama.nvim: instruction' })
    end
  end
end

---Removes our keys from `buf` and puts back the buffer's own.
---@param buf integer
function M.unmap(buf)
  local before = saved[buf]
  saved[buf] = nil
  if not before or not api.nvim_buf_is_valid(buf) then
    return
  end
  for lhs, orig in pairs(before) do
    pcall(vim.keymap.del, 'n', lhs, { buffer = buf })
    if orig then
      api.nvim_buf_call(buf, function()
        pcall(vim.fn.mapset, 'n', false, orig)
      end)
    end
  end
end

---Checks the keymap options of instruction editing (`keymap_trigger` ...,
---g:llama_config's `keymap_inst_*`): a key name Neovim does not know is
---replaced by the option's default, with one message naming the option.
---@param options llama_nvim.InstOptions changed in place
---@return string[] problems
function M.validate(options)
  local problems = {}
  for _, name in ipairs({ 'trigger', 'accept', 'cancel', 'rerun', 'continue' }) do
    local field = 'keymap_' .. name
    local lhs = options[field] or ''
    local bad = require('llama_nvim.keys').unknown_keys(lhs)
    if #bad > 0 then
      local default = (options.keymap_defaults or {})[field] or ''
      problems[#problems + 1] = string.format(
        'g:llama_config.keymap_inst_%s: unknown key name %s in %q; using the default %q',
        name,
        bad[1],
        lhs,
        default
      )
      options[field] = default
    end
  end
  return problems
end

---Maps the visual-mode trigger `lhs` to `start(first_line, last_line)`,
---replacing the key mapped before (:LlamaReload).
---@param lhs string|nil
---@param start fun(line1: integer, line2: integer)
function M.map_trigger(lhs, start)
  if trigger_key then
    pcall(vim.keymap.del, 'x', trigger_key)
    trigger_key = nil
  end
  if not lhs or lhs == '' then
    return
  end
  local existing = vim.fn.maparg(lhs, 'x', false, true)
  if existing.lhs and not (existing.desc or ''):match('^llama.nvim') then
    return -- the user's own mapping stays
  end
  vim.keymap.set('x', lhs, function()
    local line1, line2 = vim.fn.line('v'), vim.fn.line('.')
    -- Leave visual mode; :normal keeps the typeahead (the instruction may be in it).
    vim.cmd.normal({ args = { termcodes('<Esc>') }, bang = true })
    start(line1, line2)
  end, { silent = true, desc = 'llama.nvim: instruction on the selection' })
  trigger_key = lhs
end

return M
