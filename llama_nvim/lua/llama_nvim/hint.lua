-- The suggestion on screen: drawing it, following the user's typing through
-- it, and accepting it.

local api = vim.api
local context = require('llama_nvim.context')
local events = require('llama_nvim.events')
local llama_vim = require('llama_nvim.llama_vim')
local state = require('llama_nvim.state')
local stats = require('llama_nvim.stats')
local status = require('llama_nvim.status')
local M = {}

local ns = api.nvim_create_namespace('llama_nvim')
-- The highlight groups of the suggestion and of its info text (init.lua defines them).
local HL_HINT = 'LlamaNvimHint'
local HL_INFO = 'LlamaNvimInfo'

---@type llama_nvim.Hint|nil the suggestion on screen: anchor + lines
local shown = nil

---@return llama_nvim.Hint|nil
function M.current()
  return shown
end

local function clear_marks(buf)
  if buf and api.nvim_buf_is_valid(buf) then
    api.nvim_buf_clear_namespace(buf, ns, 0, -1)
  end
end

---Removes the suggestion from the screen.
function M.hide()
  if shown then
    clear_marks(shown.buf)
    shown = nil
    status.set('')
    events.refresh()
  end
end

-- How a suggestion's text is shown: tabs expanded to the next tab stop and
-- control characters in caret notation (C1 ones as <xx>), so nothing in a
-- suggestion is ever interpreted by the terminal. Cell widths are Neovim's own.
---@param text string
---@param vcol integer screen column the text starts at
---@param tabstop integer
---@return string
function M.display(text, vcol, tabstop)
  local out = {}
  local after_control = false
  for ch in text:gmatch('[%z\1-\127\194-\244][\128-\191]*') do
    local b = ch:byte()
    local control = true
    if ch == '\t' then
      -- Measured on what is shown so far, as a whole: combining characters
      -- take no cell of their own.
      local at = vcol + api.nvim_strwidth(table.concat(out))
      out[#out + 1] = string.rep(' ', tabstop - (at % tabstop))
    elseif #ch == 1 and (b < 32 or b == 127) then
      out[#out + 1] = b == 127 and '^?' or ('^' .. string.char(b + 64))
    elseif #ch == 2 and b == 194 and ch:byte(2) < 160 then
      out[#out + 1] = string.format('<%02x>', ch:byte(2))
    elseif after_control and #ch > 1 and api.nvim_strwidth('a' .. ch) == 1 then
      -- A combining mark cannot join a control character: Neovim gives it
      -- a cell of its own, so the hint does too.
      out[#out + 1] = ' ' .. ch
      control = false
    else
      out[#out + 1] = ch
      control = false
    end
    after_control = control
  end
  return table.concat(out)
end

-- Fills in the displayed form of a hint's lines; its first line starts at
-- screen column `vcol`, the others at column 0.
local function set_display(h, vcol)
  h.inline = M.display(h.lines[1], vcol, h.tabstop)
  h.virt_lines = {}
  for i = 2, #h.lines do
    h.virt_lines[i - 1] = { { M.display(h.lines[i], 0, h.tabstop), HL_HINT } }
  end
end

local function draw(h)
  clear_marks(h.buf)
  if api.nvim__ns_set then
    -- Only the window the user types in shows the hint, not every window on
    -- the buffer (an experimental API in 0.10/0.11, hence the guard).
    pcall(api.nvim__ns_set, ns, { wins = { h.win } })
  end
  local opts = {
    virt_text = { { h.inline, llama_vim.highlight(HL_HINT) } },
    virt_text_pos = 'inline',
    right_gravity = false,
    hl_mode = 'combine',
  }
  if #h.virt_lines > 0 then
    opts.virt_lines = h.virt_lines
  end
  api.nvim_buf_set_extmark(h.buf, ns, h.row, h.col, opts)
  if h.info ~= '' then
    api.nvim_buf_set_extmark(h.buf, ns, h.row, 0, {
      virt_text = { { h.info, llama_vim.highlight(HL_INFO) } },
      virt_text_pos = 'eol',
      hl_mode = 'combine',
    })
  end
end

local function in_insert()
  local mode = api.nvim_get_mode().mode
  return mode == 'i' or mode == 'ic' or mode == 'ix'
end

---A hint is usable only while the editor is exactly where it was drawn.
---@return boolean
function M.valid()
  local h = shown
  if not h then
    return false
  end
  local win, buf, tick, row, col = context.cursor_state()
  return win == h.win and buf == h.buf and tick == h.tick and row == h.row and col == h.col
end

---Draws a render plan from Python, unless the editor has moved on since.
---@param plan llama_nvim.RenderPlan
function M.show(plan)
  if not state.enabled or not in_insert() or vim.fn.pumvisible() == 1 then
    return
  end
  local win, buf, tick, row, col = context.cursor_state()
  if buf ~= plan.buf or tick ~= plan.tick or row ~= plan.row or col ~= plan.col then
    return -- stale: the user moved on since the request
  end
  if #plan.lines == 0 then
    -- A growing answer came to nothing: take back what was drawn of it.
    if shown and shown.growing and M.valid() then
      M.hide()
    end
    return
  end
  ---@cast plan llama_nvim.Hint
  plan.win = win
  set_display(plan, plan.vcol)
  shown = plan
  status.set(plan.status)
  draw(plan)
end

---The snapshot the editor will send once `h` is accepted whole, built from the
---buffer and the hint's lines; nil where it cannot be told.
---@param h llama_nvim.Hint
---@return llama_nvim.Snapshot|nil
function M.after_accept(h)
  return context.snapshot_after_insert(h.row, h.col, h.vcol, h.lines)
end

-- What is left of `lines` once `typed` (which may hold line breaks) was typed
-- from their start; nil if it was not their start.
---@param lines string[]
---@param typed string[] the typed text, split at its line breaks
---@return string[]|nil
local function typed_off(lines, typed)
  local last = #typed
  if last > #lines then
    return nil
  end
  for i = 1, last - 1 do
    if lines[i] ~= typed[i] then
      return nil
    end
  end
  if lines[last]:sub(1, #typed[last]) ~= typed[last] then
    return nil
  end
  local rest = vim.list_slice(lines, last)
  rest[1] = rest[1]:sub(#typed[last] + 1)
  return rest
end

-- What was typed in `buf` from (h.row, h.col) to (row, col), as lines; nil
-- unless the cursor moved on by typing. `line` is the cursor's line (row).
local function typed_since(h, buf, row, col, line)
  if row == h.row then
    return col > h.col and { line:sub(h.col + 1, col) } or nil
  end
  if row < h.row or row - h.row >= #h.lines then
    return nil
  end
  local lines = api.nvim_buf_get_lines(buf, h.row, row, false)
  lines[1] = lines[1]:sub(h.col + 1)
  lines[#lines + 1] = line:sub(1, col)
  return lines
end

-- Type-through: if what was typed since the hint was drawn is the start of the
-- hint, keep showing the rest without asking anyone; otherwise drop it. Typing
-- may end lines (Enter after the first line typed whole: the rest serves the
-- new line if it starts with the new line's indent).
-- Python's SuggestionCache.get types through too, with another job: answers
-- not on screen (a late reply for a place the user typed through, a cached
-- one). Both keep "typed text is the start of the suggestion, the text right
-- of the cursor unchanged"; they never judge the same suggestion, so each
-- keeps its own form of it (here byte compares against the hint, there the
-- cache key) and no parity test ties them.
---@param win integer
---@param buf integer
---@param tick integer
---@param row integer
---@param col integer the editor now (context.cursor_state())
---@return boolean kept the hint is still shown
function M.follow_typing(win, buf, tick, row, col)
  local h = shown
  if not h then
    return false
  end
  local line = api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ''
  local typed = win == h.win and buf == h.buf and typed_since(h, buf, row, col, line)
  local rest = typed and typed_off(h.lines, typed)
  if not rest or line:sub(col + 1) ~= h.after or (rest[1] == '' and #rest == 1) then
    M.hide()
    return false
  end
  h.lines, h.row, h.col, h.tick = rest, row, col, tick
  h.vcol = vim.fn.virtcol('.') - 1
  set_display(h, h.vcol)
  draw(h)
  return true
end

-- The first `kind` part of the hint's lines, and what remains of them.
local function split(lines, kind)
  local take
  if kind == 'full' then
    take = lines
  elseif kind == 'line' then
    take = { lines[1] }
    if lines[1] == '' and #lines > 1 then
      take = { '', lines[2] }
    end
  else -- word: leading blanks plus one run of non-blanks (or a line break)
    local word = lines[1]:match('^%s*[^%s]+')
    take = word and { word } or (lines[1] == '' and #lines > 1 and { '', '' } or { lines[1] })
  end
  local rest = {}
  rest[1] = lines[#take]:sub(#take[#take] + 1)
  for i = #take + 1, #lines do
    rest[#rest + 1] = lines[i]
  end
  return take, rest
end

-- Inserts the first `kind` part of the hint at the cursor, literally, through
-- the API; what remains of the hint stays on screen.
---@param kind 'full'|'line'|'word'
---@return boolean accepted
function M.accept(kind)
  if not M.valid() then
    return false
  end
  local h = shown
  ---@cast h llama_nvim.Hint
  local take, rest = split(h.lines, kind)
  local last = take[#take]
  api.nvim_buf_set_text(h.buf, h.row, h.col, h.row, h.col, take)
  local row = h.row + #take - 1
  local col = (#take == 1 and h.col or 0) + #last
  api.nvim_win_set_cursor(h.win, { row + 1, col })
  M.hide()
  if #rest > 1 or rest[1] ~= '' then
    local _, _, tick = context.cursor_state()
    local nh = vim.deepcopy(h)
    nh.lines, nh.row, nh.col, nh.tick = rest, row, col, tick
    set_display(nh, vim.fn.virtcol('.') - 1)
    nh.info = ''
    nh.continued = true -- a later accept takes more of the same suggestion
    shown = nh
    draw(nh)
  end
  stats.accepted(h, kind, take)
  return true
end

return M
