-- llama.nvim, editor half. Loaded by the Python plugin with nvim_exec_lua and
-- registered as package.loaded['llama_nvim'].
--
-- Everything on the keystroke path lives here so that Neovim never waits on
-- Python: the autocommands gather the context and send it in one rpcnotify,
-- Tab decides from local state whether to accept or fall back, and accepting
-- edits the buffer through the API (never by typing keys). Python answers
-- asynchronously with a render plan, which is drawn only if the editor is
-- still exactly where the request was made.

local api = vim.api
local M = {}

local ns = api.nvim_create_namespace('llama_nvim')
local augroup = 'llama_nvim'

local S = {
  chan = nil, -- the Python host's channel
  opts = {},
  enabled = false,
  hint = nil, -- the suggestion on screen: anchor + lines
  last_key = nil, -- dedupes CursorMovedI + TextChangedI of one keystroke
  fallbacks = {}, -- lhs -> the mapping we replaced
  pick_row = {}, -- buf -> row where ring chunks were last picked (jump detection)
  status = '',
}

local function notify_py(kind, payload)
  if S.chan then
    -- pcall: the host may have died; the editor must carry on regardless.
    pcall(vim.rpcnotify, S.chan, 'llama_nvim_event', kind, payload or vim.empty_dict())
  end
end

-- Hint state ------------------------------------------------------------------

local function clear_marks(buf)
  if buf and api.nvim_buf_is_valid(buf) then
    api.nvim_buf_clear_namespace(buf, ns, 0, -1)
  end
end

local set_status -- defined with the messages below

function M.hide()
  if S.hint then
    clear_marks(S.hint.buf)
    S.hint = nil
    set_status('')
  end
end

-- How a suggestion's text is shown: tabs expanded to the next tab stop and
-- control characters in caret notation (C1 ones as <xx>), so nothing in a
-- suggestion is ever interpreted by the terminal. Cell widths are Neovim's own.
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
    h.virt_lines[i - 1] = { { M.display(h.lines[i], 0, h.tabstop), h.hl_hint } }
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
    virt_text = { { h.inline, h.hl_hint } },
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
      virt_text = { { h.info, h.hl_info } },
      virt_text_pos = 'eol',
      hl_mode = 'combine',
    })
  end
end

local function cursor_state()
  local win = api.nvim_get_current_win()
  local buf = api.nvim_win_get_buf(win)
  local pos = api.nvim_win_get_cursor(win)
  return win, buf, api.nvim_buf_get_changedtick(buf), pos[1] - 1, pos[2]
end

local function in_insert()
  local mode = api.nvim_get_mode().mode
  return mode == 'i' or mode == 'ic' or mode == 'ix'
end

-- A hint is usable only while the editor is exactly where it was drawn.
local function hint_valid()
  local h = S.hint
  if not h then
    return false
  end
  local win, buf, tick, row, col = cursor_state()
  return win == h.win and buf == h.buf and tick == h.tick and row == h.row and col == h.col
end

-- Called by Python (asynchronously) with a render plan.
function M.show(plan)
  if not S.enabled or not in_insert() or vim.fn.pumvisible() == 1 then
    return
  end
  local win, buf, tick, row, col = cursor_state()
  if buf ~= plan.buf or tick ~= plan.tick or row ~= plan.row or col ~= plan.col then
    return -- stale: the user moved on since the request
  end
  plan.win = win
  set_display(plan, plan.vcol)
  S.hint = plan
  set_status(plan.status)
  draw(plan)
end

-- Type-through: if what was typed since the hint was drawn is the start of the
-- hint, keep showing the rest without asking anyone; otherwise drop it.
local function follow_typing(win, buf, tick, row, col)
  local h = S.hint
  if not h then
    return false
  end
  if win ~= h.win or buf ~= h.buf or row ~= h.row or col <= h.col then
    M.hide()
    return false
  end
  local line = api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ''
  local typed = line:sub(h.col + 1, col)
  local first = h.lines[1]
  if first:sub(1, #typed) ~= typed or line:sub(col + 1) ~= h.after then
    M.hide()
    return false
  end
  local rest = first:sub(#typed + 1)
  if rest == '' and #h.lines == 1 then
    M.hide()
    return false
  end
  local lines = vim.list_slice(h.lines, 2)
  table.insert(lines, 1, rest)
  h.lines, h.col, h.tick = lines, col, tick
  set_display(h, vim.fn.virtcol('.') - 1)
  draw(h)
  return true
end

-- Context gathering -------------------------------------------------------------

-- Only real, listed, editable file buffers are ever read: never help,
-- terminal, quickfix, prompt or scratch buffers, nor read-only ones.
local function eligible(buf)
  local bo = vim.bo[buf]
  return bo.buftype == '' and bo.buflisted and bo.modifiable and not bo.readonly
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

-- Lines [from, to) capped in bytes, keeping the lines nearest the cursor.
local function capped_lines(buf, from, to, max_bytes, max_line, nearest_last)
  local lines = api.nvim_buf_get_lines(buf, from, to, false)
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

local function snapshot(manual)
  local o = S.opts
  local win, buf, tick, row, col = cursor_state()
  local line = api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ''
  local before = tail_bytes(line:sub(1, col), o.max_line_bytes)
  local after = head_bytes(line:sub(col + 1), o.max_line_bytes)
  local name = api.nvim_buf_get_name(buf)
  return {
    buf = buf,
    win = win,
    tick = tick,
    row = row,
    col = col,
    before = before,
    after = after,
    -- Each as one string (with its line count): one msgpack string decodes
    -- far faster in the Python host than hundreds of small ones.
    above = joined(capped_lines(buf, math.max(0, row - o.n_prefix), row, o.max_prefix_bytes, o.max_line_bytes, true)),
    below = joined(capped_lines(buf, row + 1, row + 1 + o.n_suffix, o.max_suffix_bytes, o.max_line_bytes, false)),
    filename = name,
    filetype = vim.bo[buf].filetype,
    cwd = vim.fn.getcwd(),
    vcol = vim.fn.virtcol('.') - 1,
    tabstop = vim.bo[buf].tabstop,
    manual = manual,
  }
end

-- Ring chunks -----------------------------------------------------------------------

local JUMP_LINES = 32

-- Lines per chunk: half of ring_chunk_size, as llama.vim takes them. Small
-- chunks keep the extra context focused and cheap for the server to attend to.
local function chunk_lines()
  return math.max(3, math.floor(S.opts.ring_chunk_size / 2))
end

local function chunk_event(buf, lines)
  return {
    lines = lines,
    filename = api.nvim_buf_get_name(buf),
    filetype = vim.bo[buf].filetype,
    cwd = vim.fn.getcwd(),
  }
end

local function send_chunk(buf, first, last)
  local o = S.opts
  if o.ring_n_chunks == 0 or not eligible(buf) then
    return
  end
  local n = api.nvim_buf_line_count(buf)
  first, last = math.max(first, 0), math.min(last, n)
  if last - first < 3 then
    return
  end
  notify_py('chunk', chunk_event(buf, capped_lines(buf, first, last, o.max_prefix_bytes, o.max_line_bytes, false)))
end

-- Around the cursor, when a file is entered, left or saved (unmodified files
-- only: a half-edited buffer is not yet worth remembering).
local function chunk_around_cursor(ev)
  local buf = ev.buf
  if ev.event == 'BufEnter' and eligible(buf) then
    -- Priming serves the project of the buffer being edited.
    notify_py('enter', { filename = api.nvim_buf_get_name(buf), cwd = vim.fn.getcwd() })
  end
  if buf ~= api.nvim_get_current_buf() or (ev.event ~= 'BufWritePost' and vim.bo[buf].modified) then
    return
  end
  local row = api.nvim_win_get_cursor(0)[1] - 1
  local half = math.floor(chunk_lines() / 2)
  send_chunk(buf, row - half, row - half + chunk_lines())
end

local function chunk_from_yank()
  local buf = api.nvim_get_current_buf()
  if S.opts.ring_n_chunks == 0 or not eligible(buf) then
    return
  end
  local lines = vim.v.event.regcontents
  if #lines >= 3 then
    notify_py('chunk', chunk_event(buf, vim.list_slice(lines, 1, chunk_lines())))
  end
end

-- After a jump of more than JUMP_LINES, the text just outside the local
-- window (above the prefix, below the suffix, within ring_scope) is likely
-- to matter soon.
local function chunks_after_jump(buf, row)
  local o = S.opts
  local last = S.pick_row[buf]
  S.pick_row[buf] = row
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

local function on_normal_cursor()
  local buf = api.nvim_get_current_buf()
  if eligible(buf) then
    chunks_after_jump(buf, api.nvim_win_get_cursor(0)[1] - 1)
  end
end

local function on_cursor()
  if not S.enabled then
    return
  end
  local win, buf, tick, row, col = cursor_state()
  local key = table.concat({ win, buf, tick, row, col }, ':')
  if key == S.last_key then
    return
  end
  S.last_key = key
  if S.hint and S.hint.tick == tick and S.hint.row == row and S.hint.col == col then
    return -- our own accept already moved the hint along
  end
  local kept = follow_typing(win, buf, tick, row, col)
  -- On a huge line (minified code) the context is cut anyway, and an inline
  -- hint would make every keystroke slow to redraw: no suggestion there.
  local huge = vim.fn.col('$') - 1 > S.opts.max_line_bytes
  if kept or huge or not eligible(buf) or vim.fn.pumvisible() == 1 then
    notify_py('cancel')
    return
  end
  chunks_after_jump(buf, row)
  notify_py('keystroke', snapshot(false))
end

local function on_leave(ev)
  S.last_key = nil
  M.hide()
  notify_py(ev.event == 'InsertLeave' and 'leave' or 'cancel')
end

-- Accepting -----------------------------------------------------------------------

-- Inserts the first `kind` part of the hint at the cursor, literally, through
-- the API; what remains of the hint stays on screen.
function M.accept(kind)
  if not hint_valid() then
    return false
  end
  local h = S.hint
  local take
  if kind == 'full' then
    take = h.lines
  elseif kind == 'line' then
    take = { h.lines[1] }
    if h.lines[1] == '' and #h.lines > 1 then
      take = { '', h.lines[2] }
    end
  else -- word: leading blanks plus one run of non-blanks (or a line break)
    local word = h.lines[1]:match('^%s*[^%s]+')
    take = word and { word } or (h.lines[1] == '' and #h.lines > 1 and { '', '' } or { h.lines[1] })
  end
  local rest = {}
  local last = take[#take]
  local src = h.lines[#take]
  rest[1] = src:sub(#last + 1)
  for i = #take + 1, #h.lines do
    rest[#rest + 1] = h.lines[i]
  end

  api.nvim_buf_set_text(h.buf, h.row, h.col, h.row, h.col, take)
  local row = h.row + #take - 1
  local col = (#take == 1 and h.col or 0) + #last
  api.nvim_win_set_cursor(h.win, { row + 1, col })
  M.hide()
  if #rest > 1 or rest[1] ~= '' then
    local _, _, tick = cursor_state()
    local nh = vim.deepcopy(h)
    nh.lines, nh.row, nh.col, nh.tick = rest, row, col, tick
    set_display(nh, vim.fn.virtcol('.') - 1)
    nh.info = ''
    S.hint = nh
    draw(nh)
  end
  return true
end

-- Mappings --------------------------------------------------------------------------

local function termcodes(keys)
  return api.nvim_replace_termcodes(keys, true, true, true)
end

-- Keys to run instead of ours when no hint is shown: whatever the key did
-- before the plugin (another plugin's or the user's mapping, or the key itself).
local function fallback(lhs)
  local orig = S.fallbacks[lhs]
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

function M._run_fallback(id)
  for _, orig in pairs(S.fallbacks) do
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
    existing.id = vim.tbl_count(S.fallbacks) + 1
    S.fallbacks[lhs] = existing
  end
  local orig = S.fallbacks[lhs]
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

-- A key that runs `call` (a function of this module, outside the expr
-- textlock) on the shown hint, and does what it did before when none is shown.
local function hint_action(call)
  local keys = termcodes('<Cmd>lua require("llama_nvim").' .. call .. '<CR>')
  return function(lhs)
    if vim.fn.pumvisible() == 0 and hint_valid() then
      return keys
    end
    return fallback(lhs)
  end
end

-- Next / previous suggestion: Python recalls or fetches another one for this
-- place and answers with a render plan, drawn like any other.
function M.cycle(step)
  if not hint_valid() then
    return
  end
  local ev = snapshot(false)
  ev.step = step
  ev.shown = S.hint.lines
  notify_py('cycle', ev)
end

local function trigger_action(lhs)
  if not S.enabled then
    return fallback(lhs)
  end
  return termcodes('<Cmd>lua require("llama_nvim").trigger()<CR>')
end

-- Ctrl+F: hide a shown hint, else ask now (no debounce, no cache).
function M.trigger()
  if not S.enabled then
    return
  end
  if S.hint then
    M.hide()
    notify_py('cancel')
    return
  end
  local _, buf = cursor_state()
  if eligible(buf) then
    notify_py('trigger', snapshot(true))
  end
end

-- Messages. While the user types, a message wider than the command line
-- would raise a hit-enter prompt that swallows their next keys, so it is cut
-- to fit (:LlamaStatus repeats it whole). Outside insert mode it is shown whole.
-- A notification plugin that replaced vim.notify gets the full text: it does
-- not block.
local function notify_is_builtin()
  local info = debug.getinfo(vim.notify, 'S')
  return info ~= nil and (info.source or ''):match('vim/_editor%.lua$') ~= nil
end

local notice_ns = api.nvim_create_namespace('llama_nvim_notice')
local NOTICE_MS = 4000

-- In insert mode, 'showmode' redraws "-- INSERT --" over the command line, so
-- a message there would never be seen: it is also shown for a few seconds at
-- the end of the cursor line, where the user is looking.
local function show_notice(text, hl)
  local buf = api.nvim_get_current_buf()
  local row = api.nvim_win_get_cursor(0)[1] - 1
  api.nvim_buf_clear_namespace(buf, notice_ns, 0, -1)
  pcall(api.nvim_buf_set_extmark, buf, notice_ns, row, 0, {
    virt_text = { { '  ' .. text, hl } },
    virt_text_pos = 'eol',
    hl_mode = 'combine',
  })
  vim.defer_fn(function()
    if api.nvim_buf_is_valid(buf) then
      api.nvim_buf_clear_namespace(buf, notice_ns, 0, -1)
    end
  end, NOTICE_MS)
end

function M.message(text, is_error)
  local hl = is_error and 'WarningMsg' or 'None'
  if not notify_is_builtin() then
    vim.notify(text, is_error and vim.log.levels.WARN or vim.log.levels.INFO)
    return
  end
  local mode = api.nvim_get_mode().mode:sub(1, 1)
  local typing = mode == 'i' or mode == 'R'
  local room = math.max(vim.v.echospace - 1, 20)
  if typing and vim.fn.strdisplaywidth(text) > room then
    text = vim.fn.strcharpart(text, 0, room - 3) .. '...'
  end
  api.nvim_echo({ { text, hl } }, true, {})
  if typing then
    show_notice(text, hl)
  end
end

-- Statusline: `%{get(g:, 'llama_nvim_status', '')}` works even before the
-- plugin has started; `v:lua.require'llama_nvim'.status()` once it has.
function set_status(text)
  S.status = text
  if vim.g.llama_nvim_status ~= text then
    vim.g.llama_nvim_status = text
  end
end

function M.status()
  return S.status
end

-- Set-up ------------------------------------------------------------------------------

function M.enable()
  S.enabled = true
  local g = api.nvim_create_augroup(augroup, { clear = true })
  api.nvim_create_autocmd({ 'CursorMovedI', 'TextChangedI' }, { group = g, callback = on_cursor })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave', 'WinLeave' }, { group = g, callback = on_leave })
  api.nvim_create_autocmd('CompleteChanged', { group = g, callback = M.hide })
  api.nvim_create_autocmd({ 'BufEnter', 'BufLeave', 'BufWritePost' }, { group = g, callback = chunk_around_cursor })
  api.nvim_create_autocmd('TextYankPost', { group = g, callback = chunk_from_yank })
  api.nvim_create_autocmd('CursorMoved', { group = g, callback = on_normal_cursor })
end

function M.disable()
  S.enabled = false
  pcall(api.nvim_del_augroup_by_name, augroup)
  M.hide()
  S.last_key = nil
end

function M.is_enabled()
  return S.enabled
end

-- True once the Python half has set us up.
function M.is_ready()
  return S.chan ~= nil
end

-- Unknown <Key> names in a keymap option: nvim_replace_termcodes leaves them as text.
local function unknown_keys(lhs)
  local bad = {}
  for name in lhs:gmatch('<[^<>]+>') do
    if termcodes(name) == name then
      bad[#bad + 1] = name
    end
  end
  return bad
end

function M.setup(chan, opts)
  S.chan = chan
  S.opts = opts
  api.nvim_set_hl(0, 'LlamaNvimHint', { link = 'Comment', default = true })
  api.nvim_set_hl(0, 'LlamaNvimInfo', { link = 'NonText', default = true })
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
      problems[#problems + 1] = string.format(
        'g:llama_config.%s: unknown key name %s in %q; using the default %q', k[1], bad[1], lhs, default)
      lhs = default
    end
    local ok, err = pcall(map, lhs, k[2])
    if not ok then
      problems[#problems + 1] = string.format('g:llama_config.%s: cannot map %q: %s', k[1], lhs, err)
    end
  end
  if opts.enabled then
    M.enable()
    -- The file Neovim was started on was entered before we existed.
    chunk_around_cursor({ buf = api.nvim_get_current_buf(), event = 'BufEnter' })
  end
  return problems
end

return M
