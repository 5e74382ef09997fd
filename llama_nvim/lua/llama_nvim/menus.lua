-- Completion menus (hide_during_completion): while the native popup menu,
-- nvim-cmp's or blink.cmp's menu is open, the suggestion is put aside; when
-- the menu closes with the text as it was, the same suggestion is drawn
-- again without asking the server.
--
-- Neither plugin is required. nvim-cmp is found in package.loaded (never
-- loaded by us) and told about through its event API (menu_opened,
-- menu_closed); blink.cmp announces its menu with the User autocommands
-- BlinkCmpMenuOpen / BlinkCmpMenuClose. Each one's own "is it visible" call
-- is asked as well, under pcall.

local api = vim.api
local context = require('llama_nvim.context')
local events = require('llama_nvim.events')
local hint = require('llama_nvim.hint')
local state = require('llama_nvim.state')
local M = {}

local augroup = 'llama_nvim_menus'

---@type llama_nvim.Hint|nil the suggestion put aside
local parked = nil

-- The line around each suggestion when it was drawn: by the time a menu
-- says it is open, the menu may have changed the text already (<C-N>).
---@type table<llama_nvim.Hint, { row: integer, col: integer, before: string, after: string, first: string }>
local drawn = setmetatable({}, { __mode = 'k' })

---@type boolean blink.cmp said its menu is open (BlinkCmpMenuOpen, not yet BlinkCmpMenuClose)
local blink_open = false

---@type table|nil the nvim-cmp module whose events we listen to
local cmp_hooked = nil

---@type boolean our autocommands are in place (cmp's callbacks cannot be removed)
local attached = false

local function asks(module, fn)
  local m = package.loaded[module]
  if type(m) ~= 'table' or type(m[fn]) ~= 'function' then
    return nil
  end
  local ok, visible = pcall(m[fn])
  return ok and visible == true
end

---True while a completion menu is open.
---@return boolean
function M.open()
  if vim.fn.pumvisible() == 1 or asks('cmp', 'visible') then
    return true
  end
  local blink = asks('blink.cmp', 'is_menu_visible')
  if blink == nil then
    return blink_open
  end
  return blink
end

---True when a suggestion must not be drawn now: a menu is open and the user wants it hidden.
---@return boolean
function M.hiding()
  return state.opts.hide_during_completion ~= false and M.open()
end

local function line_at(buf, row)
  return api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ''
end

---Notes the line around a suggestion just drawn at the cursor.
---@param h llama_nvim.Hint|llama_nvim.RenderPlan
function M.note_drawn(h)
  local line = line_at(h.buf, h.row)
  drawn[h] = { row = h.row, col = h.col, before = line:sub(1, h.col), after = line:sub(h.col + 1), first = h.lines[1] }
end

---The line as it read when the suggestion was drawn, plus what was typed
---through since (the start of its first line); nil if not known.
---@param h llama_nvim.Hint
---@return string|nil
local function expected_line(h)
  local d = drawn[h]
  if not d or d.row ~= h.row or h.col < d.col then
    return nil
  end
  return d.before .. d.first:sub(1, h.col - d.col) .. d.after
end

---A render plan arrived while a menu is open: kept for when it closes, if
---it is for the editor as it is now.
---@param plan llama_nvim.RenderPlan
function M.park_plan(plan)
  local _, buf, tick, row, col = context.cursor_state()
  if buf == plan.buf and tick == plan.tick and row == plan.row and col == plan.col then
    ---@cast plan llama_nvim.Hint
    M.note_drawn(plan)
    parked = plan
  end
end

---A menu opened: put the suggestion shown aside.
function M.on_open()
  if not attached or state.opts.hide_during_completion == false then
    return
  end
  local h = hint.current()
  if h then
    parked = h
    hint.hide()
  end
end

-- Draws the suggestion put aside again if the editor is where it was and
-- the line reads as it did (a menu that inserted nothing, or was dismissed).
local function restore()
  local h = parked
  parked = nil
  if not h or not state.enabled or hint.current() or M.open() then
    return
  end
  local win, buf, tick, row, col = context.cursor_state()
  if buf ~= h.buf or row ~= h.row or col ~= h.col or (h.win and win ~= h.win) then
    return
  end
  if line_at(buf, row) ~= expected_line(h) then
    return
  end
  -- The menu changed the text and changed it back: same text, new changedtick.
  h.tick = tick
  h.vcol = vim.fn.virtcol('.') - 1
  hint.show(h)
  if hint.current() == h then
    events.suggestion_shown(h)
  end
end

---A menu closed: after its own clean-up, show the suggestion put aside.
function M.on_close()
  if attached and parked then
    vim.schedule(restore)
  end
end

-- nvim-cmp, if it is loaded by now (it often loads at the first InsertEnter).
local function hook_cmp()
  local cmp = package.loaded['cmp']
  if type(cmp) ~= 'table' or cmp == cmp_hooked or type(cmp.event) ~= 'table' then
    return
  end
  if type(cmp.event.on) ~= 'function' then
    return
  end
  cmp_hooked = cmp
  pcall(cmp.event.on, cmp.event, 'menu_opened', M.on_open)
  pcall(cmp.event.on, cmp.event, 'menu_closed', M.on_close)
end

---Creates the autocommands (replacing any made before).
function M.attach()
  attached = true
  local g = api.nvim_create_augroup(augroup, { clear = true })
  api.nvim_create_autocmd('CompleteChanged', { group = g, callback = M.on_open })
  api.nvim_create_autocmd('CompleteDone', { group = g, callback = M.on_close })
  api.nvim_create_autocmd('User', {
    group = g,
    pattern = 'BlinkCmpMenuOpen',
    callback = function()
      blink_open = true
      M.on_open()
    end,
  })
  api.nvim_create_autocmd('User', {
    group = g,
    pattern = 'BlinkCmpMenuClose',
    callback = function()
      blink_open = false
      M.on_close()
    end,
  })
  api.nvim_create_autocmd('InsertEnter', { group = g, callback = hook_cmp })
  api.nvim_create_autocmd('InsertLeave', {
    group = g,
    callback = function()
      parked = nil
    end,
  })
  hook_cmp()
end

---Deletes the autocommands and forgets the suggestion put aside.
function M.detach()
  attached = false
  parked = nil
  pcall(api.nvim_del_augroup_by_name, augroup)
end

return M
