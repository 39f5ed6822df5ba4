//! The Lua engine: two Lua 5.1 VMs (one for EVAL scripts, one for function
//! libraries, as Redis keeps them apart), their sandbox (`sandbox.lua`:
//! read-only globals and libraries with Redis's error texts), the script
//! cache of EVAL/SCRIPT LOAD, the function libraries of FUNCTION LOAD, and
//! the run of one script or function. Scripts reach commands only through
//! a [`Host`] the command layer gives each run, so this module knows no
//! store, socket or peer.
//!
//! Why `mlua` with a vendored Lua 5.1: Redis embeds Lua 5.1, and scripts
//! depend on 5.1's semantics (`unpack`, `setfenv`, `loadstring`, number
//! formatting); `mlua` is the maintained binding that builds that exact
//! version from source (no system library needed) and offers hooks (for
//! SCRIPT KILL and time limits), memory limits and registry handles.

pub mod convert;
mod libs;
mod msgpack;
mod structlib;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use mlua::{
    Function, HookTriggers, Lua, LuaOptions, MultiValue, RegistryKey, StdLib, Table, Value, VmState,
};

use crate::protocol::Reply;

/// `redis.REDIS_VERSION` and its number (`0x00MMmmpp`).
pub const REDIS_VERSION: &str = "7.0.15";
pub const REDIS_VERSION_NUM: i64 = 0x0007_000f;

pub const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// Most memory one VM may use (a script that allocates more fails with
/// Lua's "not enough memory" instead of growing the node).
const VM_MEMORY_LIMIT: usize = 1 << 30;

/// Script flags, from a shebang (`#!lua flags=...`) or `register_function`.
pub mod flags {
    pub const NO_WRITES: u32 = 1 << 0;
    pub const ALLOW_OOM: u32 = 1 << 1;
    pub const ALLOW_STALE: u32 = 1 << 2;
    pub const NO_CLUSTER: u32 = 1 << 3;
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 4;
    /// An EVAL script without a shebang: Redis's compatibility mode.
    pub const EVAL_COMPAT: u32 = 1 << 5;

    pub const NAMES: &[(u32, &str)] = &[
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];

    pub fn by_name(name: &str) -> Option<u32> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }
}

/// What a running script calls back into: the command layer.
pub trait Host {
    /// Runs one command for the script and returns its reply; a refusal
    /// (unknown command, not allowed from scripts…) is an error reply with
    /// its full text (`ERR …`).
    /// `resp3`: the protocol the script chose (`redis.setresp`).
    fn call(&mut self, argv: Vec<Bytes>, resp3: bool) -> Reply;
    /// `redis.log`.
    fn log(&mut self, level: i64, message: &str);
    /// What the VM's hook calls once the run passes
    /// `busy-reply-threshold`: it lets other clients be served (BUSY,
    /// SCRIPT KILL) while the run goes on, and answers whether they now
    /// can. When they cannot, a run that has not written is stopped there
    /// (nobody could reach SCRIPT KILL for it).
    fn timed_out(&self) -> fn() -> bool;
}

/// What other clients can see of the script that runs (BUSY, SCRIPT KILL,
/// FUNCTION STATS, INFO), readable without the engine's lock.
#[derive(Default)]
pub struct RunStatus {
    pub running: AtomicBool,
    pub is_eval: AtomicBool,
    /// The run passed `busy-reply-threshold`: others get BUSY.
    pub timed_out: AtomicBool,
    pub kill_requested: AtomicBool,
    /// cordis itself stopped the run at the threshold (see
    /// [`install_hook`]), rather than a SCRIPT KILL.
    pub stopped_at_threshold: AtomicBool,
    /// The script wrote: SCRIPT KILL refuses (UNKILLABLE).
    pub wrote: AtomicBool,
    pub started_ms: AtomicU64,
    /// The function (or script SHA) running and the command that called
    /// it, for FUNCTION STATS while it runs.
    pub current: parking_lot::Mutex<Option<(String, Vec<Bytes>)>>,
    /// `busy-reply-threshold` in ms for the current run (0: never).
    pub threshold_ms: AtomicU64,
    /// Memory of the EVAL VM and the function VM, as of the last run.
    pub eval_memory: AtomicUsize,
    pub function_memory: AtomicUsize,
    pub cached_scripts: AtomicUsize,
    pub scripts_memory: AtomicUsize,
    pub function_libraries: AtomicUsize,
    pub function_count: AtomicUsize,
    pub functions_memory: AtomicUsize,
}

/// The state of one run, reached by the natives through the VM's app data.
struct Run {
    /// The host for this run only; valid while [`Vm::run_guarded`] holds
    /// the run (the pointer is cleared before that returns).
    host: *mut (dyn Host + 'static),
    resp3: bool,
}

// SAFETY: a `Run` lives in a VM's app data only for the duration of one
// synchronous run on the thread that owns the `&mut dyn Host`; no other
// thread reads it (the VM is behind the engine's lock).
unsafe impl Send for Run {}

/// The functions registered while a library loads.
#[derive(Default)]
struct Registering {
    /// FUNCTION LOAD is running the library's code (a callback that kept
    /// `redis.register_function` cannot register later, at FCALL).
    active: bool,
    functions: Vec<(String, RegisteredFunction)>,
    error: Option<String>,
}

struct RegisteredFunction {
    callback: RegistryKey,
    description: Option<String>,
    flags: u32,
}

/// One Lua VM and the runners its sandbox returned.
struct Vm {
    lua: Lua,
    run_eval: Function,
    run_fcall: Function,
    run_load: Function,
    bind: Function,
}

/// A cached EVAL script.
struct CachedScript {
    body: Bytes,
    flags: u32,
    function: RegistryKey,
}

/// A loaded function library.
pub struct Library {
    pub name: String,
    pub code: Bytes,
    functions: BTreeMap<String, LibraryFunction>,
}

struct LibraryFunction {
    callback: RegistryKey,
    description: Option<String>,
    flags: u32,
}

/// A function of a library, as FUNCTION LIST shows it.
pub struct FunctionInfo<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub flags: u32,
}

impl Library {
    pub fn functions(&self) -> impl Iterator<Item = FunctionInfo<'_>> {
        self.functions.iter().map(|(name, f)| FunctionInfo {
            name,
            description: f.description.as_deref(),
            flags: f.flags,
        })
    }
}

/// What identifies the code to run.
pub enum Target<'a> {
    /// An EVAL script by its lower-case SHA1.
    Script(&'a str),
    /// A function by name.
    Function(&'a str),
}

/// The engine: both VMs, the script cache and the function libraries.
pub struct Engine {
    eval: Vm,
    functions_vm: Vm,
    scripts: HashMap<String, CachedScript>,
    libraries: BTreeMap<String, Library>,
    /// Function name, lower-cased (Redis's function names are
    /// case-insensitive) → its library.
    function_index: HashMap<String, String>,
    /// Redis's `redisLrand48` state (math.random).
    rand_state: std::sync::Arc<parking_lot::Mutex<u64>>,
    /// Runs since the last explicit garbage-collection step.
    runs_since_gc: u32,
    /// The generation of the replicated library set `libraries` was last
    /// brought in line with (see [`Engine::follow`]).
    followed: u64,
}

/// Every this many runs, the VM that ran takes up to this many
/// garbage-collection steps (as Redis steps its VM periodically), so what scripts leave behind is freed
/// even when Lua's own pacing would wait.
const GC_PERIOD: u32 = 50;

/// The lower-case SHA1 of a script body, as Redis names scripts.
pub fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// A script's shebang flags and the length of the shebang line (which is
/// cut from the code, its line feed kept so line numbers stay).
pub fn parse_shebang(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((flags::EVAL_COMPAT, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("Invalid script shebang".to_owned());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_ascii_whitespace();
    let Some(engine) = parts.next() else {
        return Err("Invalid engine in script shebang".to_owned());
    };
    if engine != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {engine}"));
    }
    let mut script_flags = 0;
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {part}"));
        };
        for flag in list.split(',') {
            if flag.is_empty() && list.is_empty() {
                continue;
            }
            match flags::by_name(flag) {
                Some(f) => script_flags |= f,
                None => return Err(format!("Unexpected flag in script shebang: {flag}")),
            }
        }
    }
    Ok((script_flags, end))
}

impl Vm {
    fn new(mode: &str, rand_state: std::sync::Arc<parking_lot::Mutex<u64>>) -> mlua::Result<Vm> {
        // SAFETY: `debug` is loaded only so the sandbox's error handler can
        // keep `debug.getinfo` in a local; the sandbox removes the global
        // before any script runs (as Redis does), and loads no C modules.
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                LuaOptions::default(),
            )
        };
        let natives = natives(&lua, rand_state)?;
        let runners: Table = lua
            .load(include_str!("sandbox.lua"))
            .set_name("@__sandbox")
            .call((natives, mode))?;
        lua.set_memory_limit(VM_MEMORY_LIMIT)?;
        Ok(Vm {
            run_eval: runners.get("eval")?,
            run_fcall: runners.get("fcall")?,
            run_load: runners.get("load")?,
            bind: runners.get("bind")?,
            lua,
        })
    }

    /// Compiles `code` under chunk name `name` with the sandbox's
    /// environment.
    fn compile(&self, code: &[u8], name: &str) -> Result<Function, String> {
        let f = self
            .lua
            .load(code)
            .set_name(name)
            .into_function()
            .map_err(|e| lua_error_message(&e))?;
        self.bind.call::<Function>(f).map_err(|e| e.to_string())
    }

    /// Runs `runner(f, keys, args)` with `host` reachable by the natives and
    /// the kill/time-limit hook set; returns xpcall's results.
    fn run_guarded(
        &self,
        host: &mut dyn Host,
        status: &RunStatus,
        runner: &Function,
        f: &Function,
        keys: &[Bytes],
        args: &[Bytes],
    ) -> mlua::Result<(bool, Value, bool)> {
        let keys = byte_array(&self.lua, keys)?;
        let args = byte_array(&self.lua, args)?;
        // SAFETY: the pointer's lifetime is erased only for the duration of
        // this call; `Run` is removed below, before `host` can go away.
        let on_timeout = host.timed_out();
        let host: *mut (dyn Host + '_) = host;
        let host: *mut (dyn Host + 'static) = unsafe { std::mem::transmute(host) };
        self.lua.set_app_data(Run { host, resp3: false });
        install_hook(&self.lua, status, on_timeout);
        let result = runner.call::<(bool, Value)>((f.clone(), keys, args));
        self.lua.remove_hook();
        let run = self.lua.remove_app_data::<Run>();
        let resp3 = run.is_some_and(|r| r.resp3);
        result.map(|(ok, v)| (ok, v, resp3))
    }
}

/// The count hook: marks the run timed out past the threshold and stops it
/// when SCRIPT KILL asked. Once killed it fires on every line, so the
/// script cannot catch the error with pcall and go on.
fn install_hook(lua: &Lua, status: &RunStatus, on_timeout: fn() -> bool) {
    let started = Instant::now();
    let threshold = status.threshold_ms.load(Ordering::Relaxed);
    // The hook needs a 'static view of the status: share what it reads.
    let flags = status as *const RunStatus as usize;
    let _ = lua.set_hook(
        HookTriggers::new().every_nth_instruction(100_000),
        move |lua, _| {
            // SAFETY: the status outlives the run (it lives in the server
            // state, and the hook is removed when the run ends).
            let status = unsafe { &*(flags as *const RunStatus) };
            if threshold > 0
                && !status.timed_out.load(Ordering::Relaxed)
                && started.elapsed().as_millis() as u64 >= threshold
            {
                status.timed_out.store(true, Ordering::Release);
                tracing::warn!("Slow script detected: still in execution after {} milliseconds. You can try killing the script using the SCRIPT KILL or FUNCTION KILL command.", started.elapsed().as_millis());
                // Others are answered BUSY from now on, and may SCRIPT
                // KILL. Where they cannot be served while the run goes on,
                // a script that has not written is stopped here instead
                // of holding the node forever; one that wrote runs on, as
                // Redis's would.
                if !on_timeout() && !status.wrote.load(Ordering::Acquire) {
                    status.stopped_at_threshold.store(true, Ordering::Release);
                    status.kill_requested.store(true, Ordering::Release);
                }
            }
            if status.kill_requested.load(Ordering::Acquire) {
                let _ = lua.set_hook(HookTriggers::EVERY_LINE, |_, _| {
                    Err(mlua::Error::RuntimeError(KILLED.to_owned()))
                });
                return Err(mlua::Error::RuntimeError(KILLED.to_owned()));
            }
            Ok(VmState::Continue)
        },
    );
}

/// Wall-clock milliseconds (FUNCTION STATS's `duration_ms` is measured
/// from the run's start in these).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

const KILLED: &str = "Script killed by user with SCRIPT KILL...";

/// Why cordis stopped a read-only script at `busy-reply-threshold`.
const STOPPED_AT_THRESHOLD: &str = "Script stopped by cordis at busy-reply-threshold: cordis cannot yet answer BUSY to other clients while a script runs, so SCRIPT KILL could not reach it";

fn byte_array(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(item)?)?;
    }
    Ok(t)
}

/// The message of a compile error, without mlua's decoration.
fn lua_error_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(message) => message.clone(),
        mlua::Error::MemoryError(message) => message.clone(),
        other => other.to_string(),
    }
}

/// Runs `f` with the current run's host, or answers the error table Redis
/// gives outside a script invocation.
fn with_host<R>(lua: &Lua, f: impl FnOnce(&mut dyn Host, &mut Run) -> R) -> Option<R> {
    let mut run = lua.app_data_mut::<Run>()?;
    let host = run.host;
    // SAFETY: see `Run::host`.
    Some(f(unsafe { &mut *host }, &mut run))
}

fn fail(lua: &Lua, text: &str) -> mlua::Result<(bool, Value)> {
    Ok((
        false,
        Value::Table(convert::error_table(lua, text.as_bytes())?),
    ))
}

/// The Rust side of the `redis` API, `math.random` and the extra libraries.
fn natives(lua: &Lua, rand_state: std::sync::Arc<parking_lot::Mutex<u64>>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "call",
        // Takes its arguments packed in a table (with their count), by
        // [`packed`]: a script may pass thousands (`unpack` of a big
        // table), more than a callback's own stack checks allow.
        lua.create_function(|lua, (packed, n): (Table, i64)| {
            if n <= 0 {
                return fail(
                    lua,
                    "ERR Please specify at least one argument for this redis lib call",
                );
            }
            let mut argv = Vec::with_capacity(n as usize);
            for i in 1..=n {
                match packed.raw_get::<Value>(i)? {
                    Value::Number(n) => argv.push(convert::number_arg(n)),
                    Value::Integer(n) => argv.push(Bytes::from(n.to_string())),
                    Value::String(s) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
                    _ => {
                        return fail(
                            lua,
                            "ERR Lua redis lib command arguments must be strings or integers",
                        )
                    }
                }
            }
            let outcome = with_host(lua, |host, run| (host.call(argv, run.resp3), run.resp3));
            let Some((reply, resp3)) = outcome else {
                return fail(
                    lua,
                    "ERR redis.call/pcall can only be called inside a script invocation",
                );
            };
            match &reply {
                Reply::Error(text) => Ok((
                    false,
                    Value::Table(convert::command_error_table(lua, text)?),
                )),
                other => Ok((true, convert::reply_to_lua(lua, other, resp3)?)),
            }
        })?,
    )?;
    t.set(
        "setresp",
        lua.create_function(|lua, args: MultiValue| {
            if lua.app_data_ref::<Run>().is_none() {
                return fail(
                    lua,
                    "ERR redis.setresp can only be called inside a script invocation",
                );
            }
            if args.len() != 1 {
                return fail(lua, "ERR redis.setresp() requires one argument.");
            }
            let resp = lua_number(&args[0]).unwrap_or(0.0) as i64;
            if resp != 2 && resp != 3 {
                return fail(lua, "ERR RESP version must be 2 or 3.");
            }
            if let Some(mut run) = lua.app_data_mut::<Run>() {
                run.resp3 = resp == 3;
            }
            Ok((true, Value::Nil))
        })?,
    )?;
    t.set(
        "set_repl",
        lua.create_function(|lua, args: MultiValue| {
            if lua.app_data_ref::<Run>().is_none() {
                return fail(lua, "ERR redis.set_repl can only be called inside a script invocation");
            }
            if args.len() != 1 {
                return fail(lua, "ERR redis.set_repl() requires two arguments.");
            }
            let flags = lua_number(&args[0]).unwrap_or(0.0) as i64;
            if flags & !3 != 0 {
                return fail(
                    lua,
                    "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                );
            }
            // cordis always replicates a script's effects, whatever it asks.
            Ok((true, Value::Nil))
        })?,
    )?;
    t.set(
        "log",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() < 2 {
                return fail(lua, "ERR redis.log() requires two arguments or more.");
            }
            let Some(level) = lua_number(&args[0]) else {
                return fail(lua, "ERR First argument must be a number (log level).");
            };
            let level = level as i64;
            if !(0..=3).contains(&level) {
                return fail(lua, "ERR Invalid debug level.");
            }
            let mut message = String::new();
            for (i, arg) in args.iter().skip(1).enumerate() {
                let text = match arg {
                    Value::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
                    Value::Number(n) => Some(convert::format_g(*n, 14)),
                    Value::Integer(n) => Some(n.to_string()),
                    _ => None,
                };
                if let Some(text) = text {
                    if i != 0 {
                        message.push(' ');
                    }
                    message.push_str(&text);
                }
            }
            let _ = with_host(lua, |host, _| host.log(level, &message));
            if lua.app_data_ref::<Run>().is_none() {
                tracing::info!(target: "lua", "{message}");
            }
            Ok((true, Value::Nil))
        })?,
    )?;
    t.set(
        "sha1hex",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return fail(lua, "ERR wrong number of arguments");
            }
            let bytes: Vec<u8> = match &args[0] {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Number(n) => convert::format_g(*n, 14).into_bytes(),
                Value::Integer(n) => n.to_string().into_bytes(),
                _ => Vec::new(),
            };
            Ok((true, Value::String(lua.create_string(sha1_hex(&bytes))?)))
        })?,
    )?;
    t.set(
        "error_reply",
        lua.create_function(|lua, args: MultiValue| {
            let text = match (args.len(), args.front()) {
                (1, Some(Value::String(s))) => s.as_bytes().to_vec(),
                _ => {
                    return Ok(Value::Table(convert::error_table(
                        lua,
                        b"ERR wrong number or type of arguments",
                    )?))
                }
            };
            let bare = text.strip_prefix(b"-").unwrap_or(&text);
            Ok(Value::Table(convert::error_table(lua, bare)?))
        })?,
    )?;
    t.set(
        "status_reply",
        lua.create_function(|lua, args: MultiValue| match (args.len(), args.front()) {
            (1, Some(Value::String(s))) => {
                let t = lua.create_table()?;
                t.raw_set("ok", s.clone())?;
                Ok(Value::Table(t))
            }
            _ => Ok(Value::Table(convert::error_table(
                lua,
                b"ERR wrong number or type of arguments",
            )?)),
        })?,
    )?;
    t.set(
        "acl_check_cmd",
        lua.create_function(|lua, args: MultiValue| {
            if lua.app_data_ref::<Run>().is_none() {
                return fail(
                    lua,
                    "ERR redis.acl_check_cmd can only be called inside a script invocation",
                );
            }
            let Some(Value::String(name)) = args.front() else {
                return fail(
                    lua,
                    "ERR Please specify at least one argument for this redis lib call",
                );
            };
            // No ACL users in cordis: every known command is permitted.
            let known = crate::commands::lookup(&name.as_bytes()).is_some();
            if !known {
                return fail(lua, "ERR Invalid command passed to redis.acl_check_cmd()");
            }
            Ok((true, Value::Boolean(true)))
        })?,
    )?;
    t.set("version", REDIS_VERSION)?;
    t.set("version_num", REDIS_VERSION_NUM)?;
    let state = rand_state.clone();
    t.set(
        "random",
        lua.create_function(move |_, args: MultiValue| {
            let r = {
                let mut x = state.lock();
                *x = (x.wrapping_mul(0x5DEE_CE66D).wrapping_add(0xB)) & ((1 << 48) - 1);
                ((*x >> 17) as i64 % i32::MAX as i64) as f64 / i32::MAX as f64
            };
            let int = |v: &Value, pos: usize| -> mlua::Result<i64> {
                lua_number(v).map(|n| n as i64).ok_or_else(|| {
                    mlua::Error::RuntimeError(format!(
                        "bad argument #{pos} to 'random' (number expected)"
                    ))
                })
            };
            match args.len() {
                0 => Ok(r),
                1 => {
                    let u = int(&args[0], 1)?;
                    if u < 1 {
                        return Err(mlua::Error::RuntimeError(
                            "bad argument #1 to 'random' (interval is empty)".into(),
                        ));
                    }
                    Ok((r * u as f64).floor() + 1.0)
                }
                2 => {
                    let (l, u) = (int(&args[0], 1)?, int(&args[1], 2)?);
                    if l > u {
                        return Err(mlua::Error::RuntimeError(
                            "bad argument #2 to 'random' (interval is empty)".into(),
                        ));
                    }
                    Ok((r * (u - l + 1) as f64).floor() + l as f64)
                }
                _ => Err(mlua::Error::RuntimeError(
                    "wrong number of arguments".into(),
                )),
            }
        })?,
    )?;
    let state = rand_state;
    t.set(
        "randomseed",
        lua.create_function(move |_, seed: Value| {
            let seed = lua_number(&seed).unwrap_or(0.0) as i32 as i64 as u64;
            *state.lock() = ((seed << 16) | 0x330E) & ((1 << 48) - 1);
            Ok(())
        })?,
    )?;
    t.set(
        "raising",
        lua.create_function(|lua, native: Function| raising(lua, native))?,
    )?;
    t.set(
        "packed",
        lua.create_function(|lua, (native, raise): (Function, bool)| packed(lua, native, raise))?,
    )?;
    t.set("bit", libs::bit(lua)?)?;
    t.set("cjson", libs::cjson(lua)?)?;
    t.set("cmsgpack", msgpack::cmsgpack(lua)?)?;
    t.set("struct", structlib::structlib(lua)?)?;
    Ok(t)
}

/// Wraps a native that answers `(ok, value)` in a C function that returns
/// `value` or raises it as the error. Being a C function, it keeps the
/// calling script's frame on the stack (Lua 5.1 does not tail-call C), so
/// the error handler finds the script's line as Redis's does.
fn raising(lua: &Lua, native: Function) -> mlua::Result<Function> {
    unsafe extern "C-unwind" fn trampoline(
        state: *mut mlua::ffi::lua_State,
    ) -> std::os::raw::c_int {
        use mlua::ffi;
        // SAFETY: called by Lua with the native as upvalue 1.
        unsafe {
            let n = ffi::lua_gettop(state);
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
            ffi::lua_insert(state, 1);
            ffi::lua_call(state, n, 2);
            if ffi::lua_toboolean(state, -2) != 0 {
                return 1;
            }
            ffi::lua_error(state)
        }
    }
    // SAFETY: pushes one closure over the native (the only argument on
    // the stack) and leaves it as the result.
    unsafe {
        lua.exec_raw(native, |state| {
            mlua::ffi::lua_pushcclosure(state, trampoline, 1);
        })
    }
}

/// Wraps a native that takes `(args table, count)` and answers
/// `(ok, value)` in a C function taking the arguments themselves: it packs
/// them into a table on its own stack (which holds as many as Lua passes
/// any C function), then returns `value`, or (`raise`) raises it when not
/// ok, keeping the caller's frame visible as [`raising`] does.
fn packed(lua: &Lua, native: Function, raise: bool) -> mlua::Result<Function> {
    unsafe extern "C-unwind" fn trampoline(
        state: *mut mlua::ffi::lua_State,
    ) -> std::os::raw::c_int {
        use mlua::ffi;
        // SAFETY: called by Lua with the native as upvalue 1 and the
        // raise flag as upvalue 2; Lua guarantees LUA_MINSTACK free slots
        // above the arguments, and each step below uses at most three.
        unsafe {
            let n = ffi::lua_gettop(state);
            ffi::lua_createtable(state, n, 0);
            ffi::lua_insert(state, 1);
            for i in (1..=n).rev() {
                ffi::lua_rawseti(state, 1, i as ffi::lua_Integer);
            }
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
            ffi::lua_insert(state, 1);
            ffi::lua_pushinteger(state, n as ffi::lua_Integer);
            ffi::lua_call(state, 2, 2);
            if ffi::lua_toboolean(state, ffi::lua_upvalueindex(2)) == 0
                || ffi::lua_toboolean(state, -2) != 0
            {
                return 1;
            }
            ffi::lua_error(state)
        }
    }
    // SAFETY: pushes one closure over the native and the flag (the two
    // values on the stack) and leaves it as the result.
    unsafe {
        lua.exec_raw((native, raise), |state| {
            mlua::ffi::lua_pushcclosure(state, trampoline, 2);
        })
    }
}

fn lua_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        Value::String(s) => std::str::from_utf8(&s.as_bytes()).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// A library's code after its shebang: its name, and the error texts
/// Redis gives for a bad metadata line (split with `sdssplitargs`'s
/// quoting rules, so `name="foo"` names `foo`; the engine is what follows
/// `#!`, checked after the name is found and before it is validated).
pub fn parse_library_metadata(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".to_owned());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("Invalid library metadata".to_owned());
    };
    let line = Bytes::copy_from_slice(&code[..end]);
    let parts = match crate::protocol::request::split_inline_args(&line) {
        Ok(parts) if !parts.is_empty() => parts,
        _ => return Err("Invalid library metadata".to_owned()),
    };
    let engine = String::from_utf8_lossy(&parts[0][2.min(parts[0].len())..]).into_owned();
    let mut name = None;
    for part in &parts[1..] {
        let text = String::from_utf8_lossy(part);
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "Invalid metadata value, name argument was given multiple times".to_owned(),
                );
            }
            name = Some(text[5..].to_owned());
            continue;
        }
        return Err(format!("Invalid metadata value given: {text}"));
    }
    let Some(name) = name else {
        return Err("Library name was not given".to_owned());
    };
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    if !valid_name(&name) {
        return Err(NAME_RULE.to_owned());
    }
    Ok((name, end))
}

const NAME_RULE: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The outcome of one run: the reply, and whether the script was killed.
pub struct RunOutcome {
    pub reply: Reply,
    /// The reply is an error a command the script called answered (or a
    /// refusal of one), already counted in the error statistics then.
    pub error_counted: bool,
}

impl RunOutcome {
    /// An outcome whose reply no command answered (nothing counted yet).
    fn fresh(reply: Reply) -> RunOutcome {
        RunOutcome {
            reply,
            error_counted: false,
        }
    }
}

impl Engine {
    pub fn new() -> Engine {
        let rand_state = std::sync::Arc::new(parking_lot::Mutex::new(0x1234_ABCD_330E));
        Engine {
            eval: Vm::new("eval", rand_state.clone()).expect("the EVAL VM starts"),
            functions_vm: Vm::new("function", rand_state.clone()).expect("the function VM starts"),
            scripts: HashMap::new(),
            libraries: BTreeMap::new(),
            function_index: HashMap::new(),
            rand_state,
            runs_since_gc: 0,
            followed: 0,
        }
    }

    /// Compiles and caches an EVAL script (or finds it cached); returns
    /// its SHA1 and flags.
    pub fn load_script(&mut self, body: &Bytes) -> Result<(String, u32), String> {
        let sha = sha1_hex(body);
        if let Some(script) = self.scripts.get(&sha) {
            return Ok((sha, script.flags));
        }
        let (script_flags, shebang_len) = parse_shebang(body)?;
        let function = self
            .eval
            .compile(&body[shebang_len..], "@user_script")
            .map_err(|e| format!("Error compiling script (new function): {e}"))?;
        let function = self
            .eval
            .lua
            .create_registry_value(function)
            .map_err(|e| e.to_string())?;
        self.scripts.insert(
            sha.clone(),
            CachedScript {
                body: body.clone(),
                flags: script_flags,
                function,
            },
        );
        Ok((sha, script_flags))
    }

    pub fn script_flags(&self, sha: &str) -> Option<u32> {
        self.scripts.get(sha).map(|s| s.flags)
    }

    pub fn script_exists(&self, sha: &str) -> bool {
        self.scripts.contains_key(sha)
    }

    pub fn flush_scripts(&mut self) {
        self.scripts.clear();
        // A fresh VM, as Redis's SCRIPT FLUSH resets the interpreter.
        if let Ok(vm) = Vm::new("eval", self.rand_state.clone()) {
            self.eval = vm;
        }
    }

    /// The flags of a function, with its library's name.
    pub fn function_flags(&self, name: &str) -> Option<u32> {
        self.function(name).map(|f| f.flags)
    }

    /// Runs a cached script or a function with `keys` and `args`, calling
    /// back into `host`. The caller checked the flags already.
    pub fn run(
        &mut self,
        host: &mut dyn Host,
        status: &RunStatus,
        target: Target<'_>,
        keys: &[Bytes],
        args: &[Bytes],
    ) -> RunOutcome {
        let (vm, key, name, is_eval) = match target {
            Target::Script(sha) => match self.scripts.get(sha) {
                Some(script) => (&self.eval, &script.function, sha.to_owned(), true),
                None => return RunOutcome::fresh(Reply::error(NOSCRIPT)),
            },
            Target::Function(name) => {
                let found = self.function(name);
                match found {
                    Some(f) => (&self.functions_vm, &f.callback, name.to_owned(), false),
                    None => return RunOutcome::fresh(Reply::error("ERR Function not found")),
                }
            }
        };
        let function: Function = match vm.lua.registry_value(key) {
            Ok(f) => f,
            Err(e) => return RunOutcome::fresh(Reply::error(format!("ERR {e}"))),
        };
        let runner = if is_eval { &vm.run_eval } else { &vm.run_fcall };
        status.kill_requested.store(false, Ordering::Relaxed);
        status.timed_out.store(false, Ordering::Relaxed);
        status.is_eval.store(is_eval, Ordering::Relaxed);
        status.started_ms.store(unix_ms(), Ordering::Relaxed);
        status.running.store(true, Ordering::Release);
        let result = vm.run_guarded(host, status, runner, &function, keys, args);
        status.running.store(false, Ordering::Release);
        self.runs_since_gc += 1;
        if self.runs_since_gc >= GC_PERIOD {
            self.runs_since_gc = 0;
            for _ in 0..GC_PERIOD {
                if vm.lua.gc_step().unwrap_or(true) {
                    break;
                }
            }
        }
        status.timed_out.store(false, Ordering::Relaxed);
        let killed = status.kill_requested.swap(false, Ordering::AcqRel);
        let stopped = status.stopped_at_threshold.swap(false, Ordering::AcqRel);
        let error_counted = match &result {
            Ok((_, value, _)) => !killed && !stopped && convert::error_counted(value),
            Err(_) => false,
        };
        let reply = match result {
            Ok((false, _, _)) | Err(_) if stopped => Reply::error(format!(
                "ERR {STOPPED_AT_THRESHOLD} ({} ms)",
                status.threshold_ms.load(Ordering::Relaxed)
            )),
            Ok((true, value, resp3)) => convert::lua_to_reply(&value, resp3),
            Ok((false, Value::Table(err), _)) if !killed => script_error(&err, &name),
            Ok((false, other, _)) if !killed => {
                let message = match &other {
                    Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
                    _ => "execution failure".to_owned(),
                };
                Reply::error(format!("ERR Error running script {name}, {:.100}", message))
            }
            Ok((false, _, _)) | Err(_) if killed => Reply::error(format!("ERR {KILLED}")),
            Ok(_) => Reply::error("ERR execution failure"),
            Err(e) => Reply::error(format!(
                "ERR Error running script {name}, {:.100}",
                lua_error_message(&e)
            )),
        };
        self.refresh_memory(status);
        RunOutcome {
            reply,
            error_counted,
        }
    }

    /// Loads a library (FUNCTION LOAD); returns its name.
    pub fn load_library(&mut self, code: Bytes, replace: bool) -> Result<String, String> {
        let (name, shebang_len) = parse_library_metadata(&code)?;
        if !replace && self.libraries.contains_key(&name) {
            return Err(format!("Library '{name}' already exists"));
        }
        let vm = &self.functions_vm;
        let chunk = vm
            .compile(&code[shebang_len..], "@user_function")
            .map_err(|e| format!("Error compiling function: {e}"))?;
        let registering = std::sync::Arc::new(parking_lot::Mutex::new(Registering {
            active: true,
            ..Registering::default()
        }));
        let load_api = load_api(&vm.lua, registering.clone()).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let _ = vm.lua.set_hook(
            HookTriggers::new().every_nth_instruction(100_000),
            move |lua, _| {
                if started.elapsed().as_millis() > 500 {
                    let _ = lua.set_hook(HookTriggers::EVERY_LINE, |_, _| {
                        Err(mlua::Error::RuntimeError("FUNCTION LOAD timeout".into()))
                    });
                    return Err(mlua::Error::RuntimeError("FUNCTION LOAD timeout".into()));
                }
                Ok(VmState::Continue)
            },
        );
        let result = vm.run_load.call::<(bool, Value)>((chunk, load_api));
        vm.lua.remove_hook();
        let registered = std::mem::take(&mut *registering.lock());
        match result {
            Ok((true, _)) => {}
            Ok((false, err)) => {
                let message = match err {
                    Value::Table(t) => t
                        .raw_get::<mlua::LuaString>("err")
                        .map(|s| String::from_utf8_lossy(&s.as_bytes()).into_owned())
                        .unwrap_or_default(),
                    Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
                    _ => String::new(),
                };
                return Err(format!("Error registering functions: {message}"));
            }
            Err(e) => {
                let message = lua_error_message(&e);
                let message = if message.contains("FUNCTION LOAD timeout") {
                    "FUNCTION LOAD timeout".to_owned()
                } else {
                    message
                };
                return Err(format!("Error registering functions: ERR {message}"));
            }
        }
        if let Some(error) = registered.error {
            return Err(format!("Error registering functions: {error}"));
        }
        if registered.functions.is_empty() {
            return Err("No functions registered".to_owned());
        }
        for (function, _) in &registered.functions {
            if let Some(owner) = self.function_index.get(&function.to_ascii_lowercase()) {
                if *owner != name {
                    return Err(format!("Function {function} already exists"));
                }
            }
        }
        if let Some(old) = self.libraries.remove(&name) {
            for function in old.functions.keys() {
                self.function_index.remove(&function.to_ascii_lowercase());
            }
        }
        let mut functions = BTreeMap::new();
        for (function, f) in registered.functions {
            self.function_index
                .insert(function.to_ascii_lowercase(), name.clone());
            functions.insert(
                function,
                LibraryFunction {
                    callback: f.callback,
                    description: f.description,
                    flags: f.flags,
                },
            );
        }
        self.libraries.insert(
            name.clone(),
            Library {
                name: name.clone(),
                code,
                functions,
            },
        );
        Ok(name)
    }

    /// A function by name, in any letter case.
    fn function(&self, name: &str) -> Option<&LibraryFunction> {
        let library = self.function_index.get(&name.to_ascii_lowercase())?;
        let library = self.libraries.get(library)?;
        library.functions.get(name).or_else(|| {
            library
                .functions
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, f)| f)
        })
    }

    pub fn delete_library(&mut self, name: &str) -> bool {
        match self.libraries.remove(name) {
            Some(lib) => {
                for function in lib.functions.keys() {
                    self.function_index.remove(&function.to_ascii_lowercase());
                }
                true
            }
            None => false,
        }
    }

    pub fn flush_libraries(&mut self) {
        self.libraries.clear();
        self.function_index.clear();
        if let Ok(vm) = Vm::new("function", self.rand_state.clone()) {
            self.functions_vm = vm;
        }
    }

    /// Whether the loaded libraries follow generation `generation` of the
    /// replicated set.
    pub fn follows(&self, generation: u64) -> bool {
        self.followed == generation
    }

    /// Makes the loaded libraries those of the replicated set `wanted`
    /// (name and code, in name order) at `generation`. A library whose code
    /// is loaded already is kept as compiled; any other is compiled here.
    /// The outcome depends only on `wanted`, so every node loads the same:
    /// libraries are taken in name order, and one that fails to compile or
    /// registers a function an earlier one has (concurrent loads in two
    /// regions) is left out and logged. It stays in the replicated set.
    pub fn follow<'a>(
        &mut self,
        generation: u64,
        wanted: impl IntoIterator<Item = (&'a str, &'a Bytes)>,
    ) {
        let mut old = std::mem::take(&mut self.libraries);
        self.function_index.clear();
        for (name, code) in wanted {
            match old.remove(name) {
                Some(lib)
                    if lib.code == *code
                        && lib.functions.keys().all(|f| {
                            !self.function_index.contains_key(&f.to_ascii_lowercase())
                        }) =>
                {
                    for function in lib.functions.keys() {
                        self.function_index
                            .insert(function.to_ascii_lowercase(), name.to_owned());
                    }
                    self.libraries.insert(name.to_owned(), lib);
                }
                _ => match self.load_library(code.clone(), false) {
                    Ok(loaded) if loaded == name => {}
                    Ok(loaded) => {
                        self.delete_library(&loaded);
                        tracing::warn!(
                            "replicated function library '{name}' names itself '{loaded}'; not loaded"
                        );
                    }
                    Err(e) => tracing::warn!(
                        "replicated function library '{name}' does not load on this node: {e}"
                    ),
                },
            }
        }
        self.followed = generation;
    }

    pub fn libraries(&self) -> impl Iterator<Item = &Library> {
        self.libraries.values()
    }

    pub fn library(&self, name: &str) -> Option<&Library> {
        self.libraries.get(name)
    }

    /// Updates the figures INFO and FUNCTION STATS read without the lock.
    pub fn refresh_memory(&self, status: &RunStatus) {
        status
            .eval_memory
            .store(self.eval.lua.used_memory(), Ordering::Relaxed);
        status
            .function_memory
            .store(self.functions_vm.lua.used_memory(), Ordering::Relaxed);
        status
            .cached_scripts
            .store(self.scripts.len(), Ordering::Relaxed);
        status.scripts_memory.store(
            self.scripts.values().map(|s| s.body.len() + 40 + 64).sum(),
            Ordering::Relaxed,
        );
        status
            .function_libraries
            .store(self.libraries.len(), Ordering::Relaxed);
        status
            .function_count
            .store(self.function_index.len(), Ordering::Relaxed);
        status.functions_memory.store(
            self.libraries
                .values()
                .map(|l| l.code.len() + l.name.len() + 64)
                .sum(),
            Ordering::Relaxed,
        );
    }
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

/// The reply for a script that raised `err` (a `{err=…, source=…, line=…}`
/// table): `<err> script: <name>, on <source>:<line>.`
fn script_error(err: &Table, name: &str) -> Reply {
    let text = |field: &str| -> Option<String> {
        match err.raw_get::<Value>(field).ok()? {
            Value::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
            Value::Number(n) => Some(convert::format_g(n, 14)),
            Value::Integer(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let mut message = text("err").unwrap_or_default();
    if let (Some(source), Some(line)) = (text("source"), text("line")) {
        message.push_str(&format!(" script: {name}, on {source}:{line}."));
    }
    let message = message.replace(['\r', '\n'], " ");
    Reply::error(message)
}

/// The `redis` table a library sees while it loads: register_function,
/// log and the version.
fn load_api(
    lua: &Lua,
    registering: std::sync::Arc<parking_lot::Mutex<Registering>>,
) -> mlua::Result<Table> {
    let api = lua.create_table()?;
    let reg = registering;
    api.set(
        "register_function",
        lua.create_function(
            move |lua, args: MultiValue| match read_register_args(lua, &args) {
                _ if !reg.lock().active => fail(
                    lua,
                    "ERR redis.register_function can only be called on FUNCTION LOAD command",
                ),
                Ok((name, callback, description, flags)) => {
                    let mut reg = reg.lock();
                    if !valid_name(&name) {
                        return fail(lua, &format!("ERR {NAME_RULE}"));
                    }
                    if reg
                        .functions
                        .iter()
                        .any(|(n, _)| n.eq_ignore_ascii_case(&name))
                    {
                        return fail(lua, "ERR Function already exists in the library");
                    }
                    let callback = lua.create_registry_value(callback)?;
                    reg.functions.push((
                        name,
                        RegisteredFunction {
                            callback,
                            description,
                            flags,
                        },
                    ));
                    Ok((true, Value::Nil))
                }
                Err(message) => fail(lua, &format!("ERR {message}")),
            },
        )?,
    )?;
    let register: Function = api.get("register_function")?;
    // Raise like the rest of the API: wrap in Lua.
    api.set("register_function", raising(lua, register)?)?;
    api.set("REDIS_VERSION", REDIS_VERSION)?;
    api.set("REDIS_VERSION_NUM", REDIS_VERSION_NUM)?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        api.set(name, level)?;
    }
    api.set(
        "log",
        lua.create_function(|_, args: MultiValue| {
            let text: Vec<String> = args
                .iter()
                .skip(1)
                .filter_map(|v| match v {
                    Value::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
                    _ => None,
                })
                .collect();
            tracing::info!(target: "lua", "{}", text.join(" "));
            Ok(())
        })?,
    )?;
    Ok(api)
}

type RegisterArgs = (String, Function, Option<String>, u32);

/// `redis.register_function(name, callback)` or the table form with
/// `function_name`, `callback`, `description` and `flags`.
fn read_register_args(_lua: &Lua, args: &MultiValue) -> Result<RegisterArgs, String> {
    match args.len() {
        1 => {
            let Value::Table(t) = &args[0] else {
                return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into());
            };
            let (mut name, mut callback, mut description, mut script_flags) = (None, None, None, 0);
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| e.to_string())?;
                let Value::String(k) = k else {
                    return Err(
                        "named argument key given to redis.register_function is not a string"
                            .into(),
                    );
                };
                let key = String::from_utf8_lossy(&k.as_bytes()).to_ascii_lowercase();
                match key.as_str() {
                    "function_name" => match v {
                        Value::String(s) => name = Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
                        _ => return Err("function_name argument given to redis.register_function must be a string".into()),
                    },
                    "description" => match v {
                        Value::String(s) => description = Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
                        _ => return Err("description argument given to redis.register_function must be a string".into()),
                    },
                    "callback" => match v {
                        Value::Function(f) => callback = Some(f),
                        _ => return Err("callback argument given to redis.register_function must be a function".into()),
                    },
                    "flags" => {
                        let Value::Table(list) = v else {
                            return Err("flags argument to redis.register_function must be a table representing function flags".into());
                        };
                        for flag in list.sequence_values::<Value>() {
                            let flag = match flag {
                                Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
                                _ => return Err("unknown flag given".into()),
                            };
                            match flags::by_name(&flag) {
                                Some(f) => script_flags |= f,
                                None => return Err("unknown flag given".into()),
                            }
                        }
                    }
                    _ => return Err("unknown argument given to redis.register_function".into()),
                }
            }
            let Some(name) = name else {
                return Err("redis.register_function must get a function name argument".into());
            };
            let Some(callback) = callback else {
                return Err("redis.register_function must get a callback argument".into());
            };
            Ok((name, callback, description, script_flags))
        }
        2 => {
            let Value::String(name) = &args[0] else {
                return Err("first argument to redis.register_function must be a string".into());
            };
            let Value::Function(callback) = &args[1] else {
                return Err("second argument to redis.register_function must be a function".into());
            };
            Ok((
                String::from_utf8_lossy(&name.as_bytes()).into_owned(),
                callback.clone(),
                None,
                0,
            ))
        }
        _ => Err("wrong number of arguments to redis.register_function".into()),
    }
}
