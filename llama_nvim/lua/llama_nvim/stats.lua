-- What :LlamaStats counts, told to the Python host: the time from a keystroke
-- to its suggestion drawn (sent with init.lua's 'shown' event) and each
-- accept. Only the filetype and numbers are sent, never the text.

local api = vim.api
local rpc = require('llama_nvim.rpc')
local M = {}

local uv = vim.uv or vim.loop

---@type { key: string, at: number }|nil the last place a suggestion was asked for
local asked = nil

local function place(buf, tick, row, col)
  return table.concat({ buf, tick, row, col }, ':')
end

---A snapshot was sent for a suggestion (keystroke or trigger key).
---@param snap llama_nvim.Snapshot
function M.asked(snap)
  local key = place(snap.buf, snap.tick, snap.row, snap.col)
  if not asked or asked.key ~= key then
    asked = { key = key, at = uv.hrtime() }
  end
end

---Milliseconds from the keystroke that asked for `plan` to now (it is being
---drawn); nil for a cached suggestion or one whose keystroke is not known.
---@param plan llama_nvim.RenderPlan
---@return integer|nil
function M.latency(plan)
  if plan.cached or not asked or asked.key ~= place(plan.buf, plan.tick, plan.row, plan.col) then
    return nil
  end
  return math.floor((uv.hrtime() - asked.at) / 1e6 + 0.5)
end

-- Characters in UTF-8 text: its bytes that start one. In plain Lua: the
-- text may hold a NUL, which Vimscript functions cannot take.
local function characters(text)
  local _, n = text:gsub('[^\128-\191]', '')
  return n
end

---Part of a suggestion was inserted.
---@param h llama_nvim.Hint the suggestion, as it was before the accept
---@param kind 'full'|'line'|'word'
---@param inserted string[] the lines inserted
function M.accepted(h, kind, inserted)
  ---@type llama_nvim.AcceptedEvent
  local ev = {
    filetype = api.nvim_buf_is_valid(h.buf) and vim.bo[h.buf].filetype or '',
    kind = kind,
    chars = characters(table.concat(inserted, '\n')),
    continued = h.continued == true,
  }
  rpc.notify('accepted', ev)
end

---Writes the statistics file when Neovim exits. A request, waited for: not
---a keystroke, and the host may get no time after VimLeavePre. A host that
---died is not waited for (the call fails at once).
---@param chan integer the Python host's channel
function M.flush_at_exit(chan)
  api.nvim_create_autocmd('VimLeavePre', {
    group = api.nvim_create_augroup('llama_nvim_stats', { clear = true }),
    callback = function()
      pcall(vim.rpcrequest, chan, 'llama_nvim_flush')
    end,
  })
end

return M
