//! One module per subcommand.

pub mod backtest;
pub mod bench;
pub mod cpa;
pub mod decide;
pub mod evaluate;
#[cfg(feature = "serve")]
pub mod fleet;
pub mod inspect;
pub mod new;
pub mod policies;
#[cfg(feature = "serve")]
pub mod serve;
pub mod test_policy;

use crate::failure::Failure;
use leadtime::{Engine, Limits};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether commands keep precompiled policies on disk; `--no-cache` turns it off.
static DISK_CACHE: AtomicBool = AtomicBool::new(true);

/// Turns the disk cache of precompiled policies on or off for the engines of this run.
pub fn set_disk_cache(on: bool) {
    DISK_CACHE.store(on, Ordering::Relaxed);
}

/// Where precompiled policies are kept: `$XDG_CACHE_HOME/leadtime`, else
/// `$HOME/.cache/leadtime`; `None` when neither is set (the XDG spec ignores relative paths).
pub fn cache_dir() -> Option<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
        .map(|dir| dir.join("leadtime"))
}

/// The engine a command runs policies with: compiled code cached on disk unless disabled, so a
/// second run of a command skips compiling (tens to hundreds of milliseconds per policy). A
/// cache directory the engine does not trust (another user's, or writable by others) is
/// reported and the run goes on without it.
pub fn engine(limits: &Limits) -> Result<Engine, Failure> {
    if let Some(dir) = DISK_CACHE.load(Ordering::Relaxed).then(cache_dir).flatten() {
        match Engine::builder().limits(limits).cache_dir(dir).build() {
            Ok(engine) => return Ok(engine),
            Err(e @ leadtime::Error::UntrustedCache { .. }) => {
                eprintln!("warning: {}; running without the cache", e.report());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Engine::new(limits)?)
}

/// Mebibytes as bytes, or a failure naming the flag when that overflows.
pub fn mib_to_bytes(flag: &str, mib: usize) -> Result<usize, Failure> {
    mib.checked_mul(1 << 20).ok_or_else(|| {
        Failure::new(
            "bad-request",
            format!(
                "--{flag} {mib} is too large (at most {} MiB)",
                usize::MAX >> 20
            ),
        )
    })
}
