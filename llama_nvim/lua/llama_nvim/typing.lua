-- The autocommands: each keystroke in insert mode becomes one event for the
-- Python host (or none, when the shown hint already follows the typing).

local api = vim.api
local context = require('llama_nvim.context')
local hint = require('llama_nvim.hint')
local menus = require('llama_nvim.menus')
local ring_events = require('llama_nvim.ring_events')
local rpc = require('llama_nvim.rpc')
local state = require('llama_nvim.state')
local stats = require('llama_nvim.stats')
local M = {}

local augroup = 'llama_nvim'

---@type string|nil dedupes CursorMovedI + TextChangedI of one keystroke
local last_key = nil

local function on_cursor()
  if not state.enabled then
    return
  end
  local win, buf, tick, row, col = context.cursor_state()
  local key = table.concat({ win, buf, tick, row, col }, ':')
  if key == last_key then
    return
  end
  last_key = key
  local h = hint.current()
  if h and h.tick == tick and h.row == row and h.col == col then
    return -- our own accept already moved the hint along
  end
  local kept = hint.follow_typing(win, buf, tick, row, col)
  -- On a huge line (minified code) the context is cut anyway, and an inline
  -- hint would make every keystroke slow to redraw: no suggestion there.
  local huge = vim.fn.col('$') - 1 > state.opts.max_line_bytes
  -- A hint still growing keeps its request: its answer serves what follows.
  local growing = kept and hint.current().growing
  if (kept and not growing) or huge or not context.eligible(buf) or vim.fn.pumvisible() == 1 then
    rpc.notify('cancel')
    return
  end
  ring_events.after_jump(buf, row)
  local snap = context.snapshot(false)
  stats.asked(snap)
  rpc.notify('keystroke', snap)
end

local function on_leave(ev)
  last_key = nil
  hint.hide()
  rpc.notify(ev.event == 'InsertLeave' and 'leave' or 'cancel')
end

---Creates the autocommands (replacing any made before).
function M.attach()
  local g = api.nvim_create_augroup(augroup, { clear = true })
  local function au(events, callback)
    api.nvim_create_autocmd(events, { group = g, callback = callback })
  end
  au({ 'CursorMovedI', 'TextChangedI' }, on_cursor)
  au({ 'InsertLeave', 'BufLeave', 'WinLeave' }, on_leave)
  au({ 'BufEnter', 'BufLeave', 'BufWritePost' }, ring_events.around_cursor)
  au('TextYankPost', ring_events.from_yank)
  au('CursorMoved', ring_events.on_normal_cursor)
  menus.attach() -- hides the hint while a completion menu is open
end

---Deletes the autocommands.
function M.detach()
  pcall(api.nvim_del_augroup_by_name, augroup)
  menus.detach()
end

---Forgets the last keystroke, so the next one is never taken for a repeat.
function M.forget_last_key()
  last_key = nil
end

return M
