-- Instruction editing: select lines, type an instruction, see the edit
-- stream in below them, accept it with one key (llama.vim's :LlamaInstruct).
--
-- This side owns each instruction's selection (an extmark, so it follows
-- edits elsewhere), the prompt for the instruction (input()) and the keys;
-- the Python host (instruct.py) owns the conversation and the requests, and
-- sends back state updates (M.update) as async calls. Nothing here waits on
-- Python. The accept / cancel / rerun / continue keys are buffer-local and
-- exist only while an instruction is pending in that buffer; where the cursor
-- is on no instruction, they do what they did before.

local api = vim.api
local rpc = require('llama_nvim.rpc')
local status = require('llama_nvim.status')
local keys = require('llama_nvim.instruct_keys')
local view = require('llama_nvim.instruct_view')
local M = {}

---@type llama_nvim.InstOptions|table
local opts = {}
---@type table<integer, llama_nvim.Instruction> id -> pending instruction
local pending = {}
local last_id = 0
---@type table<integer, boolean> buffers we watch for edits
local attached = {}

local function in_buffer(buf)
  for _, entry in pairs(pending) do
    if entry.buf == buf then
      return true
    end
  end
  return false
end

-- The pending instruction whose lines hold the cursor, in the current buffer.
local function at_cursor()
  local buf = api.nvim_get_current_buf()
  local row = api.nvim_win_get_cursor(0)[1] - 1
  for _, entry in pairs(pending) do
    if entry.buf == buf then
      local first, last = view.range(buf, entry.mark)
      if first and row >= first and row <= last then
        return entry
      end
    end
  end
  return nil
end

local function ask(prompt)
  local ok, text = pcall(vim.fn.input, { prompt = prompt, cancelreturn = '' })
  return ok and text or ''
end

---Forgets instruction `id` and removes its marks; tells Python unless it told us.
---@param id integer
---@param tell boolean
local function remove(id, tell)
  local entry = pending[id]
  if not entry then
    return
  end
  pending[id] = nil
  view.clear(entry)
  if tell then
    rpc.notify('inst_close', { id = id })
  end
  if not in_buffer(entry.buf) then
    keys.unmap(entry.buf)
  end
end

local function lines_of(entry)
  local first, last = view.range(entry.buf, entry.mark)
  if not first then
    return nil, nil, nil
  end
  return first, last, api.nvim_buf_get_lines(entry.buf, first, last + 1, false)
end

-- The instruction's lines are still what was selected.
local function intact(entry)
  local _, _, lines = lines_of(entry)
  return lines ~= nil and vim.deep_equal(lines, entry.original)
end

-- After edits in `buf`: an instruction whose own lines changed is cancelled.
local function check(buf)
  local cancelled = 0
  for id, entry in pairs(pending) do
    if entry.buf == buf and not intact(entry) then
      remove(id, true)
      cancelled = cancelled + 1
    end
  end
  if cancelled > 0 then
    status.message('llama.nvim: instruction cancelled: its lines were edited', true)
  end
end

local function attach(buf)
  if attached[buf] then
    return
  end
  attached[buf] = true
  local scheduled = false
  api.nvim_buf_attach(buf, false, {
    on_lines = function()
      if not in_buffer(buf) then
        attached[buf] = nil
        return true -- detach
      end
      if not scheduled then
        scheduled = true
        vim.schedule(function()
          scheduled = false
          check(buf)
        end)
      end
    end,
    on_detach = function()
      attached[buf] = nil
      for id, entry in pairs(pending) do
        if entry.buf == buf then
          remove(id, true)
        end
      end
    end,
  })
end

---Accepts the ready instruction under the cursor: its lines become the result (one undo step).
function M.accept()
  local entry = at_cursor()
  if not entry or entry.status ~= 'ready' then
    return keys.fallback(api.nvim_get_current_buf(), opts.keymap_accept, true)
  end
  local first, last = lines_of(entry)
  if not intact(entry) then
    return check(entry.buf)
  end
  local result = vim.split(entry.text or '', '\n', { plain = true })
  while #result > 0 and result[#result] == '' do
    result[#result] = nil
  end
  remove(entry.id, true)
  api.nvim_buf_set_lines(entry.buf, first, last + 1, false, result)
end

---Cancels the instruction under the cursor; the buffer stays as it was.
function M.cancel()
  local entry = at_cursor()
  if not entry then
    return keys.fallback(api.nvim_get_current_buf(), opts.keymap_cancel, true)
  end
  remove(entry.id, true)
end

local function restart(entry, instruction)
  entry.status, entry.text, entry.n_gen = 'proc', '', 0
  view.draw(entry, opts)
  if instruction then
    entry.instruction = instruction
    rpc.notify('inst_ask', { id = entry.id, instruction = instruction })
  else
    rpc.notify('inst_rerun', { id = entry.id })
  end
end

---Asks the last instruction again for the ready instruction under the cursor.
function M.rerun()
  local entry = at_cursor()
  if not entry or entry.status ~= 'ready' then
    return keys.fallback(api.nvim_get_current_buf(), opts.keymap_rerun, false)
  end
  restart(entry, nil)
end

---Asks a follow-up instruction in the same conversation.
function M.continue()
  local entry = at_cursor()
  if not entry or entry.status ~= 'ready' then
    return keys.fallback(api.nvim_get_current_buf(), opts.keymap_continue, false)
  end
  local instruction = ask('Next instruction: ')
  if instruction ~= '' and pending[entry.id] then
    restart(entry, instruction)
  end
end

local function map_keys(buf)
  keys.map(buf, {
    [opts.keymap_accept] = M.accept,
    [opts.keymap_cancel] = M.cancel,
    [opts.keymap_rerun] = M.rerun,
    [opts.keymap_continue] = M.continue,
  })
end

local function lines_payload(lines)
  return { n = #lines, text = table.concat(lines, '\n') }
end

---Starts an instruction on lines `line1`..`line2` (1-based) of the current buffer.
---@param line1 integer
---@param line2 integer
function M.start(line1, line2)
  if not rpc.is_ready() then
    return
  end
  local buf = api.nvim_get_current_buf()
  local first, last = math.min(line1, line2) - 1, math.max(line1, line2) - 1
  local selection = api.nvim_buf_get_lines(buf, first, last + 1, false)
  last_id = last_id + 1
  ---@type llama_nvim.Instruction
  local entry = { id = last_id, buf = buf, original = selection, status = 'input', mark = view.mark(buf, first, last) }
  pending[entry.id] = entry
  attach(buf)
  map_keys(buf)
  api.nvim_win_set_cursor(0, { first + 1, 0 })
  ---@type llama_nvim.InstOpenEvent
  local ev = {
    id = entry.id,
    prefix = lines_payload(api.nvim_buf_get_lines(buf, math.max(0, first - opts.n_prefix), first, false)),
    selection = lines_payload(selection),
    suffix = lines_payload(api.nvim_buf_get_lines(buf, last + 1, last + 1 + opts.n_suffix, false)),
    filename = api.nvim_buf_get_name(buf),
    cwd = vim.fn.getcwd(),
  }
  -- The server reads the context while the user types the instruction.
  rpc.notify('inst_open', ev)
  vim.cmd.redraw()
  local instruction = ask('Instruction: ')
  if instruction == '' or not pending[entry.id] then
    return remove(entry.id, true)
  end
  restart(entry, instruction)
end

---A state update from the Python host (instruct.py), called asynchronously.
---@param id integer
---@param state llama_nvim.InstState
function M.update(id, state)
  local entry = pending[id]
  if not entry then
    return -- cancelled meanwhile
  end
  if state.status == 'error' then
    remove(id, false)
    status.message(state.error or 'llama.nvim: instruction failed', true)
    return
  end
  entry.status, entry.text, entry.n_gen = state.status, state.text or '', state.n_gen or 0
  view.draw(entry, opts)
end

---The pending instructions (for tests and the curious), in the order started.
---@return table[] {id, buf, status, first, last, text} each, rows 0-based
function M.pending()
  local out = {}
  for id, entry in pairs(pending) do
    local first, last = view.range(entry.buf, entry.mark)
    out[#out + 1] = { id = id, buf = entry.buf, status = entry.status, first = first, last = last, text = entry.text }
  end
  table.sort(out, function(a, b)
    return a.id < b.id
  end)
  return out
end

---@type string[] what was wrong with the keys at the last setup (for :checkhealth)
local last_problems = {}

---Sets up the command, the trigger key and the highlight groups (init.lua's setup).
---@param options llama_nvim.InstOptions
---@return string[] problems one message per keymap option that names an unknown key
function M.setup(options)
  for id in pairs(pending) do
    remove(id, false) -- set up again (:LlamaReload): Python forgot them
  end
  opts = options
  last_problems = keys.validate(opts)
  view.define_highlights()
  api.nvim_create_user_command('LlamaInstruct', function(args)
    M.start(args.line1, args.line2)
  end, { range = '%', desc = 'llama.nvim: edit the lines with an instruction' })
  keys.map_trigger(opts.keymap_trigger, M.start)
  return last_problems
end

---The key problems of the last setup.
---@return string[]
function M.problems()
  return last_problems
end

return M
