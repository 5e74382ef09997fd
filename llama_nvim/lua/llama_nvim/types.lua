-- The messages between the Lua half and the Python host, as LuaCATS types.
--
-- Lua -> Python: one rpcnotify(chan, 'llama_nvim_event', kind, payload) per
-- event, never waited on. Python -> Lua: nvim_exec_lua calls of the public
-- functions (setup, show, hide, message, enable, disable). This file only
-- describes the shapes, for readers and language servers; the Python host
-- checks what it receives (plugin.py's on_event).

---Lines of text sent as one string: one msgpack string decodes far faster in
---the Python host than hundreds of small ones.
---@class llama_nvim.Lines
---@field n integer number of lines
---@field text string the lines joined with '\n'

---Kind 'keystroke' (typing) or 'trigger' (the trigger key): the editor around
---the cursor, capped in bytes.
---@class llama_nvim.Snapshot
---@field buf integer
---@field win integer
---@field tick integer the buffer's changedtick
---@field row integer 0-based
---@field col integer 0-based byte column
---@field before string the cursor line before the cursor (its last max_line_bytes)
---@field after string the cursor line from the cursor (its first max_line_bytes)
---@field above llama_nvim.Lines up to n_prefix lines above, nearest kept
---@field below llama_nvim.Lines up to n_suffix lines below, nearest kept
---@field filename string
---@field filetype string
---@field cwd string
---@field vcol integer screen column of the cursor
---@field tabstop integer
---@field manual boolean true for the trigger key (no debounce, no cache)
---@field buffer_enabled boolean|nil b:llama_enabled (nil when unset)

---Kind 'cycle': another suggestion for the same place.
---@class llama_nvim.CycleEvent: llama_nvim.Snapshot
---@field step integer 1 for the next suggestion, -1 for the previous one
---@field shown string[] the lines of the suggestion on screen

---Kind 'chunk': lines for the extra context (ring buffer).
---@class llama_nvim.ChunkEvent
---@field lines string[]
---@field filename string
---@field filetype string
---@field cwd string
---@field buffer_enabled boolean|nil b:llama_enabled (nil when unset)

---Kind 'enter': a file buffer was entered (priming serves its project).
---@class llama_nvim.EnterEvent
---@field filename string
---@field cwd string

---Kinds 'cancel' (drop the pending request) and 'leave' (insert mode left):
---an empty dict, vim.empty_dict().
---@alias llama_nvim.EmptyEvent table<string, never>

---Kind 'shown' (for :LlamaStats): a new suggestion was drawn.
---@class llama_nvim.ShownEvent
---@field filetype string
---@field latency_ms integer|nil from the keystroke that asked; nil for a cached one

---Kind 'accepted' (for :LlamaStats): part of the suggestion was inserted.
---@class llama_nvim.AcceptedEvent
---@field filetype string
---@field kind 'full'|'line'|'word'
---@field chars integer characters inserted (a line break counts one)
---@field continued boolean the suggestion was what an earlier partial accept left

---@alias llama_nvim.EventKind 'keystroke'|'trigger'|'cycle'|'chunk'|'enter'|'cancel'|'leave'|'shown'|'accepted'

---A suggestion to draw (Python's RenderPlan.to_lua), anchored at the editor
---state of its request; drawn only if the editor is still exactly there.
---@class llama_nvim.RenderPlan
---@field buf integer
---@field tick integer
---@field row integer
---@field col integer
---@field lines string[] the literal text, what accepting inserts
---@field after string the cursor line after the cursor when asked
---@field tabstop integer
---@field vcol integer
---@field info string text after the line ('' unless show_info is 2)
---@field status string the statusline text ('' when show_info is 0)
---@field hl_hint string highlight group of the suggestion
---@field hl_info string highlight group of the info text
---@field cached boolean from a cache, not a reply to its keystroke

---A shown hint: the render plan plus what Lua adds when it draws it.
---@class llama_nvim.Hint: llama_nvim.RenderPlan
---@field win integer the window it is drawn in
---@field inline string the first line as displayed
---@field virt_lines table[] the other lines as displayed, as extmark virt_lines
---@field continued boolean|nil what an earlier partial accept left of a suggestion

---The options Python sends to setup (plugin.py's _lua_options).
---@class llama_nvim.Options
---@field enabled boolean
---@field keymap_trigger string
---@field keymap_accept_full string
---@field keymap_accept_line string
---@field keymap_accept_word string
---@field keymap_next string
---@field keymap_prev string
---@field keymap_defaults table<string, string> the default of each keymap option
---@field keymap_debug_toggle string normal-mode key for :LlamaDebugToggle
---@field n_prefix integer
---@field n_suffix integer
---@field max_prefix_bytes integer
---@field max_suffix_bytes integer
---@field max_line_bytes integer
---@field ring_n_chunks integer
---@field ring_chunk_size integer
---@field ring_scope integer

---One line of :checkhealth from the Python host (LlamaNvimHealth()).
---@class llama_nvim.HealthItem
---@field [1] 'start'|'ok'|'info'|'warn'|'error'
---@field [2] string

return {}
