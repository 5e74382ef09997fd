-- State shared by the modules: the options the Python host sent and whether
-- suggestions are on. Each module keeps the rest of its state to itself.

---@class llama_nvim.State
---@field opts llama_nvim.Options|table
---@field enabled boolean
local S = {
  opts = {},
  enabled = false,
}

return S
