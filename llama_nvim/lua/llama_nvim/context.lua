-- The editor around the cursor, as the Python host gets it: a snapshot of
-- the cursor line and the lines near it, capped in bytes on this side so a
-- huge buffer never costs a huge message.

local api = vim.api
local state = require('llama_nvim.state')
local M = {}

---Where the user is: window, buffer, changedtick, 0-based row and byte column.
---@return integer win, integer buf, integer tick, integer row, integer col
function M.cursor_state()
  local win = api.nvim_get_current_win()
  local buf = api.nvim_win_get_buf(win)
  local pos = api.nvim_win_get_cursor(win)
  return win, buf, api.nvim_buf_get_changedtick(buf), pos[1] - 1, pos[2]
end

-- Only real, listed, editable file buffers are ever read: never help,
-- terminal, quickfix, prompt or scratch buffers, nor read-only ones.
---@param buf integer
---@return boolean
function M.eligible(buf)
  local bo = vim.bo[buf]
  return bo.buftype == '' and bo.buflisted and bo.modifiable and not bo.readonly
end

---The buffer's own switch, b:llama_enabled: true, false, or nil when unset
---(1 and 0 from Vimscript count as true and false).
---@param buf integer
---@return boolean|nil
function M.buffer_enabled(buf)
  local value = vim.b[buf].llama_enabled
  if type(value) == 'number' then
    return value ~= 0
  end
  if type(value) == 'boolean' then
    return value
  end
  return nil
end

local function continuation(b)
  return b ~= nil and b >= 0x80 and b < 0xC0
end

-- The first n bytes of s, not splitting a UTF-8 character (Python cuts alike).
local function head_bytes(s, n)
  if #s <= n then
    return s
  end
  while n > 0 and continuation(s:byte(n + 1)) do
    n = n - 1
  end
  return s:sub(1, n)
end

-- The last n bytes of s, not splitting a UTF-8 character.
local function tail_bytes(s, n)
  if #s <= n then
    return s
  end
  local start = #s - n + 1
  while start <= #s and continuation(s:byte(start)) do
    start = start + 1
  end
  return s:sub(start)
end

---Lines capped in bytes, keeping the lines nearest the cursor.
---@param lines string[]
---@param max_bytes integer all lines together, a line break counted per line
---@param max_line integer each line
---@param nearest_last boolean true when the cursor is below the lines
---@return string[]
function M.capped_lines(lines, max_bytes, max_line, nearest_last)
  local total, out = 0, {}
  local n = #lines
  for k = 1, n do
    local i = nearest_last and (n - k + 1) or k
    local l = head_bytes(lines[i], max_line)
    total = total + #l + 1
    if total > max_bytes then
      break
    end
    out[#out + 1] = l
  end
  if nearest_last then
    -- restore file order
    local r = {}
    for i = #out, 1, -1 do
      r[#r + 1] = out[i]
    end
    return r
  end
  return out
end

local function joined(lines)
  return { n = #lines, text = table.concat(lines, '\n') }
end

-- The snapshot of a buffer as `get_lines(from, to)` (0-based, end excluded)
-- reads it, the cursor at (row, col); `vcol` is the cursor's screen column.
-- One function for the buffer as it is and as it would be after an accept,
-- so that both are capped alike (the speculative request's cache key).
local function snapshot_of(buf, get_lines, row, col, vcol, manual)
  local o = state.opts
  local line = get_lines(row, row + 1)[1] or ''
  local first_above = math.max(0, row - o.n_prefix)
  local last_below = row + 1 + o.n_suffix
  return {
    buf = buf,
    win = api.nvim_get_current_win(),
    tick = api.nvim_buf_get_changedtick(buf),
    row = row,
    col = col,
    before = tail_bytes(line:sub(1, col), o.max_line_bytes),
    after = head_bytes(line:sub(col + 1), o.max_line_bytes),
    -- Each as one string (with its line count): one msgpack string decodes
    -- far faster in the Python host than hundreds of small ones.
    above = joined(M.capped_lines(get_lines(first_above, row), o.max_prefix_bytes, o.max_line_bytes, true)),
    below = joined(M.capped_lines(get_lines(row + 1, last_below), o.max_suffix_bytes, o.max_line_bytes, false)),
    filename = api.nvim_buf_get_name(buf),
    filetype = vim.bo[buf].filetype,
    cwd = vim.fn.getcwd(),
    vcol = vcol,
    tabstop = vim.bo[buf].tabstop,
    manual = manual,
    buffer_enabled = M.buffer_enabled(buf),
  }
end

---The editor around the cursor, for a request.
---@param manual boolean asked with the trigger key
---@return llama_nvim.Snapshot
function M.snapshot(manual)
  local _, buf, _, row, col = M.cursor_state()
  local function get_lines(from, to)
    return api.nvim_buf_get_lines(buf, from, to, false)
  end
  return snapshot_of(buf, get_lines, row, col, vim.fn.virtcol('.') - 1, manual)
end

---The snapshot the editor will send once `lines` are inserted at (row, col)
---of the current buffer (the state after accepting a hint), capped exactly
---as M.snapshot caps it, built without touching the buffer. Nil for a
---multi-line insert where the text left of the cursor is longer than
---max_line_bytes: only the trigger key asks on a line that long (minified
---code), and no request is spent ahead for it.
---@param row integer
---@param col integer
---@param vcol integer the screen column of (row, col)
---@param lines string[] what accepting inserts
---@return llama_nvim.Snapshot|nil
function M.snapshot_after_insert(row, col, vcol, lines)
  local buf = api.nvim_get_current_buf()
  if #lines == 0 or (#lines > 1 and col > state.opts.max_line_bytes) then
    return nil
  end
  local line = api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ''
  local new = vim.list_extend({}, lines)
  local last = new[#new]
  new[1] = line:sub(1, col) .. new[1]
  new[#new] = new[#new] .. line:sub(col + 1)
  local added = #lines - 1
  -- Rows of the buffer after the insert: rows below it move down by `added`.
  local function get_lines(from, to)
    local out = {}
    if from < row then
      out = api.nvim_buf_get_lines(buf, from, math.min(to, row), false)
    end
    for r = math.max(from, row), math.min(to, row + added + 1) - 1 do
      out[#out + 1] = new[r - row + 1]
    end
    if to > row + added + 1 then
      vim.list_extend(out, api.nvim_buf_get_lines(buf, math.max(from, row + added + 1) - added, to - added, false))
    end
    return out
  end
  local start_vcol = added == 0 and vcol or 0
  -- A NUL is shown as ^@ (and would reach strdisplaywidth as a Blob).
  local new_vcol = start_vcol + vim.fn.strdisplaywidth((last:gsub('%z', '^@')), start_vcol)
  return snapshot_of(buf, get_lines, row + added, (added == 0 and col or 0) + #last, new_vcol, false)
end

return M
