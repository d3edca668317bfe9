//! The disk cache of compiled modules: files of native code, so the directory is trusted only
//! when it is this user's alone, and bounded in size and age so it never grows without end.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use wasmtime::Module;

/// Most bytes of compiled code the disk cache keeps; past it, the least recently used files go.
pub const DISK_CACHE_BYTES: u64 = 512 << 20;

/// Longest a compiled module stays in the disk cache unused.
pub const DISK_CACHE_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);

/// How old a temp file must be before it counts as left behind by a crashed writer.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// A directory of compiled modules, checked to be this user's alone.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// Opens `dir`, creating it (mode 0700) when missing. Refused, as
    /// [`Error::UntrustedCache`], when it is not a directory, is owned by another user, or is
    /// writable by group or others: its files are loaded as native code, so whoever can write
    /// there can run code as this user.
    pub(crate) fn open(dir: PathBuf) -> Result<DiskCache> {
        let refuse = |reason: String| Error::UntrustedCache {
            path: dir.clone(),
            reason,
        };
        create_private(&dir).map_err(|e| refuse(format!("cannot create it: {e}")))?;
        let meta = std::fs::metadata(&dir).map_err(|e| refuse(e.to_string()))?;
        if !meta.is_dir() {
            return Err(refuse("not a directory".into()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // SAFETY: geteuid has no preconditions and cannot fail.
            let me = unsafe { libc::geteuid() };
            if meta.uid() != me {
                return Err(refuse(format!(
                    "owned by uid {}, not by this user (uid {me})",
                    meta.uid()
                )));
            }
            if meta.mode() & 0o022 != 0 {
                return Err(refuse(format!(
                    "writable by group or others (mode {:o}); `chmod 700` it",
                    meta.mode() & 0o777
                )));
            }
        }
        Ok(DiskCache { dir })
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The module stored under `name`, or `None` (no file, or a file that fails its checksum or
    /// wasmtime's checks; it is then recompiled and overwritten).
    pub(crate) fn load(&self, engine: &wasmtime::Engine, name: &str) -> Option<Module> {
        let path = self.dir.join(name);
        // A regular file only: not a link someone could point elsewhere.
        if !std::fs::symlink_metadata(&path).ok()?.is_file() {
            return None;
        }
        let file = std::fs::read(&path).ok()?;
        // Each file ends in the SHA-256 of the rest: a truncated or damaged file is caught here
        // rather than handed to `deserialize`, which trusts its input.
        let split = file.len().checked_sub(32)?;
        let (code, sum) = file.split_at(split);
        if Sha256::digest(code).as_slice() != sum {
            tracing::warn!(path = %path.display(), "precompiled module fails its checksum; recompiling");
            return None;
        }
        // SAFETY: the bytes are exactly what `Module::serialize` wrote (checked above) into a
        // directory of this user's alone (checked by `open`); wasmtime still checks they match
        // this engine's settings.
        match unsafe { Module::deserialize(engine, code) } {
            Ok(module) => {
                // Recently used: pruning goes by modification time.
                let _ = std::fs::File::options()
                    .append(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(SystemTime::now()));
                Some(module)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "precompiled module unusable ({e:#}); recompiling");
                None
            }
        }
    }

    /// Writes a module under `name`, whole or not at all, then prunes the directory. Failures
    /// only cost a later compile, so they are logged, not returned.
    pub(crate) fn store(&self, name: &str, module: &Module) {
        let path = self.dir.join(name);
        let write = || -> std::io::Result<()> {
            let mut bytes = module.serialize().map_err(std::io::Error::other)?;
            let sum = Sha256::digest(&bytes);
            bytes.extend_from_slice(&sum);
            // A name of this process and moment: concurrent writers never share a temp file,
            // and the rename makes the whole file appear at once to readers.
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let tmp = self
                .dir
                .join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, &path).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
        };
        if let Err(e) = write() {
            tracing::warn!(path = %path.display(), "could not write precompiled module: {e}");
        }
        self.prune(DISK_CACHE_BYTES, DISK_CACHE_MAX_AGE);
    }

    /// Removes compiled modules unused for longer than `max_age`, then the least recently used
    /// until at most `max_bytes` remain, and temp files a crashed writer left. Only files the
    /// cache writes (`*.cwasm`, `.*.tmp`) are touched.
    pub(crate) fn prune(&self, max_bytes: u64, max_age: Duration) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        let age = |t: SystemTime| now.duration_since(t).unwrap_or(Duration::ZERO);
        let mut kept = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Ok(meta) = entry.metadata() else { continue };
            let modified = meta.modified().unwrap_or(now);
            if name.starts_with('.') && name.ends_with(".tmp") {
                if meta.is_file() && age(modified) > STALE_TEMP {
                    let _ = std::fs::remove_file(entry.path());
                }
            } else if name.ends_with(".cwasm") && meta.is_file() {
                if age(modified) > max_age {
                    let _ = std::fs::remove_file(entry.path());
                } else {
                    kept.push((modified, meta.len(), entry.path()));
                }
            }
        }
        let mut total: u64 = kept.iter().map(|(_, len, _)| len).sum();
        // Oldest first.
        kept.sort();
        for (_, len, path) in kept {
            if total <= max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

/// Creates `dir` and its missing parents, each 0700 (on Unix).
fn create_private(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir()
                .join(format!("leadtime-disk-cache-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            TempDir(dir)
        }

        fn names(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn refusal(dir: &Path) -> String {
        match DiskCache::open(dir.to_path_buf()) {
            Err(Error::UntrustedCache { path, reason }) => {
                assert_eq!(path, dir);
                reason
            }
            other => panic!("{}: {other:?}", dir.display()),
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_dir_others_can_write_to_is_refused_as_untrusted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("mode");
        DiskCache::open(dir.0.clone()).unwrap();
        let mode = std::fs::metadata(&dir.0).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "created 0700");
        for (mode, shown) in [(0o777, "777"), (0o770, "770"), (0o702, "702")] {
            std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(mode)).unwrap();
            let reason = refusal(&dir.0);
            assert!(reason.contains("writable by group or others"), "{reason}");
            assert!(reason.contains(&format!("mode {shown}")), "{reason}");
            // The engine refuses it as a whole, with the same typed error.
            let err = crate::Engine::builder().cache_dir(&dir.0).build().err();
            assert!(matches!(err, Some(Error::UntrustedCache { .. })), "{err:?}");
        }
        // Readable by others, writable only by this user: trusted.
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        DiskCache::open(dir.0.clone()).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_dir_another_user_owns_is_refused_as_untrusted() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: only root can give a directory to another user");
            return;
        }
        let dir = TempDir::new("owner");
        DiskCache::open(dir.0.clone()).unwrap();
        // `nobody` on most systems; any uid other than root's will do.
        std::os::unix::fs::chown(&dir.0, Some(65534), None).unwrap();
        let reason = refusal(&dir.0);
        assert!(reason.contains("owned by uid 65534"), "{reason}");
    }

    #[test]
    fn a_file_in_place_of_the_dir_is_refused_as_untrusted() {
        let dir = TempDir::new("file");
        std::fs::create_dir_all(&dir.0).unwrap();
        let file = dir.0.join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let reason = refusal(&file);
        assert!(reason.contains("cannot create it"), "{reason}");
    }

    /// Writes `len` bytes to `name` in `dir`, last modified `age` ago.
    fn file(dir: &Path, name: &str, len: usize, age: Duration) {
        let path = dir.join(name);
        std::fs::write(&path, vec![0u8; len]).unwrap();
        let file = std::fs::File::options().append(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn pruning_removes_the_old_then_the_least_recently_used_past_the_size() {
        let dir = TempDir::new("prune");
        let cache = DiskCache::open(dir.0.clone()).unwrap();
        let hour = Duration::from_secs(3600);
        let day = 24 * hour;
        file(&dir.0, "a-too-old.cwasm", 1000, 31 * day);
        file(&dir.0, "b-newest.cwasm", 1000, hour);
        file(&dir.0, "c-older.cwasm", 1000, 2 * hour);
        file(&dir.0, "d-oldest-kept.cwasm", 1000, 3 * hour);
        // Not the cache's: never touched, however old.
        file(&dir.0, "notes.txt", 1000, 400 * day);
        // A crashed writer's temp file, and one a writer is still writing.
        file(&dir.0, ".e.cwasm.1.2.tmp", 1000, 2 * hour);
        file(&dir.0, ".f.cwasm.3.4.tmp", 1000, Duration::ZERO);

        cache.prune(2500, 30 * day);
        assert_eq!(
            dir.names(),
            [
                ".f.cwasm.3.4.tmp",
                "b-newest.cwasm",
                "c-older.cwasm",
                "notes.txt"
            ],
            "the file over the age went, then the oldest until at most 2500 bytes remain"
        );
        // Within both bounds: nothing goes.
        cache.prune(2000, 30 * day);
        assert_eq!(dir.names().len(), 4);
        // A tighter age bound: only the newest stays.
        cache.prune(u64::MAX, Duration::from_secs(90 * 60));
        assert_eq!(
            dir.names(),
            [".f.cwasm.3.4.tmp", "b-newest.cwasm", "notes.txt"]
        );
        // No room at all: every compiled module goes.
        cache.prune(0, 30 * day);
        assert_eq!(dir.names(), [".f.cwasm.3.4.tmp", "notes.txt"]);
    }

    #[test]
    fn storing_prunes_with_the_default_bounds() {
        let dir = TempDir::new("store");
        let cache = DiskCache::open(dir.0.clone()).unwrap();
        file(
            &dir.0,
            "stale.cwasm",
            10,
            DISK_CACHE_MAX_AGE + Duration::from_secs(60),
        );
        let engine = wasmtime::Engine::default();
        let module = Module::new(&engine, wat::parse_str("(module)").unwrap()).unwrap();
        cache.store("new.cwasm", &module);
        assert_eq!(dir.names(), ["new.cwasm"]);
        assert!(cache.load(&engine, "new.cwasm").is_some());
    }
}
