-- The one way to the Python host: an rpcnotify on its channel, never waited on.

local M = {}

---@type integer|nil the Python host's channel, set by setup
local chan = nil

---@param channel integer
function M.set_channel(channel)
  chan = channel
end

---True once the Python host has set the Lua half up.
---@return boolean
function M.is_ready()
  return chan ~= nil
end

---Sends one event to the Python host.
---@param kind llama_nvim.EventKind
---@param payload? table
function M.notify(kind, payload)
  if chan then
    -- pcall: the host may have died; the editor must carry on regardless.
    pcall(vim.rpcnotify, chan, 'llama_nvim_event', kind, payload or vim.empty_dict())
  end
end

return M
