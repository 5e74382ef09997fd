-- What the plugin is doing, for statuslines and other plugins: the state
-- (idle / waiting / shown / error, in g:llama_nvim_state) and the User
-- autocommands LlamaRequestStarted, LlamaRequestDone, LlamaSuggestionShown,
-- LlamaSuggestionAccepted and LlamaStateChanged.
--
-- Request start and end come from the Python host (asynchronous
-- notifications, one each per request the user waits for); the rest is known
-- here.

local api = vim.api
local M = {}

---@type table<integer, true> ids of the requests sent and not yet ended
local in_flight = {}

---@type boolean the last request that ended failed
local failed = false

---@type llama_nvim.StateName
local current = 'idle'

local function fire(name, data)
  -- pcall: an error in a user's autocommand must not break the plugin.
  pcall(api.nvim_exec_autocmds, 'User', { pattern = name, modeline = false, data = data })
end

---@return llama_nvim.StateName
local function compute()
  if next(in_flight) ~= nil then
    return 'waiting'
  end
  -- Required here, not at the top: hint requires this module.
  if require('llama_nvim.hint').current() ~= nil then
    return 'shown'
  end
  return failed and 'error' or 'idle'
end

---Recomputes the state; sets g:llama_nvim_state and fires LlamaStateChanged if it changed.
function M.refresh()
  local new = compute()
  if new == current then
    return
  end
  local previous = current
  current = new
  vim.g.llama_nvim_state = new
  fire('LlamaStateChanged', { state = new, previous = previous })
end

---@return llama_nvim.StateName
function M.state()
  return current
end

---A request the user waits for was sent (from the Python host).
---@param data llama_nvim.RequestStarted
function M.request_started(data)
  in_flight[data.id] = true
  M.refresh()
  fire('LlamaRequestStarted', data)
end

---That request ended (from the Python host).
---@param data llama_nvim.RequestDone
---@param then_show? boolean its answer is being drawn next: the caller refreshes after
function M.request_done(data, then_show)
  in_flight[data.id] = nil
  if data.status == 'ok' then
    failed = false
  elseif data.status == 'error' then
    failed = true
  end
  if not then_show then
    M.refresh()
  end
  fire('LlamaRequestDone', data)
end

---A suggestion was drawn at the cursor.
---@param h llama_nvim.Hint
function M.suggestion_shown(h)
  M.refresh()
  fire('LlamaSuggestionShown', { buf = h.buf, row = h.row, col = h.col, lines = vim.deepcopy(h.lines) })
end

---Part or all of a suggestion was inserted.
---@param data { kind: string, buf: integer, row: integer, col: integer, lines: string[] }
function M.suggestion_accepted(data)
  M.refresh()
  fire('LlamaSuggestionAccepted', data)
end

---Forgets the requests in flight (the Python host is set up afresh).
function M.reset()
  in_flight, failed = {}, false
  M.refresh()
end

return M
