//! `leadtime new`: a ready-to-build policy project in Rust, C or AssemblyScript.

use crate::failure::Failure;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Languages `leadtime new` can start a policy in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, with the `leadtime-guest` crate.
    Rust,
    /// C (clang, freestanding), with the C SDK copied in.
    C,
    /// AssemblyScript, with the AssemblyScript SDK copied in.
    Assemblyscript,
}

/// Arguments of `leadtime new`.
#[derive(clap::Args)]
pub struct Args {
    /// The policy's language.
    #[arg(long, value_enum)]
    lang: Lang,
    /// The project's path, as `cargo new` takes it: its last component is the project's name
    /// (lowercase letters, digits, `-` and `_`, starting with a letter).
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// The folder to create the project in, if not PATH.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Rust only: depend on the `leadtime-guest` crate at this path instead of crates.io.
    #[arg(long, value_name = "PATH")]
    guest_path: Option<PathBuf>,
}

// The SDKs are copied into C and AssemblyScript projects, so that a project builds on its own.
const C_HEADER: &str = include_str!("../../../guest-sdk/c/leadtime.h");
const C_SOURCE: &str = include_str!("../../../guest-sdk/c/leadtime.c");
const AS_SDK: &str = include_str!("../../../guest-sdk/assemblyscript/assembly/index.ts");
const CASES: &str = include_str!("../../templates/cases.yaml");

/// (path in the project, template text, executable) of each file of a project in `lang`.
fn files(lang: Lang) -> Vec<(&'static str, &'static str, bool)> {
    match lang {
        Lang::Rust => vec![
            (
                "Cargo.toml",
                include_str!("../../templates/rust/Cargo.toml"),
                false,
            ),
            (
                "src/lib.rs",
                include_str!("../../templates/rust/lib.rs"),
                false,
            ),
            (
                "README.md",
                include_str!("../../templates/rust/README.md"),
                false,
            ),
            ("cases.yaml", CASES, false),
        ],
        Lang::C => vec![
            (
                "policy.c",
                include_str!("../../templates/c/policy.c"),
                false,
            ),
            ("leadtime.h", C_HEADER, false),
            ("leadtime.c", C_SOURCE, false),
            ("build.sh", include_str!("../../templates/c/build.sh"), true),
            (
                "README.md",
                include_str!("../../templates/c/README.md"),
                false,
            ),
            ("cases.yaml", CASES, false),
        ],
        Lang::Assemblyscript => vec![
            (
                "package.json",
                include_str!("../../templates/assemblyscript/package.json"),
                false,
            ),
            (
                "asconfig.json",
                include_str!("../../templates/assemblyscript/asconfig.json"),
                false,
            ),
            (
                "assembly/index.ts",
                include_str!("../../templates/assemblyscript/index.ts"),
                false,
            ),
            ("assembly/leadtime.ts", AS_SDK, false),
            (
                "README.md",
                include_str!("../../templates/assemblyscript/README.md"),
                false,
            ),
            ("cases.yaml", CASES, false),
            ("build/.gitignore", "*\n", false),
        ],
    }
}

fn check_name(name: &str) -> Result<(), Failure> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Failure::new(
            "bad-request",
            format!(
                "project name `{name}`: use lowercase letters, digits, `-` and `_`, starting with a letter"
            ),
        ))
    }
}

/// The `[dependencies]` line of a Rust project.
fn guest_dependency(guest_path: Option<&Path>) -> Result<String, Failure> {
    Ok(match guest_path {
        None => format!("leadtime-guest = \"{}\"", env!("CARGO_PKG_VERSION")),
        Some(p) => {
            let abs = std::fs::canonicalize(p)
                .map_err(|e| Failure::new("io", format!("--guest-path {}: {e}", p.display())))?;
            if !abs.join("Cargo.toml").is_file() {
                return Err(Failure::new(
                    "bad-request",
                    format!("--guest-path {}: no Cargo.toml there", p.display()),
                ));
            }
            // A TOML basic string: backslashes (Windows paths), quotes and control characters
            // escaped, so any path makes a valid Cargo.toml.
            let path = toml_string(&abs.display().to_string());
            format!("leadtime-guest = {{ path = {path} }}")
        }
    })
}

/// Runs the command.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    // As `cargo new`: the last component of the path names the project.
    let name = args
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            Failure::new(
                "bad-request",
                format!(
                    "{}: the path must end in the project's name",
                    args.path.display()
                ),
            )
        })?
        .to_string();
    check_name(&name)?;
    let dir = args.dir.clone().unwrap_or_else(|| args.path.clone());
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Failure::new(
            "io",
            format!(
                "{} exists and is not empty; pick another name or --dir",
                dir.display()
            ),
        ));
    }
    if args.guest_path.is_some() && args.lang != Lang::Rust {
        return Err(Failure::new(
            "bad-request",
            "--guest-path is for Rust projects only",
        ));
    }
    let dependency = match args.lang {
        Lang::Rust => guest_dependency(args.guest_path.as_deref())?,
        _ => String::new(),
    };
    let krate = name.replace('-', "_");
    for (rel, template, executable) in files(args.lang) {
        let text = template
            .replace("{{name}}", &name)
            .replace("{{crate}}", &krate)
            .replace("{{guest_dependency}}", &dependency);
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::new("io", format!("creating {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| Failure::new("io", format!("writing {}: {e}", path.display())))?;
        if executable {
            make_executable(&path)?;
        }
    }
    let build = match args.lang {
        Lang::Rust => "cargo build --release --target wasm32-unknown-unknown".to_string(),
        Lang::C => "./build.sh".to_string(),
        Lang::Assemblyscript => "npm install && npm run build".to_string(),
    };
    let wasm = match args.lang {
        Lang::Rust => format!("target/wasm32-unknown-unknown/release/{krate}.wasm"),
        _ => "build/policy.wasm".to_string(),
    };
    println!("created {} ({:?} policy)", dir.display(), args.lang);
    println!("next:");
    println!("  cd {}", dir.display());
    println!("  {build}");
    println!("  leadtime test {wasm} --cases cases.yaml");
    Ok(ExitCode::SUCCESS)
}

/// `text` as a TOML basic string, quotes included.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Failure::new("io", format!("chmod {}: {e}", path.display())))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> Result<(), Failure> {
    Ok(())
}
