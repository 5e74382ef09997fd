-- What a llama.vim user brings along: its highlight groups and its debug key.

local api = vim.api
local M = {}

-- llama.vim's group for each of ours.
local GROUPS = {
  LlamaNvimHint = 'llama_hl_fim_hint',
  LlamaNvimInfo = 'llama_hl_fim_info',
  LlamaNvimInstSrc = 'llama_hl_inst_src',
  LlamaNvimInstProc = 'llama_hl_inst_virt_proc',
  LlamaNvimInstGen = 'llama_hl_inst_virt_gen',
  LlamaNvimInstReady = 'llama_hl_inst_virt_ready',
  LlamaNvimInstInfo = 'llama_hl_inst_info',
}

---True when the user (or a colour scheme) gave the group a look or a link.
---@param name string
---@return boolean
local function defined(name)
  local ok, hl = pcall(api.nvim_get_hl, 0, { name = name, create = false })
  return ok and type(hl) == 'table' and next(hl) ~= nil
end

---The group to draw with: llama.vim's counterpart of `group` when it is
---defined, else `group`. Checked at each draw, so a colour scheme or a
---:highlight command run at any time is followed.
---@param group string
---@return string
function M.highlight(group)
  local theirs = GROUPS[group]
  if theirs and defined(theirs) then
    return theirs
  end
  return group
end

---@type string|nil the normal-mode key mapped to :LlamaDebugToggle
local debug_key = nil

---Maps `lhs` in normal mode to :LlamaDebugToggle, as llama.vim maps its
---keymap_debug_toggle, replacing the key mapped before (:LlamaReload). A key
---the user mapped to something else is left alone.
---@param lhs string|nil
function M.map_debug_key(lhs)
  if debug_key then
    pcall(vim.keymap.del, 'n', debug_key)
    debug_key = nil
  end
  if not lhs or lhs == '' then
    return
  end
  local existing = vim.fn.maparg(lhs, 'n', false, true)
  if existing.lhs and not (existing.desc or ''):match('^llama.nvim') then
    return
  end
  local opts = { silent = true, desc = 'llama.nvim: debug log' }
  if pcall(vim.keymap.set, 'n', lhs, '<Cmd>LlamaDebugToggle<CR>', opts) then
    debug_key = lhs
  end
end

return M
