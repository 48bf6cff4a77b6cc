-- The sandbox every script and function runs in, built once per Lua VM (chunk "=redis").
-- Arguments: the real globals, the internal table of Rust primitives (rt), and the library
-- tables to publish. Returns the read-only environment user code sees.
local G, rt = ...
rt.rawpcall = pcall
local error, type, tostring, select, rawget, setmetatable, setfenv, pcall, xpcall =
  error, type, tostring, select, rawget, setmetatable, setfenv, pcall, xpcall
local rawloadstring, concat = loadstring, table.concat

-- No host access: what Redis 7.0 leaves out of its scripting globals.
for _, name in ipairs({'print', 'getfenv', 'setfenv', 'newproxy', 'module', 'require',
                       'dofile', 'loadfile', 'debug', 'os', 'io', 'package'}) do
  G[name] = nil
end

local function readonly(t, name)
  return setmetatable({}, {
    __index = function(_, k)
      local v = t[k]
      if v == nil and name == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
      end
      return v
    end,
    __newindex = function() error("Attempt to modify a readonly table", 2) end,
    __metatable = false,
  })
end

local env

-- Compiled text only: Lua 5.1 does not verify bytecode, so loading it could escape.
G.loadstring = function(s, name)
  if type(s) == 'string' and s:byte(1) == 27 then
    return nil, 'binary chunks are not allowed'
  end
  local f, e = rawloadstring(s, name)
  if f then setfenv(f, env) end
  return f, e
end
G.load = function(reader, name)
  if type(reader) ~= 'function' then return G.loadstring(reader, name) end
  local parts = {}
  while true do
    local p = reader()
    if p == nil or p == '' then break end
    parts[#parts + 1] = p
  end
  return G.loadstring(concat(parts), name)
end

-- Redis 7: pcall hands back the message of an error table, as older versions did.
local function unwrap(ok, ...)
  if not ok then
    local e = ...
    if type(e) == 'table' and type(rawget(e, 'err')) == 'string' then
      return false, rawget(e, 'err')
    end
    if type(e) == 'userdata' then
      local text, killed = rt.errtext(e)
      -- SCRIPT KILL and FUNCTION KILL cannot be caught.
      if killed then error(e, 0) end
      if text then return false, text end
    end
  end
  return ok, ...
end
G.pcall = function(...) return unwrap(pcall(...)) end
local rawxpcall = xpcall
G.xpcall = function(f, h)
  return rawxpcall(f, function(e)
    if type(e) == 'userdata' and select(2, rt.errtext(e)) then error(e, 0) end
    return h(e)
  end)
end

local perr = rt.perr
local redis = {}
-- A Rust function: called in tail position it keeps the caller's frame (errors name the line).
redis.call = rt.call
redis.pcall = function(...)
  local _, r = rt.exec(false, ...)
  return r
end
-- Rust functions (C functions keep the caller's frame for error lines).
redis.sha1hex = rt.sha1hex
redis.error_reply = function(...)
  local e = ...
  if select('#', ...) ~= 1 or type(e) ~= 'string' then
    return perr('wrong number or type of arguments')
  end
  if e:sub(1, 1) ~= '-' then e = '-' .. e end
  return perr(e)
end
redis.status_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return perr('wrong number or type of arguments')
  end
  return {ok = s}
end
redis.log = rt.log
redis.setresp = rt.setresp
redis.set_repl = rt.set_repl
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = function(...)
  if select('#', ...) == 0 then
    error(perr('Please specify at least one argument for this redis lib call'))
  end
  if not rt.known(...) then error(perr('Invalid command passed to redis.acl_check_cmd()')) end
  return true
end
redis.register_function = function(...)
  local e = rt.register(...)
  if e then error(e) end
end
redis.REDIS_VERSION = '7.0.15'
redis.REDIS_VERSION_NUM = 458767
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
G.redis = redis

-- Library tables are read-only too, so one script cannot break the next.
for _, name in ipairs({'redis', 'string', 'table', 'math', 'coroutine', 'bit', 'cjson',
                       'cmsgpack', 'struct'}) do
  if G[name] ~= nil then G[name] = readonly(G[name], name) end
end

env = readonly(G)
G._G = env

-- Run f(...) under Redis' error handler (it adds where the error happened).
rt.run = function(f, keys, args)
  return xpcall(function() return f(keys, args) end, rt.errh)
end
return env
