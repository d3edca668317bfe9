//! Compiling in a child process. wasmtime can neither stop a compile midway nor cap the memory
//! it takes; a process can be killed at the deadline and given a memory limit by the kernel, so a
//! host that loads modules it does not trust (the scaler) compiles them in one.
//!
//! The parent runs a [`CompileWorker`] (a program, usually its own executable with a hidden
//! subcommand, that calls [`run_compile_worker`]) with the engine's settings as its last
//! argument and the module on stdin; the child writes the compiled code to stdout.

use crate::error::{Error, Result};
use crate::sandbox::{self, Limits, Modes};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{mpsc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Most bytes of an error message read from a worker.
const MESSAGE_BYTES: u64 = 16 << 10;

/// A program that compiles modules in a child process capped in memory and CPU, and killed when
/// the compile outlives `Limits::compile_time`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileWorker {
    program: PathBuf,
    args: Vec<OsString>,
    memory_bytes: u64,
    at_once: usize,
}

impl CompileWorker {
    /// A worker run as `program args... SETTINGS`, where the program calls
    /// [`run_compile_worker`] with SETTINGS. Default: 512 MiB of memory, 2 compiles at once.
    pub fn new<I, S>(program: impl Into<PathBuf>, args: I) -> CompileWorker
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        CompileWorker {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            memory_bytes: 512 << 20,
            at_once: 2,
        }
    }

    /// Most memory one compile may take (its heap and mappings: `RLIMIT_DATA`); past it the
    /// module is refused as [`Error::CompileMemory`].
    pub fn memory_bytes(&mut self, bytes: u64) -> &mut Self {
        self.memory_bytes = bytes;
        self
    }

    /// Most workers running at once (at least 1); a load waits for a free one within its
    /// `Limits::compile_time`.
    pub fn at_once(&mut self, workers: usize) -> &mut Self {
        self.at_once = workers.max(1);
        self
    }

    /// The memory cap.
    pub fn get_memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    /// How many run at once.
    pub fn get_at_once(&self) -> usize {
        self.at_once
    }
}

/// The worker's side: reads a module from stdin, compiles it for the engine `settings` describe
/// (the last argument the parent gave) and writes its answer to stdout: [`CODE`] and the compiled
/// code, or [`REFUSED`] and wasmtime's reason. Any other ending is the worker's failure, not the
/// module's.
pub fn run_compile_worker(settings: &str) -> ExitCode {
    let Some((limits, modes)) = parse_settings(settings) else {
        eprintln!("compile worker: settings `{settings}` do not parse");
        return ExitCode::from(3);
    };
    let engine = match wasmtime::Engine::new(&sandbox::compile_config(&limits, &modes)) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("compile worker: {e:#}");
            return ExitCode::from(3);
        }
    };
    let mut module = Vec::new();
    if let Err(e) = std::io::stdin()
        .take(limits.module_bytes as u64 + 1)
        .read_to_end(&mut module)
    {
        eprintln!("compile worker: reading the module: {e}");
        return ExitCode::from(3);
    }
    let answer = match engine.precompile_module(&module) {
        Ok(mut code) => {
            code.insert(0, CODE);
            code
        }
        Err(e) => [&[REFUSED][..], format!("{e:#}").as_bytes()].concat(),
    };
    match std::io::stdout().lock().write_all(&answer) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(3),
    }
}

/// The first byte of an answer with compiled code.
const CODE: u8 = b'C';
/// The first byte of an answer with wasmtime's refusal.
const REFUSED: u8 = b'R';

/// What a worker answered.
pub(crate) enum Compiled {
    /// Compiled code for this engine's settings.
    Code(Vec<u8>),
    /// wasmtime refused the module; its message.
    Refused(String),
}

/// Runs workers, at most `at_once` of them at a time.
#[derive(Debug)]
pub(crate) struct Workers {
    worker: CompileWorker,
    settings: String,
    running: Mutex<usize>,
    freed: Condvar,
}

impl Workers {
    pub(crate) fn new(worker: CompileWorker, limits: &Limits, modes: &Modes) -> Workers {
        Workers {
            settings: settings(limits, modes),
            worker,
            running: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Compiles `module` in a worker, all within `cap` (waiting for a free worker included).
    pub(crate) fn compile(&self, module: &[u8], cap: Duration) -> Result<Compiled> {
        let deadline = Instant::now() + cap;
        let _slot = self.slot(deadline).ok_or(Error::CompileTimeout { cap })?;
        let mut child = self.spawn()?;
        let (tx, rx) = mpsc::sync_channel(1);
        let mut stdin = child.stdin.take().expect("piped");
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let bytes = module.to_vec();
        // The pipes on a thread, so that this one can kill the child at the deadline whatever
        // state its pipes are in.
        std::thread::Builder::new()
            .name("leadtime-compile".into())
            .spawn(move || {
                // A child that exits early closes stdin: its answer says why, not this write.
                let _ = stdin.write_all(&bytes);
                drop(stdin);
                let mut code = Vec::new();
                let mut message = Vec::new();
                let read = stdout
                    .read_to_end(&mut code)
                    .and_then(|_| (&mut stderr).take(MESSAGE_BYTES).read_to_end(&mut message));
                let _ = tx.send(read.map(|_| (code, message)));
            })
            .map_err(|e| Error::Runtime(format!("starting a compile thread: {e}")))?;
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = rx.recv_timeout(left);
        if answer.is_err() {
            // Past the deadline: the kernel stops it, wherever it is.
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::CompileTimeout { cap });
        }
        let status = child
            .wait()
            .map_err(|e| Error::Runtime(format!("waiting for the compile worker: {e}")))?;
        let (code, message) = answer
            .expect("checked")
            .map_err(|e| Error::Runtime(format!("reading the compile worker: {e}")))?;
        let message = String::from_utf8_lossy(&message).trim().to_string();
        match (status.success(), code.split_first()) {
            (true, Some((&CODE, code))) => Ok(Compiled::Code(code.to_vec())),
            (true, Some((&REFUSED, why))) => {
                Ok(Compiled::Refused(String::from_utf8_lossy(why).into_owned()))
            }
            _ if message.contains("memory allocation") => Err(Error::CompileMemory {
                cap: self.worker.memory_bytes,
            }),
            _ => Err(Error::Runtime(format!(
                "the compile worker `{}` ended with {status}: {message}",
                self.worker.program.display()
            ))),
        }
    }

    /// Waits for a free worker until `deadline`; the guard frees it.
    fn slot(&self, deadline: Instant) -> Option<SlotGuard<'_>> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        while *running >= self.worker.at_once {
            let left = deadline.checked_duration_since(Instant::now())?;
            running = self
                .freed
                .wait_timeout(running, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *running += 1;
        Some(SlotGuard(self))
    }

    fn spawn(&self) -> Result<Child> {
        let mut command = Command::new(&self.worker.program);
        command
            .args(&self.worker.args)
            .arg(&self.settings)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            let memory = self.worker.memory_bytes;
            // SAFETY: only async-signal-safe calls (setrlimit, prctl) between fork and exec.
            unsafe {
                command.pre_exec(move || limit_child(memory));
            }
        }
        command.spawn().map_err(|e| {
            Error::Runtime(format!(
                "starting the compile worker `{}`: {e}",
                self.worker.program.display()
            ))
        })
    }
}

struct SlotGuard<'a>(&'a Workers);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut running = self.0.running.lock().unwrap_or_else(|p| p.into_inner());
        *running -= 1;
        self.0.freed.notify_one();
    }
}

/// In the child before exec: its memory capped, no core file, and killed with its parent (the
/// thread that spawned it, which waits for it to the end, so with the process too).
#[cfg(unix)]
fn limit_child(memory: u64) -> std::io::Result<()> {
    let cap = |resource, value: u64| {
        let limit = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        // SAFETY: a valid pointer to a filled struct.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    cap(libc::RLIMIT_DATA, memory)?;
    cap(libc::RLIMIT_CORE, 0)?;
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and has no other effect.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    Ok(())
}

/// What shapes compiled code, as one argument: the worker compiles for an engine whose code the
/// parent can load (the parent's `Module::deserialize` checks it does, and refuses it otherwise).
fn settings(limits: &Limits, modes: &Modes) -> String {
    format!(
        "v1,stack={},memory={},tables={},modules={},nans={},signals={},fresh={},pool={},poolchecks={}",
        limits.stack_bytes,
        limits.memory_bytes,
        limits.table_elements,
        limits.module_bytes,
        modes.canonical_nans as u8,
        modes.signal_traps as u8,
        modes.fresh_instance_per_call as u8,
        modes.instance_pool,
        modes.pool_bounds_checks as u8,
    )
}

fn parse_settings(text: &str) -> Option<(Limits, Modes)> {
    let mut fields = text.split(',');
    if fields.next()? != "v1" {
        return None;
    }
    let mut limits = Limits::default();
    let mut modes = Modes::default();
    for field in fields {
        let (key, value) = field.split_once('=')?;
        let n: u64 = value.parse().ok()?;
        match key {
            "stack" => limits.stack_bytes = n as usize,
            "memory" => limits.memory_bytes = n as usize,
            "tables" => limits.table_elements = n as usize,
            "modules" => limits.module_bytes = n as usize,
            "nans" => modes.canonical_nans = n != 0,
            "signals" => modes.signal_traps = n != 0,
            "fresh" => modes.fresh_instance_per_call = n != 0,
            "pool" => modes.instance_pool = u32::try_from(n).ok()?,
            "poolchecks" => modes.pool_bounds_checks = n != 0,
            _ => return None,
        }
    }
    Some((limits, modes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip() {
        let mut limits = Limits::default();
        limits.stack_bytes(1 << 20).memory_bytes(32 << 20);
        let mut modes = Modes::default();
        modes
            .signal_traps(false)
            .fresh_instance_per_call(true)
            .instance_pool(3);
        let (l, m) = parse_settings(&settings(&limits, &modes)).unwrap();
        assert_eq!(settings(&l, &m), settings(&limits, &modes));
        assert!(parse_settings("v2,stack=1").is_none());
        assert!(parse_settings("v1,stack=x").is_none());
        assert!(parse_settings("v1,unknown=1").is_none());
    }
}
