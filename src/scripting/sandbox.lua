-- The sandbox of one Lua VM, run once when the VM is made, with the real
-- globals still open. It builds what scripts see: read-only proxies of the
-- libraries and of the `redis` table, a globals table that refuses reads
-- of undeclared names and every write, Redis's error handler, and the
-- runners the engine calls. Its chunk name is "@__sandbox", so the error
-- handler can skip its frames when it locates the user's line.
local natives, mode = ...

local G = _G
local rawset, rawget, setmetatable, getmetatable = rawset, rawget, setmetatable, getmetatable
local error, type, tostring, select, unpack = error, type, tostring, select, unpack
local pcall, xpcall = pcall, xpcall
local dbg = debug
local SANDBOX = "@__sandbox"

-- Tables scripts may not change (Redis's patched Lua marks them read-only).
local readonly = setmetatable({}, { __mode = "k" })

local function refuse_write()
    error("Attempt to modify a readonly table", 2)
end

-- A read-only view of `t`: reads go through, writes fail.
local function protect(t)
    local proxy, mt = {}, { __index = t, __newindex = refuse_write }
    setmetatable(proxy, mt)
    readonly[proxy] = true
    readonly[mt] = true
    return proxy
end

-- Redis's Lua refuses rawset and setmetatable on read-only tables too.
local function safe_setmetatable(t, mt)
    if readonly[t] then
        error("Attempt to modify a readonly table", 2)
    end
    return setmetatable(t, mt)
end

local function safe_rawset(t, k, v)
    if readonly[t] then
        error("Attempt to modify a readonly table", 2)
    end
    return rawset(t, k, v)
end

local function safe_getmetatable(t)
    local mt = getmetatable(t)
    if readonly[t] and type(mt) == "table" then
        return protect(mt)
    end
    return mt
end

-- Loading precompiled chunks is refused: they can break the VM.
local loadstring_orig, load_orig = loadstring, load
local function safe_loadstring(s, name)
    if type(s) == "string" and s:sub(1, 1) == "\27" then
        return nil, "binary chunks are not allowed"
    end
    return loadstring_orig(s, name)
end
local function safe_load(f, name)
    local first = true
    local function reader()
        local piece = f()
        if first and type(piece) == "string" and piece:sub(1, 1) == "\27" then
            error("binary chunks are not allowed")
        end
        first = false
        return piece
    end
    return load_orig(reader, name)
end

-- `pcall` hands a Redis error table's text to the script, as Redis's does.
local function redis_pcall(f, ...)
    local result = { pcall(f, ...) }
    if not result[1] and type(result[2]) == "table" and type(result[2].err) == "string" then
        return false, result[2].err
    end
    return unpack(result, 1, table.maxn(result))
end

-- The `redis` API over the Rust natives. A native answers (true, value)
-- or (false, error table); `natives.raising` wraps one in a C function that
-- raises the error table, so the user's frame stays visible to the error
-- handler even when the script tail-calls it.
local raising = natives.raising

local redis_api = {
    call = natives.packed(natives.call, true),
    pcall = natives.packed(natives.call, false),
    setresp = raising(natives.setresp),
    set_repl = raising(natives.set_repl),
    log = raising(natives.log),
    sha1hex = raising(natives.sha1hex),
    error_reply = natives.error_reply,
    status_reply = natives.status_reply,
    acl_check_cmd = raising(natives.acl_check_cmd),
    breakpoint = function() return false end,
    debug = function() end,
    replicate_commands = function() return true end,
    REDIS_VERSION = natives.version,
    REDIS_VERSION_NUM = natives.version_num,
    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
    REPL_NONE = 0, REPL_AOF = 1, REPL_SLAVE = 2, REPL_REPLICA = 2, REPL_ALL = 3,
}

local math_api = {}
for k, v in pairs(math) do math_api[k] = v end
math_api.random = natives.random
math_api.randomseed = natives.randomseed

-- What scripts see as globals (besides KEYS and ARGV in EVAL).
local visible = {
    assert = assert, collectgarbage = collectgarbage, error = error,
    gcinfo = gcinfo, getfenv = getfenv, getmetatable = safe_getmetatable,
    ipairs = ipairs, load = safe_load, loadstring = safe_loadstring,
    next = next, pairs = pairs, pcall = redis_pcall, rawequal = rawequal,
    rawget = rawget, rawset = safe_rawset, select = select, setfenv = setfenv,
    setmetatable = safe_setmetatable, tonumber = tonumber, tostring = tostring,
    type = type, unpack = unpack, xpcall = xpcall, newproxy = newproxy,
    _VERSION = _VERSION,
    coroutine = protect(coroutine), string = protect(string),
    table = protect(table), math = protect(math_api),
    bit = protect(natives.bit), cjson = protect(natives.cjson),
    redis = protect(redis_api),
}
if natives.cmsgpack then visible.cmsgpack = protect(natives.cmsgpack) end
if natives.struct then visible.struct = protect(natives.struct) end

local function missing_global(_, name)
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 0)
end
setmetatable(visible, { __index = missing_global })

-- The environment: empty, reads fall through to `phase` (the runtime
-- globals, or the load API while FUNCTION LOAD runs a library).
local env = {}
local env_mt = { __index = visible, __newindex = refuse_write }
setmetatable(env, env_mt)
readonly[env] = true
readonly[env_mt] = true
visible._G = env

-- Redis's error handler: a string error becomes {err='ERR ...'}, and the
-- error gets the source and line of the script frame that raised it.
local function handler(err)
    local level = 2
    local i = dbg.getinfo(level, "nSl")
    if i and i.what == "C" then
        level = level + 1
        i = dbg.getinfo(level, "nSl")
    end
    while i and i.source == SANDBOX do
        level = level + 1
        i = dbg.getinfo(level, "nSl")
    end
    if type(err) ~= "table" then
        err = { err = "ERR " .. tostring(err) }
    end
    if i then
        err["source"] = i.source
        err["line"] = i.currentline
    end
    return err
end

local runners = {}

-- EVAL: KEYS and ARGV are globals for the run.
function runners.eval(f, keys, args)
    rawset(visible, "KEYS", keys)
    rawset(visible, "ARGV", args)
    return xpcall(f, handler)
end

-- FCALL: the callback gets the keys and arguments as parameters.
function runners.fcall(f, keys, args)
    return xpcall(function() return f(keys, args) end, handler)
end

-- FUNCTION LOAD: the library's chunk runs with only the load API visible.
function runners.load(chunk, load_api)
    setmetatable(load_api, { __index = missing_global })
    local api = { redis = protect(load_api) }
    setmetatable(api, { __index = missing_global })
    rawset(env_mt, "__index", api)
    local result = { xpcall(chunk, handler) }
    rawset(env_mt, "__index", visible)
    return unpack(result, 1, 2)
end

-- Every chunk scripts give runs with this environment.
function runners.bind(f)
    setfenv(f, env)
    return f
end

-- The debug library is not for scripts.
G.debug = nil
return runners
