-- The <Plug> mappings and the Vimscript function LlamaIsHintShown().
--
-- The <Plug> mappings: one per action, in insert mode, for users who pick
-- their own keys (`imap <C-J> <Plug>(llama-accept-full)`). Each acts as the
-- configured key does when a suggestion is shown; with none shown it does
-- nothing, as a <Plug> mapping cannot know which key to fall back to.

local hint = require('llama_nvim.hint')
local M = {}

-- Acts only on a suggestion a key would act on: shown here, no popup menu.
local function on_hint(action)
  return function()
    if vim.fn.pumvisible() == 0 and hint.valid() then
      action(require('llama_nvim'))
    end
  end
end

---@type { [1]: string, [2]: fun(), [3]: string }[] name, action, description
local PLUGS = {
  {
    'accept-full',
    on_hint(function(llama)
      llama.accept('full')
    end),
    'accept the whole suggestion',
  },
  {
    'accept-line',
    on_hint(function(llama)
      llama.accept('line')
    end),
    'accept the first line of the suggestion',
  },
  {
    'accept-word',
    on_hint(function(llama)
      llama.accept('word')
    end),
    'accept the first word of the suggestion',
  },
  {
    'next',
    on_hint(function(llama)
      llama.cycle(1)
    end),
    'show another suggestion',
  },
  {
    'prev',
    on_hint(function(llama)
      llama.cycle(-1)
    end),
    'show the previous suggestion',
  },
  {
    'trigger',
    function()
      require('llama_nvim').trigger()
    end,
    'ask for a suggestion now, or hide the one shown',
  },
  {
    'dismiss',
    function()
      require('llama_nvim').dismiss()
    end,
    'hide the suggestion and drop the pending request',
  },
}

---The names of the <Plug> mappings, e.g. '<Plug>(llama-accept-full)'.
---@return string[]
function M.names()
  local names = {}
  for i, p in ipairs(PLUGS) do
    names[i] = '<Plug>(llama-' .. p[1] .. ')'
  end
  return names
end

-- llama.vim's llama#is_fim_hint_shown() as a global function (a plugin
-- without an autoload/ folder cannot define llama#...): 1 or 0.
local IS_HINT_SHOWN = [[
function! LlamaIsHintShown() abort
  return luaeval("require('llama_nvim').is_visible()") ? 1 : 0
endfunction
]]

---Defines the <Plug> mappings and LlamaIsHintShown() (again, harmlessly, at each setup).
function M.install()
  vim.cmd(IS_HINT_SHOWN)
  for _, p in ipairs(PLUGS) do
    -- Not <expr>: the actions edit the buffer, which an <expr> mapping may not.
    vim.keymap.set('i', '<Plug>(llama-' .. p[1] .. ')', p[2], { silent = true, desc = 'llama.nvim: ' .. p[3] })
  end
end

return M
