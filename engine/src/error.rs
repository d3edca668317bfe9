//! The one error type of the engine, with a kind a caller can match on.

use std::path::PathBuf;
use std::time::Duration;

/// An underlying error kept as a [`Error`]'s source (wasmtime's, the wat parser's, the
/// validator's).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong loading or calling a policy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a valid WebAssembly module (or `.wat` text); the source says why.
    #[error("not a valid WebAssembly module")]
    InvalidModule {
        /// Why (the parser's, validator's or compiler's error).
        #[source]
        source: BoxError,
    },
    /// The module is larger than `Limits::module_bytes`.
    #[error("module is {size} bytes, over the cap of {cap} bytes (`Limits::module_bytes`)")]
    ModuleTooLarge {
        /// Size of the module (at least this; a file is not read past the cap).
        size: u64,
        /// The cap.
        cap: usize,
    },
    /// The module is over a limit checked before compiling (function count, body size, locals,
    /// nesting depth): refused without being compiled.
    #[error("the module's {what} is {found}, over the limit of {cap} (`Limits::{limit}`)")]
    ModuleOverLimit {
        /// What was measured, e.g. `function count`.
        what: &'static str,
        /// The [`crate::Limits`] option that bounds it, e.g. `module_functions`.
        limit: &'static str,
        /// What the module has (for a count, at least this: the check stops at the limit).
        found: u64,
        /// The limit.
        cap: u64,
    },
    /// Compiling the module took longer than `Limits::compile_time`.
    #[error("compiling the module took longer than {cap:?} (`Limits::compile_time`)")]
    CompileTimeout {
        /// The limit.
        cap: Duration,
    },
    /// Compiling the module needed more memory than its compile worker may take
    /// ([`crate::CompileWorker::memory_bytes`]).
    #[error("compiling the module needed more than {cap} bytes (`CompileWorker::memory_bytes`)")]
    CompileMemory {
        /// The cap.
        cap: u64,
    },
    /// The same module failed to load a moment ago (any load-time error): it is not compiled
    /// again until the failure is [`FAILURE_MEMORY`](crate::FAILURE_MEMORY) old.
    #[error(
        "{reason} (this module failed {age:?} ago and is not compiled again for {retry_in:?})"
    )]
    RecentlyFailed {
        /// The first failure's kind.
        kind: ErrorKind,
        /// The first failure, as it was reported.
        reason: String,
        /// How long ago it failed.
        age: Duration,
        /// How long until a load compiles it again.
        retry_in: Duration,
    },
    /// A required export is missing.
    #[error("the module does not export `{0}` (see docs/ABI.md)")]
    MissingExport(String),
    /// An export has the wrong kind or signature.
    #[error("export `{name}` is {found}, expected {expected}")]
    WrongSignature {
        /// Export name.
        name: String,
        /// What the ABI requires.
        expected: String,
        /// What the module has.
        found: String,
    },
    /// The module imports something the sandbox does not offer.
    #[error("import `{module}::{name}` is not allowed: a policy may import only `leadtime::log`")]
    ForbiddenImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// The policy speaks another ABI version.
    #[error("the policy speaks ABI version {found}, this host speaks version {expected}")]
    AbiMismatch {
        /// What `leadtime_abi_version` returned.
        found: i64,
        /// The host's version.
        expected: u32,
    },
    /// The call used up its CPU budget.
    #[error("the call used its whole CPU budget of {budget} fuel")]
    OutOfFuel {
        /// Fuel per call.
        budget: u64,
    },
    /// The policy tried to grow memory or a table past its cap.
    #[error("{what} would grow to {desired} past the cap of {cap}")]
    OutOfMemory {
        /// `memory` (bytes) or `table` (elements).
        what: &'static str,
        /// The size asked for.
        desired: usize,
        /// The cap.
        cap: usize,
    },
    /// The policy exhausted the wasm call stack (deep or unbounded recursion).
    #[error("call stack exhausted (cap {cap} bytes)")]
    StackOverflow {
        /// `Limits::stack_bytes`.
        cap: usize,
    },
    /// The policy trapped: `unreachable`, a panic, a division by zero, an out-of-bounds access.
    #[error("{0}")]
    Trap(String),
    /// The policy misused a host function (bad buffer, oversized log line).
    #[error("{0}")]
    HostCall(String),
    /// The policy answered something that is not a valid response.
    #[error("{0}")]
    BadResponse(String),
    /// The policy's response is not a valid message; the source is the decoder's error.
    #[error("response is not a valid message")]
    UndecodableResponse {
        /// The decoder's error.
        #[source]
        source: rmp_serde::decode::Error,
    },
    /// The policy answered with an `error` instead of a decision.
    #[error("{0}")]
    PolicyError(String),
    /// The policy's `leadtime_init` refused its parameters.
    #[error("{0}")]
    InitFailed(String),
    /// The request cannot be sent (for example it does not encode).
    #[error("{0}")]
    BadRequest(String),
    /// No built-in policy has this name, and it is not a `.wasm` or `.wat` path.
    #[error("no built-in policy `{name}` (built-ins: {known}); a file must end in .wasm or .wat")]
    UnknownPolicy {
        /// What was asked for.
        name: String,
        /// The built-in names.
        known: String,
    },
    /// A policy file could not be read, or is not a regular file.
    #[error("reading {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The directory of compiled code is not safe to load native code from (owned by another
    /// user, or writable by others): the engine refuses it rather than run what another user
    /// may have planted there.
    #[error("cache directory {} refused: {reason}", path.display())]
    UntrustedCache {
        /// The directory.
        path: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// The runtime itself failed (not the policy's doing).
    #[error("{0}")]
    Runtime(String),
    /// Wasmtime failed at something that is not the policy's doing; the source is its error.
    #[error("{context}")]
    Wasmtime {
        /// What the engine was doing.
        context: &'static str,
        /// Wasmtime's error.
        #[source]
        source: BoxError,
    },
}

/// The kind of an [`Error`], for matching, metrics and the CLI's `error: <kind>: ...` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// See [`Error::InvalidModule`], [`Error::ModuleTooLarge`], [`Error::ModuleOverLimit`] and
    /// [`Error::CompileTimeout`].
    InvalidModule,
    /// See [`Error::MissingExport`].
    MissingExport,
    /// See [`Error::WrongSignature`].
    WrongSignature,
    /// See [`Error::ForbiddenImport`].
    ForbiddenImport,
    /// See [`Error::AbiMismatch`].
    AbiMismatch,
    /// See [`Error::OutOfFuel`].
    OutOfFuel,
    /// See [`Error::OutOfMemory`].
    OutOfMemory,
    /// See [`Error::StackOverflow`].
    StackOverflow,
    /// See [`Error::Trap`].
    Trap,
    /// See [`Error::HostCall`].
    HostCall,
    /// See [`Error::BadResponse`] and [`Error::UndecodableResponse`].
    BadResponse,
    /// See [`Error::PolicyError`].
    PolicyError,
    /// See [`Error::InitFailed`].
    InitFailed,
    /// See [`Error::BadRequest`].
    BadRequest,
    /// See [`Error::UnknownPolicy`].
    UnknownPolicy,
    /// See [`Error::Io`] and [`Error::UntrustedCache`].
    Io,
    /// See [`Error::Runtime`] and [`Error::Wasmtime`].
    Runtime,
}

impl ErrorKind {
    /// Every kind, in a stable order.
    pub const ALL: [ErrorKind; 17] = [
        ErrorKind::InvalidModule,
        ErrorKind::MissingExport,
        ErrorKind::WrongSignature,
        ErrorKind::ForbiddenImport,
        ErrorKind::AbiMismatch,
        ErrorKind::OutOfFuel,
        ErrorKind::OutOfMemory,
        ErrorKind::StackOverflow,
        ErrorKind::Trap,
        ErrorKind::HostCall,
        ErrorKind::BadResponse,
        ErrorKind::PolicyError,
        ErrorKind::InitFailed,
        ErrorKind::BadRequest,
        ErrorKind::UnknownPolicy,
        ErrorKind::Io,
        ErrorKind::Runtime,
    ];

    /// The kebab-case name, e.g. `out-of-fuel`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidModule => "invalid-module",
            ErrorKind::MissingExport => "missing-export",
            ErrorKind::WrongSignature => "wrong-signature",
            ErrorKind::ForbiddenImport => "forbidden-import",
            ErrorKind::AbiMismatch => "abi-mismatch",
            ErrorKind::OutOfFuel => "out-of-fuel",
            ErrorKind::OutOfMemory => "out-of-memory",
            ErrorKind::StackOverflow => "stack-overflow",
            ErrorKind::Trap => "trap",
            ErrorKind::HostCall => "host-call",
            ErrorKind::BadResponse => "bad-response",
            ErrorKind::PolicyError => "policy-error",
            ErrorKind::InitFailed => "init-failed",
            ErrorKind::BadRequest => "bad-request",
            ErrorKind::UnknownPolicy => "unknown-policy",
            ErrorKind::Io => "io",
            ErrorKind::Runtime => "runtime",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// This error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidModule { .. }
            | Error::ModuleTooLarge { .. }
            | Error::ModuleOverLimit { .. }
            | Error::CompileTimeout { .. }
            | Error::CompileMemory { .. } => ErrorKind::InvalidModule,
            Error::RecentlyFailed { kind, .. } => *kind,
            Error::MissingExport(_) => ErrorKind::MissingExport,
            Error::WrongSignature { .. } => ErrorKind::WrongSignature,
            Error::ForbiddenImport { .. } => ErrorKind::ForbiddenImport,
            Error::AbiMismatch { .. } => ErrorKind::AbiMismatch,
            Error::OutOfFuel { .. } => ErrorKind::OutOfFuel,
            Error::OutOfMemory { .. } => ErrorKind::OutOfMemory,
            Error::StackOverflow { .. } => ErrorKind::StackOverflow,
            Error::Trap(_) => ErrorKind::Trap,
            Error::HostCall(_) => ErrorKind::HostCall,
            Error::BadResponse(_) | Error::UndecodableResponse { .. } => ErrorKind::BadResponse,
            Error::PolicyError(_) => ErrorKind::PolicyError,
            Error::InitFailed(_) => ErrorKind::InitFailed,
            Error::BadRequest(_) => ErrorKind::BadRequest,
            Error::UnknownPolicy { .. } => ErrorKind::UnknownPolicy,
            Error::Io { .. } | Error::UntrustedCache { .. } => ErrorKind::Io,
            Error::Runtime(_) | Error::Wasmtime { .. } => ErrorKind::Runtime,
        }
    }
}

impl Error {
    /// An invalid module, from any error saying why.
    pub(crate) fn invalid(source: impl Into<BoxError>) -> Error {
        Error::InvalidModule {
            source: source.into(),
        }
    }

    /// A failure of wasmtime's while `context`.
    pub(crate) fn wasmtime(context: &'static str, source: wasmtime::Error) -> Error {
        Error::Wasmtime {
            context,
            source: source.into(),
        }
    }

    /// This error and its sources, one after another (`a: b: c`): what a log line or terminal
    /// shows, since [`std::fmt::Display`] gives this error's own sentence only. Control
    /// characters (a policy's text may hold any) are escaped, so the line cannot rewrite a
    /// terminal or forge another log line.
    pub fn report(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        crate::text::escape_controls(&text).into_owned()
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
