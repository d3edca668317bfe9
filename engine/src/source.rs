//! Where a policy module comes from: a built-in, a file, or bytes in memory.

use crate::error::{Error, Result};
use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

/// Where a policy module comes from, for [`crate::Engine::load`].
///
/// ```no_run
/// use leadtime::{Engine, Limits, Params, Source};
/// let engine = Engine::new(&Limits::default())?;
/// let hpa = engine.load(Source::builtin("hpa"), Params::new())?;
/// let mine = engine.load(Source::file("policy.wasm"), Params::new())?;
/// let wat = r#"(module (memory (export "memory") 1))"#;
/// let inline = engine.load(Source::bytes("inline", wat.as_bytes()), Params::new());
/// # Ok::<(), leadtime::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source<'a> {
    /// A built-in policy by name (`predictive`, `hpa`, ...); needs the `builtin` feature.
    Builtin(Cow<'a, str>),
    /// A module file, binary or `.wat` text (told apart by its content, not its name). It must
    /// be a regular file; it is refused on its size before it is read.
    File(Cow<'a, Path>),
    /// A module in memory, binary or `.wat` text.
    Bytes {
        /// The policy's name in logs and errors.
        name: Cow<'a, str>,
        /// The module.
        bytes: Cow<'a, [u8]>,
    },
}

impl<'a> Source<'a> {
    /// A built-in policy by name.
    pub fn builtin(name: impl Into<Cow<'a, str>>) -> Source<'a> {
        Source::Builtin(name.into())
    }

    /// A module file.
    pub fn file<P: AsRef<Path> + ?Sized>(path: &'a P) -> Source<'a> {
        Source::File(Cow::Borrowed(path.as_ref()))
    }

    /// A module in memory, named `name` in logs and errors.
    pub fn bytes(name: impl Into<Cow<'a, str>>, bytes: impl Into<Cow<'a, [u8]>>) -> Source<'a> {
        Source::Bytes {
            name: name.into(),
            bytes: bytes.into(),
        }
    }

    /// A source from a command-line spec: a path ending in `.wasm` or `.wat` is a file, anything
    /// else a built-in name (loading an unknown one lists the built-ins).
    pub fn parse(spec: &'a str) -> Source<'a> {
        let path = Path::new(spec);
        match path.extension().and_then(|e| e.to_str()) {
            Some("wasm") | Some("wat") => Source::File(Cow::Borrowed(path)),
            _ => Source::Builtin(Cow::Borrowed(spec)),
        }
    }

    /// The policy's name: the built-in's, the file's path, or the name given with the bytes.
    pub fn name(&self) -> Cow<'_, str> {
        match self {
            Source::Builtin(name) => Cow::Borrowed(name),
            Source::File(path) => path.to_string_lossy(),
            Source::Bytes { name, .. } => Cow::Borrowed(name),
        }
    }

    /// The module's bytes: a file is read only when it is a regular file of at most `cap`
    /// bytes, and never past `cap` + 1 bytes (it may grow while read).
    pub fn read(&self, cap: usize) -> Result<Cow<'_, [u8]>> {
        let bytes = match self {
            Source::Builtin(name) => Cow::Borrowed(builtin(name)?),
            Source::File(path) => Cow::Owned(read_bounded(path, cap)?),
            Source::Bytes { bytes, .. } => Cow::Borrowed(&bytes[..]),
        };
        if bytes.len() > cap {
            return Err(Error::ModuleTooLarge {
                size: bytes.len() as u64,
                cap,
            });
        }
        Ok(bytes)
    }
}

/// A built-in's module, or `UnknownPolicy` listing the built-ins.
fn builtin(name: &str) -> Result<&'static [u8]> {
    crate::builtin_wasm(name).ok_or_else(|| Error::UnknownPolicy {
        name: name.to_string(),
        known: crate::builtin_names().join(", "),
    })
}

/// Reads at most `cap` + 1 bytes of a regular file, refusing it first if its size is over `cap`:
/// a sparse file of gigabytes, or a link to `/dev/zero`, costs nothing.
fn read_bounded(path: &Path, cap: usize) -> Result<Vec<u8>> {
    let io = |source: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_regular = || {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ))
    };
    // Checked before opening, so that a device is not even opened; but the path may change in
    // between, so what counts is the open file, opened without waiting (see `open_regular`).
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(not_regular());
    }
    let (file, meta) = open_regular(path).map_err(io)?;
    if meta.len() > cap as u64 {
        return Err(Error::ModuleTooLarge {
            size: meta.len(),
            cap,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

/// Opens `path` and checks, on the open file, that it is a regular file (`InvalidInput`
/// otherwise). On Unix it is opened non-blocking: opening a FIFO for reading would otherwise wait
/// for a writer, forever, if one was put at the path after it was checked. A regular file reads
/// the same either way.
fn open_regular(path: &Path) -> std::io::Result<(std::fs::File, std::fs::Metadata)> {
    let mut options = std::fs::File::options();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok((file, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_tells_files_from_built_ins_by_extension() {
        assert_eq!(Source::parse("hpa"), Source::builtin("hpa"));
        assert_eq!(Source::parse("dir/p.wasm"), Source::file("dir/p.wasm"));
        assert_eq!(Source::parse("p.wat"), Source::file("p.wat"));
        assert_eq!(Source::parse("p.bin"), Source::builtin("p.bin"));
    }

    #[test]
    fn a_file_over_the_cap_is_refused_before_it_is_read() {
        let dir = std::env::temp_dir().join(format!("leadtime-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sparse = dir.join("sparse.wasm");
        let file = std::fs::File::create(&sparse).unwrap();
        // 4 GiB of nothing: a sparse file costs no disk, and reading it would cost 4 GiB.
        file.set_len(4 << 30).unwrap();
        let err = Source::file(&sparse).read(16 << 20).unwrap_err();
        assert!(
            matches!(err, Error::ModuleTooLarge { size, cap } if size == 4 << 30 && cap == 16 << 20),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_device_or_directory_is_refused_as_not_a_regular_file() {
        for path in ["/dev/zero", "/"] {
            let err = Source::file(path).read(16 << 20).unwrap_err();
            assert!(matches!(err, Error::Io { .. }), "{path}: {err}");
            assert!(
                err.report().contains("not a regular file"),
                "{}",
                err.report()
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_on_the_open_file_without_waiting_for_a_writer() {
        // What `read_bounded` meets when a FIFO replaces the file between its check of the path
        // and its open: the open itself must neither wait nor accept it.
        let dir = std::env::temp_dir().join(format!("leadtime-source-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("policy.wasm");
        let _ = std::fs::remove_file(&fifo);
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let opener = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(open_regular(&opener).map(|_| ()));
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("opening a FIFO waited for a writer");
        let err = result.expect_err("a FIFO was accepted");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        assert_eq!(err.to_string(), "not a regular file");
        // And through `Source`, as before: refused on its path.
        let err = Source::file(&fifo).read(16 << 20).unwrap_err();
        assert!(
            err.report().contains("not a regular file"),
            "{}",
            err.report()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
