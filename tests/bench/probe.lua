-- Measurement probe of the replay benchmark, loaded identically in every mode.
--
-- * A 1 ms libuv timer records main-loop gaps (stalls): its callback runs
--   only when Neovim's loop is free, so a gap > 2 ms means the loop was busy
--   or Neovim was waiting for the CPU (another process on its core). The
--   process CPU time (getrusage) across the gap tells the two apart: a "busy"
--   gap is one in which Neovim itself ran for more than 2 ms.
-- * Each tick also schedules a poll of the plugin's extmark namespace in the
--   current buffer (main-loop context), to time when ghost text appears.
-- * The driver sends keys with nvim_input (the only API call Neovim serves
--   while a command is half typed, e.g. after a count or an operator) and
--   stamps their send times itself. vim.on_key numbers the keys as Neovim
--   reads them; right then, before the key runs, it samples the mode and
--   whether a suggestion is visible: the state the previous key left.

local api, uv = vim.api, vim.uv or vim.loop

local B = {}
_G.LlamaBench = B

local S = {}

local function reset()
  S = {
    ns = S.ns or -1,
    hint_hl = S.hint_hl or {},
    arrived = 0, -- index of the last key Neovim has read
    t_arrive = {}, -- i -> hrtime when read
    t_handled = {}, -- i -> first poll after key i was read: it and its autocommands are done
    shown_at = {}, -- i -> first poll time a suggestion was visible after key i was read
    after_mode = {}, -- i -> mode right before key i + 1
    after_vis = {}, -- i -> suggestion visible right before key i + 1
    stalls = 0,
    stall_ns = 0,
    max_gap_ns = 0,
    busy = 0, -- gaps with > 2 ms of Neovim's own CPU
    busy_us = 0,
    max_busy_us = 0,
    key_busy_us = {}, -- i -> busy CPU in gaps that ended while key i was the last read
    key_stalls = {}, -- i -> gaps > 2 ms ended while key i was the last read
    hist = { 0, 0, 0, 0, 0 }, -- gaps > 2, > 5, > 10, > 20, > 50 ms
    ticks = 0,
    polls = 0,
  }
end
reset()

-- Which namespace holds the ghost text, and which highlight groups mark
-- suggestion text (as opposed to info text).
function B.setup(ns_name, hint_hls)
  S.ns = api.nvim_create_namespace(ns_name)
  S.hint_hl = {}
  for _, hl in ipairs(hint_hls) do
    S.hint_hl[hl] = true
  end
end

local function hint_chunk(chunk)
  local hl = chunk[2]
  if type(hl) == 'table' then
    hl = hl[#hl]
  end
  return (next(S.hint_hl) == nil or S.hint_hl[hl]) and chunk[1]:match('%S') ~= nil
end

-- A suggestion is visible when the namespace holds hint text that is not
-- just the text already right of the cursor (llama.vim draws that too).
local function visible()
  local marks = api.nvim_buf_get_extmarks(0, S.ns, 0, -1, { details = true })
  if #marks == 0 then
    return false
  end
  local after = nil
  for _, m in ipairs(marks) do
    local d = m[4]
    for _, line in ipairs(d.virt_lines or {}) do
      for _, chunk in ipairs(line) do
        if hint_chunk(chunk) then
          return true
        end
      end
    end
    for _, chunk in ipairs(d.virt_text or {}) do
      if hint_chunk(chunk) then
        if after == nil then
          local pos = api.nvim_win_get_cursor(0)
          local text = api.nvim_buf_get_lines(0, pos[1] - 1, pos[1], false)[1] or ''
          after = vim.trim(text:sub(pos[2] + 1))
        end
        if vim.trim(chunk[1]) ~= after then
          return true
        end
      end
    end
  end
  return false
end

local function poll()
  S.polls = S.polls + 1
  local vis = visible()
  local i = S.arrived
  if i > 0 then
    local now = uv.hrtime()
    if S.t_handled[i] == nil then
      S.t_handled[i] = now
    end
    if vis and S.shown_at[i] == nil then
      S.shown_at[i] = now
    end
  end
end

local on_key_ns = api.nvim_create_namespace('llama_bench_on_key')

-- CPU time of the Neovim process so far, in microseconds.
local function cpu_us()
  local r = uv.getrusage()
  return (r.utime.sec + r.stime.sec) * 1e6 + r.utime.usec + r.stime.usec
end

local function sample_previous()
  local i = S.arrived
  if i > 0 then
    S.after_mode[i] = api.nvim_get_mode().mode
    S.after_vis[i] = visible()
  end
end

function B.start()
  reset()
  vim.on_key(function(_, typed)
    -- Keys a mapping produces come with typed == '': count only real keys.
    if typed ~= nil and typed ~= '' then
      local now = uv.hrtime()
      sample_previous()
      S.arrived = S.arrived + 1
      S.t_arrive[S.arrived] = now
      -- Runs once the key and the autocommands it fires are done: times
      -- what a plugin draws synchronously (type-through) without waiting
      -- for the next timer tick.
      vim.schedule(poll)
    end
  end, on_key_ns)
  S.timer = uv.new_timer()
  S.last = uv.hrtime()
  S.last_cpu = cpu_us()
  S.timer:start(1, 1, function()
    local now, cpu = uv.hrtime(), cpu_us()
    local gap, busy = now - S.last, cpu - S.last_cpu
    S.last, S.last_cpu = now, cpu
    S.ticks = S.ticks + 1
    local i = S.arrived
    if busy > 2000 then
      S.busy = S.busy + 1
      S.busy_us = S.busy_us + busy
      if busy > S.max_busy_us then
        S.max_busy_us = busy
      end
      S.key_busy_us[i] = (S.key_busy_us[i] or 0) + busy
    end
    if gap > 2e6 then
      S.key_stalls[i] = (S.key_stalls[i] or 0) + 1
      S.stalls = S.stalls + 1
      S.stall_ns = S.stall_ns + gap
      if gap > 5e6 then
        S.hist[2] = S.hist[2] + 1
      end
      if gap > 10e6 then
        S.hist[3] = S.hist[3] + 1
      end
      if gap > 20e6 then
        S.hist[4] = S.hist[4] + 1
      end
      if gap > 50e6 then
        S.hist[5] = S.hist[5] + 1
      end
      S.hist[1] = S.hist[1] + 1
    end
    if gap > S.max_gap_ns then
      S.max_gap_ns = gap
    end
    vim.schedule(poll)
  end)
  return true
end

-- Stop measuring; return everything as lists indexed by key (1-based in Lua,
-- sent as arrays: holes are vim.NIL).
function B.finish()
  sample_previous()
  if S.timer then
    S.timer:stop()
    S.timer:close()
    S.timer = nil
  end
  vim.on_key(nil, on_key_ns)
  local n = S.arrived
  local function arr(t)
    local out = {}
    for k = 1, n do
      local v = t[k]
      if v == nil then
        out[k] = vim.NIL
      else
        out[k] = v
      end
    end
    return out
  end
  return {
    n = n,
    t_arrive = arr(S.t_arrive),
    shown_at = arr(S.shown_at),
    t_handled = arr(S.t_handled),
    after_mode = arr(S.after_mode),
    after_vis = arr(S.after_vis),
    stalls = S.stalls,
    stall_ms = S.stall_ns / 1e6,
    max_gap_ms = S.max_gap_ns / 1e6,
    hist = S.hist,
    busy = S.busy,
    busy_ms = S.busy_us / 1e3,
    max_busy_ms = S.max_busy_us / 1e3,
    key_busy_us = arr(S.key_busy_us),
    key_stalls = arr(S.key_stalls),
    ticks = S.ticks,
    polls = S.polls,
  }
end

return B
