//! One module per subcommand.

pub mod backtest;
pub mod bench;
pub mod cpa;
pub mod decide;
pub mod evaluate;
pub mod inspect;
pub mod new;
pub mod policies;
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
/// second run of a command skips compiling (tens to hundreds of milliseconds per policy).
pub fn engine(limits: Limits) -> Result<Engine, Failure> {
    let dir = DISK_CACHE.load(Ordering::Relaxed).then(cache_dir).flatten();
    Ok(match dir {
        Some(dir) => Engine::with_cache_dir(limits, dir)?,
        None => Engine::new(limits)?,
    })
}
