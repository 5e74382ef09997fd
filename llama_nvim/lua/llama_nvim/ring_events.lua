-- Chunks for the extra context: text the user touched (entered, left, saved,
-- yanked, jumped over), sent to the Python host's ring buffer.

local api = vim.api
local context = require('llama_nvim.context')
local rpc = require('llama_nvim.rpc')
local state = require('llama_nvim.state')
local M = {}

local JUMP_LINES = 32

---@type table<integer, integer> buf -> row where chunks were last picked (jump detection)
local pick_row = {}

-- Lines per chunk, decided with the ring's other rules in Python (plugin.py).
local function chunk_lines()
  return state.opts.ring_chunk_lines
end

---@return llama_nvim.ChunkEvent
local function chunk_event(buf, lines)
  return {
    lines = lines,
    filename = api.nvim_buf_get_name(buf),
    filetype = vim.bo[buf].filetype,
    cwd = vim.fn.getcwd(),
    buffer_enabled = context.buffer_enabled(buf),
  }
end

-- Capped as the local context is, so a minified line costs no more here.
-- Whether the lines are worth keeping is the ring's rule (ring.py), not ours.
local function send_lines(buf, lines)
  local o = state.opts
  lines = context.capped_lines(lines, o.max_prefix_bytes, o.max_line_bytes, false)
  rpc.notify('chunk', chunk_event(buf, lines))
end

local function send_chunk(buf, first, last)
  if state.opts.ring_n_chunks == 0 or not context.eligible(buf) then
    return
  end
  local n = api.nvim_buf_line_count(buf)
  first, last = math.max(first, 0), math.min(last, n)
  if last > first then
    send_lines(buf, api.nvim_buf_get_lines(buf, first, last, false))
  end
end

-- Around the cursor, when a file is entered, left or saved (unmodified files
-- only: a half-edited buffer is not yet worth remembering).
---@param ev { buf: integer, event: string }
function M.around_cursor(ev)
  local buf = ev.buf
  if ev.event == 'BufEnter' and context.eligible(buf) then
    -- Priming serves the project of the buffer being edited.
    rpc.notify('enter', { filename = api.nvim_buf_get_name(buf), cwd = vim.fn.getcwd() })
  end
  if buf ~= api.nvim_get_current_buf() or (ev.event ~= 'BufWritePost' and vim.bo[buf].modified) then
    return
  end
  local row = api.nvim_win_get_cursor(0)[1] - 1
  local half = math.floor(chunk_lines() / 2)
  send_chunk(buf, row - half, row - half + chunk_lines())
end

---The yanked text (TextYankPost).
function M.from_yank()
  local buf = api.nvim_get_current_buf()
  if state.opts.ring_n_chunks == 0 or not context.eligible(buf) then
    return
  end
  send_lines(buf, vim.list_slice(vim.v.event.regcontents, 1, chunk_lines()))
end

-- After a jump of more than JUMP_LINES, the text just outside the local
-- window (above the prefix, below the suffix, within ring_scope) is likely
-- to matter soon.
---@param buf integer
---@param row integer 0-based cursor row
function M.after_jump(buf, row)
  local o = state.opts
  local last = pick_row[buf]
  pick_row[buf] = row
  if o.ring_n_chunks == 0 or last == nil or math.abs(row - last) <= JUMP_LINES then
    return
  end
  local size = chunk_lines()
  local top = row - o.n_prefix
  if top > 0 then
    send_chunk(buf, math.max(top - size, row - o.ring_scope), top)
  end
  local bottom = row + 1 + o.n_suffix
  send_chunk(buf, bottom, math.min(bottom + size, row + o.ring_scope))
end

---The cursor moved in normal mode (CursorMoved).
function M.on_normal_cursor()
  local buf = api.nvim_get_current_buf()
  if context.eligible(buf) then
    M.after_jump(buf, api.nvim_win_get_cursor(0)[1] - 1)
  end
end

return M
