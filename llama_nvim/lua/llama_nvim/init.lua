-- llama.nvim, editor half: require('llama_nvim'). The Python host adds the
-- folder holding lua/ to 'runtimepath' and calls setup() when it starts.
--
-- Everything on the keystroke path lives here so that Neovim never waits on
-- Python: the autocommands gather the context and send it in one rpcnotify,
-- Tab decides from local state whether to accept or fall back, and accepting
-- edits the buffer through the API (never by typing keys). Python answers
-- asynchronously with a render plan, which is drawn only if the editor is
-- still exactly where the request was made.
--
-- The parts: context (the snapshot sent per keystroke), hint (the suggestion
-- on screen), typing (the autocommands), ring_events (extra-context chunks),
-- keys (mappings and their fallbacks), status (statusline, messages), rpc (to
-- the Python host), types (every message, both ways), health (:checkhealth),
-- events (state and User autocommands), menus (completion menus), plugs
-- (<Plug> mappings, LlamaIsHintShown()), instruct and instruct_view
-- (:LlamaInstruct, instruction editing on a selection).

local api = vim.api
local context = require('llama_nvim.context')
local events = require('llama_nvim.events')
local hint = require('llama_nvim.hint')
local instruct = require('llama_nvim.instruct')
local keys = require('llama_nvim.keys')
local menus = require('llama_nvim.menus')
local plugs = require('llama_nvim.plugs')
local llama_vim = require('llama_nvim.llama_vim')
local ring_events = require('llama_nvim.ring_events')
local rpc = require('llama_nvim.rpc')
local state = require('llama_nvim.state')
local stats = require('llama_nvim.stats')
local status = require('llama_nvim.status')
local typing = require('llama_nvim.typing')

local M = {}

---Accepts the first `kind` part of the suggestion shown at the cursor.
---@param kind 'full'|'line'|'word'
---@return boolean accepted false if no suggestion was shown here
function M.accept(kind)
  local h = hint.current()
  local at = h and { buf = h.buf, row = h.row, col = h.col }
  if not hint.accept(kind) then
    return false
  end
  ---@cast at { buf: integer, row: integer, col: integer }
  -- What was inserted: from where the suggestion was to the cursor now.
  local _, _, _, row, col = context.cursor_state()
  local lines = api.nvim_buf_get_text(at.buf, at.row, at.col, row, col, {})
  events.suggestion_accepted({ kind = kind, buf = at.buf, row = at.row, col = at.col, lines = lines })
  return true
end

---Removes the suggestion from the screen.
function M.hide()
  hint.hide()
end

---@param a llama_nvim.Hint
---@param b llama_nvim.Hint
---@return boolean
local function same_place(a, b)
  return a.buf == b.buf and a.tick == b.tick and a.row == b.row and a.col == b.col
end

---Draws a render plan (called by the Python host, asynchronously).
---@param plan llama_nvim.RenderPlan
function M.show(plan)
  if menus.hiding() then
    menus.park_plan(plan)
    return
  end
  local before = hint.current()
  hint.show(plan)
  local now = hint.current()
  if now == nil or now == before then
    return
  end
  menus.note_drawn(now)
  -- A growing answer is one suggestion however often it is redrawn: told
  -- once when it first shows, and again when finished (for the fetch ahead).
  local grown = before ~= nil and before.growing and same_place(before, now)
  if grown and now.growing then
    return
  end
  if not grown then
    events.suggestion_shown(now)
  end
  -- Python fetches ahead the suggestion for after this one is accepted whole
  -- (keyed by the snapshot the editor will send then) and counts it.
  ---@type llama_nvim.ShownEvent
  local ev = {
    after_accept = not now.growing and hint.after_accept(now) or nil,
    filetype = vim.bo[now.buf].filetype,
    latency_ms = not grown and stats.latency(now) or nil,
    finished = grown,
  }
  rpc.notify('shown', ev)
end

---How a suggestion's text is shown from screen column `vcol`.
---@param text string
---@param vcol integer
---@param tabstop integer
---@return string
function M.display(text, vcol, tabstop)
  return hint.display(text, vcol, tabstop)
end

---The trigger key: hide a shown hint, else ask now (no debounce, no cache).
function M.trigger()
  if not state.enabled then
    return
  end
  if hint.current() then
    hint.hide()
    rpc.notify('cancel')
    return
  end
  local _, buf = context.cursor_state()
  if context.eligible(buf) then
    local snap = context.snapshot(true)
    stats.asked(snap)
    rpc.notify('trigger', snap)
  end
end

-- Next / previous suggestion: Python recalls or fetches another one for this
-- place and answers with a render plan, drawn like any other.
---@param step integer 1 for the next, -1 for the previous
function M.cycle(step)
  if not hint.valid() then
    return
  end
  local ev = context.snapshot(false) --[[@as llama_nvim.CycleEvent]]
  ev.step = step
  ev.shown = hint.current().lines
  rpc.notify('cycle', ev)
end

---Hides the suggestion and drops the request pending, if any.
function M.dismiss()
  hint.hide()
  rpc.notify('cancel')
end

---True while a suggestion is shown at the cursor (what the accept keys act on).
---@return boolean
function M.is_visible()
  return hint.valid()
end

---What the plugin is doing: 'idle', 'waiting' (a request runs), 'shown' or
---'error' (the last request failed). Also in g:llama_nvim_state.
---@return llama_nvim.StateName
function M.state()
  return events.state()
end

---A request the user waits for was sent (called by the Python host).
---@param data llama_nvim.RequestStarted
function M.request_started(data)
  events.request_started(data)
end

---That request ended (called by the Python host).
---@param data llama_nvim.RequestDone
function M.request_done(data)
  events.request_done(data)
end

---A request's end and the suggestion from its answer, in one call (from the
---Python host): the state goes from waiting to shown with no idle between.
---@param done llama_nvim.RequestDone
---@param plan llama_nvim.RenderPlan
function M.answer(done, plan)
  events.request_done(done, true)
  M.show(plan)
  events.refresh()
end

---Shows one message from the plugin (called by the Python host).
---@param text string
---@param is_error boolean
function M.message(text, is_error)
  status.message(text, is_error)
end

---The statistics of the suggestion shown, or ''.
---@return string
function M.status()
  return status.get()
end

-- The switch is this side's: the keystroke path reads it without asking
-- Python, and Python learns it from the 'enabled' event (nothing requested
-- or primed while off).

---Turns suggestions on: the autocommands start sending events.
function M.enable()
  state.enabled = true
  typing.attach()
  rpc.notify('enabled', { enabled = true })
end

---Turns suggestions off and hides any shown.
function M.disable()
  state.enabled = false
  typing.detach()
  hint.hide()
  typing.forget_last_key()
  rpc.notify('enabled', { enabled = false })
end

---@return boolean
function M.is_enabled()
  return state.enabled
end

---True once the Python half has set us up.
---@return boolean
function M.is_ready()
  return rpc.is_ready()
end

---Runs the Lua callback of a mapping a key replaced (the keys' fallback).
---@param id integer
function M._run_fallback(id)
  keys.run_fallback(id)
end

---Called by the Python host when it starts.
---@param chan integer the host's channel
---@param opts llama_nvim.Options
---@return string[] problems
function M.setup(chan, opts)
  rpc.set_channel(chan)
  state.opts = opts
  api.nvim_set_hl(0, 'LlamaNvimHint', { link = 'Comment', default = true })
  api.nvim_set_hl(0, 'LlamaNvimInfo', { link = 'NonText', default = true })
  keys.uninstall() -- set up again (:LlamaReload): the keys may have changed
  local problems = keys.install(opts)
  plugs.install()
  events.reset()
  vim.g.llama_nvim_state = events.state()
  llama_vim.map_debug_key(opts.keymap_debug_toggle)
  vim.list_extend(problems, instruct.setup(opts.inst))
  if opts.enabled then
    M.enable()
    -- The file Neovim was started on was entered before we existed.
    ring_events.around_cursor({ buf = api.nvim_get_current_buf(), event = 'BufEnter' })
  end
  return problems
end

return M
