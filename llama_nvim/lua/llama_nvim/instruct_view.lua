-- What an instruction looks like on screen: its selection highlighted, and
-- virtual lines below it with its state (processing, generating with a live
-- preview, ready with the whole result). Only draws; instruct.lua decides.

local api = vim.api
local hint = require('llama_nvim.hint')
local llama_vim = require('llama_nvim.llama_vim')
local M = {}

M.ns = api.nvim_create_namespace('llama_nvim_inst')

-- Our groups, each linked to a default; llama.vim's names win when defined (llama_vim.lua).
local GROUPS = {
  LlamaNvimInstSrc = 'Visual',
  LlamaNvimInstProc = 'DiagnosticInfo',
  LlamaNvimInstGen = 'DiagnosticHint',
  LlamaNvimInstReady = 'DiagnosticOk',
  LlamaNvimInstInfo = 'Comment',
}
local STATUS_HL = { proc = 'LlamaNvimInstProc', gen = 'LlamaNvimInstGen', ready = 'LlamaNvimInstReady' }
-- Lines of the text so far shown while generating (the last ones).
local PREVIEW_LINES = 10
local SEP = string.rep('=', 40)
-- An instruction longer than this is cut in the header.
local INSTRUCTION_CHARS = 128

---Defines the highlight groups (kept if the user or a colour scheme set them).
function M.define_highlights()
  for group, link in pairs(GROUPS) do
    api.nvim_set_hl(0, group, { link = link, default = true })
  end
end

---Highlights rows `first`..`last` (0-based) of `buf`; the mark follows edits elsewhere.
---@param buf integer
---@param first integer
---@param last integer
---@return integer mark
function M.mark(buf, first, last)
  local last_line = api.nvim_buf_get_lines(buf, last, last + 1, false)[1] or ''
  return api.nvim_buf_set_extmark(buf, M.ns, first, 0, {
    end_row = last,
    end_col = #last_line,
    end_right_gravity = true,
    hl_group = llama_vim.highlight('LlamaNvimInstSrc'),
    hl_eol = true,
    priority = 150,
  })
end

---The rows (0-based, inclusive) the mark covers now, or nil if it is gone.
---@param buf integer
---@param mark integer
---@return integer|nil first
---@return integer|nil last
function M.range(buf, mark)
  if not api.nvim_buf_is_valid(buf) then
    return nil, nil
  end
  local pos = api.nvim_buf_get_extmark_by_id(buf, M.ns, mark, { details = true })
  if not pos or #pos == 0 then
    return nil, nil
  end
  return pos[1], pos[3].end_row or pos[1]
end

local function shown(text, tabstop)
  return hint.display(text, 0, tabstop)
end

local function add_text(out, text, hl, tabstop, keep_last)
  local lines = vim.split(text, '\n', { plain = true })
  local from = keep_last and math.max(1, #lines - keep_last + 1) or 1
  for i = from, #lines do
    out[#out + 1] = { { shown(lines[i], tabstop), hl } }
  end
end

---The virtual lines of `entry` in its state.
---@param entry llama_nvim.Instruction
---@param opts llama_nvim.InstOptions
---@return table[]
function M.lines(entry, opts)
  local hl = llama_vim.highlight(STATUS_HL[entry.status] or 'LlamaNvimInstProc')
  local info = llama_vim.highlight('LlamaNvimInstInfo')
  local tabstop = vim.bo[entry.buf].tabstop
  local out = { { { SEP, hl } } }
  if entry.status ~= 'ready' then
    local model = opts.model ~= '' and opts.model or '(server default)'
    out[#out + 1] = { { 'Endpoint:    ' .. opts.endpoint, info } }
    out[#out + 1] = { { 'Model:       ' .. model, info } }
    local instruction = entry.instruction or ''
    if vim.fn.strchars(instruction) > INSTRUCTION_CHARS then
      instruction = vim.fn.strcharpart(instruction, 0, INSTRUCTION_CHARS) .. '...'
    end
    out[#out + 1] = { { 'Instruction: ' .. shown(instruction, tabstop), info } }
  end
  if entry.status == 'proc' then
    out[#out + 1] = { { 'Processing ...', hl } }
  elseif entry.status == 'gen' then
    out[#out + 1] = { { string.format('Generating:  %4d tokens', entry.n_gen or 0), hl } }
    add_text(out, entry.text or '', hl, tabstop, PREVIEW_LINES)
  elseif entry.status == 'ready' then
    add_text(out, entry.text or '', hl, tabstop)
    out[#out + 1] = { { SEP, hl } }
    local keys = string.format(
      'Ready (%d tokens): %s accept, %s cancel, %s rerun, %s continue',
      entry.n_gen or 0,
      opts.keymap_accept,
      opts.keymap_cancel,
      opts.keymap_rerun,
      opts.keymap_continue
    )
    out[#out + 1] = { { keys, info } }
    return out
  end
  out[#out + 1] = { { SEP, hl } }
  return out
end

---Draws (or redraws in place) the virtual lines of `entry` below its last row.
---@param entry llama_nvim.Instruction
---@param opts llama_nvim.InstOptions
function M.draw(entry, opts)
  local _, last = M.range(entry.buf, entry.mark)
  if not last then
    return
  end
  if entry.status == 'input' then
    M.undraw(entry)
    return
  end
  entry.virt = api.nvim_buf_set_extmark(entry.buf, M.ns, last, 0, {
    id = entry.virt,
    virt_lines = M.lines(entry, opts),
  })
end

---Removes the virtual lines of `entry`.
---@param entry llama_nvim.Instruction
function M.undraw(entry)
  if entry.virt and api.nvim_buf_is_valid(entry.buf) then
    api.nvim_buf_del_extmark(entry.buf, M.ns, entry.virt)
  end
  entry.virt = nil
end

---Removes everything drawn for `entry`.
---@param entry llama_nvim.Instruction
function M.clear(entry)
  M.undraw(entry)
  if api.nvim_buf_is_valid(entry.buf) then
    api.nvim_buf_del_extmark(entry.buf, M.ns, entry.mark)
  end
end

return M
