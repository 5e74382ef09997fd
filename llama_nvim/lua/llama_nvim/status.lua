-- What the user reads: the statusline text and the plugin's messages.

local api = vim.api
local M = {}

local text_shown = ''

-- Statusline: `%{get(g:, 'llama_nvim_status', '')}` works even before the
-- plugin has started; `v:lua.require'llama_nvim'.status()` once it has.
---@param text string
function M.set(text)
  text_shown = text
  if vim.g.llama_nvim_status ~= text then
    vim.g.llama_nvim_status = text
  end
end

---@return string
function M.get()
  return text_shown
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

---Shows one message from the plugin.
---@param text string
---@param is_error boolean
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

return M
