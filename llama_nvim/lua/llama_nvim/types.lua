-- The messages between the Lua half and the Python host, as LuaCATS types.
--
-- Lua -> Python: one rpcnotify(chan, 'llama_nvim_event', kind, payload) per
-- event, never waited on. Python -> Lua: nvim_exec_lua calls of the public
-- functions (setup, show, message, enable, disable, is_enabled, request_started,
-- request_done, answer) and of require('llama_nvim.instruct').update. This
-- file only describes the shapes, for readers and language servers; the
-- Python host checks what it receives (messages.py).

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

---Kind 'shown': a hint was drawn (any drawn hint: a reply, a cached one, the
---next / previous one). Not sent where after_accept cannot be told
---(context.snapshot_after_insert).
---@class llama_nvim.ShownEvent
---@field after_accept llama_nvim.Snapshot|nil what the editor will send once the whole hint is accepted
---@field filetype string for :LlamaStats
---@field latency_ms integer|nil from the keystroke that asked; nil for a cached one
---@field finished boolean|nil the finished form of a hint drawn while its answer was coming

---Kind 'enabled': suggestions were turned on or off (this side owns the switch).
---@class llama_nvim.EnabledEvent
---@field enabled boolean

---Kinds 'cancel' (drop the pending request) and 'leave' (insert mode left):
---an empty dict, vim.empty_dict().
---@alias llama_nvim.EmptyEvent table<string, never>

---Kind 'accepted' (for :LlamaStats): part of the suggestion was inserted.
---@class llama_nvim.AcceptedEvent
---@field filetype string
---@field kind 'full'|'line'|'word'
---@field chars integer characters inserted (a line break counts one)
---@field continued boolean the suggestion was what an earlier partial accept left

---Kind 'inst_open': lines were selected for an instruction (Python warms the
---server's cache while the user types it).
---@class llama_nvim.InstOpenEvent
---@field id integer numbers the instructions of this editor; later events name it
---@field prefix llama_nvim.Lines up to n_prefix lines above the selection
---@field selection llama_nvim.Lines the selected lines
---@field suffix llama_nvim.Lines up to n_suffix lines below the selection
---@field filename string
---@field cwd string

---Kind 'inst_ask': an instruction (the first, or a follow-up to the answer).
---@class llama_nvim.InstAskEvent
---@field id integer
---@field instruction string

---Kinds 'inst_rerun' (ask the last instruction again) and 'inst_close'
---(accepted, cancelled or dropped).
---@class llama_nvim.InstIdEvent
---@field id integer

---@alias llama_nvim.EventKind 'keystroke'|'trigger'|'cycle'|'chunk'|'enter'|'cancel'|'leave'|'shown'
---|'enabled'|'accepted'|'inst_open'|'inst_ask'|'inst_rerun'|'inst_close'

---An instruction's state from Python (instruct.py), require('llama_nvim.instruct').update(id, state).
---@class llama_nvim.InstState
---@field status 'proc'|'gen'|'ready'|'error'
---@field text string|nil the answer so far ('gen') or whole ('ready')
---@field n_gen integer|nil pieces streamed so far (about one token each)
---@field error string|nil the message to show ('error')

---A pending instruction, as instruct.lua keeps it.
---@class llama_nvim.Instruction
---@field id integer
---@field buf integer
---@field mark integer extmark of the selection (follows edits elsewhere)
---@field virt integer|nil extmark of the virtual lines
---@field original string[] the selected lines, to notice edits inside them
---@field status 'input'|'proc'|'gen'|'ready'
---@field instruction string|nil
---@field text string|nil
---@field n_gen integer|nil

---Instruction editing's options (session.py's inst_options).
---@class llama_nvim.InstOptions
---@field endpoint string endpoint_inst
---@field model string model_inst
---@field n_prefix integer
---@field n_suffix integer
---@field keymap_trigger string visual mode
---@field keymap_accept string
---@field keymap_cancel string
---@field keymap_rerun string
---@field keymap_continue string
---@field keymap_defaults table<string, string> each keymap_* field's default

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
---@field cached boolean from a cache, not a reply to its keystroke
---@field growing boolean the start of an answer still coming (no lines: hide what was drawn)

---A shown hint: the render plan plus what Lua adds when it draws it.
---@class llama_nvim.Hint: llama_nvim.RenderPlan
---@field win integer the window it is drawn in
---@field inline string the first line as displayed
---@field virt_lines table[] the other lines as displayed, as extmark virt_lines
---@field continued boolean|nil what an earlier partial accept left of a suggestion

---A request the user waits for was sent (messages.py's RequestStarted).
---@class llama_nvim.RequestStarted
---@field id integer numbers the requests of the session

---That request ended (messages.py's RequestDone).
---@class llama_nvim.RequestDone
---@field id integer
---@field status 'ok'|'error'|'cancelled'
---@field ms integer from sending to the end
---@field error string what went wrong when status is 'error', else ''

---What the plugin is doing (require('llama_nvim').state(), g:llama_nvim_state).
---@alias llama_nvim.StateName 'idle'|'waiting'|'shown'|'error'

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
---@field ring_chunk_lines integer lines per chunk the editor gathers
---@field ring_scope integer
---@field hide_during_completion boolean
---@field inst llama_nvim.InstOptions instruction editing

---One line of :checkhealth from the Python host (LlamaNvimHealth()).
---@class llama_nvim.HealthItem
---@field [1] 'start'|'ok'|'info'|'warn'|'error'
---@field [2] string

return {}
