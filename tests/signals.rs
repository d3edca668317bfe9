//! `Modes::signal_traps(false)`, for a host process where other code sets the fault signals'
//! handlers after the engine is made (Python's `faulthandler.enable()`, Ray, some JVMs): every
//! corpus module still ends as its header says once SIGILL, SIGFPE, SIGSEGV and SIGBUS are back
//! to their defaults, where under signal traps (the default) the same trap ends the process
//! (shown in a child process).

use leadtime::{Engine, ErrorKind, Modes, Params, Source};
use leadtime_tests::{
    assert_good_policy_still_answers, corpus_files, corpus_outcome, expectation, fixture, replicas,
    request,
};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

/// Set in the child process of [`with_signal_traps_a_trap_then_ends_the_process`].
const CHILD: &str = "LEADTIME_SIGNALS_CHILD";

const FAULTS: [libc::c_int; 4] = [libc::SIGILL, libc::SIGFPE, libc::SIGSEGV, libc::SIGBUS];

/// What a runtime that installs its handlers after ours, without handing faults on, amounts to.
fn take_the_fault_signals() {
    for signal in FAULTS {
        // SAFETY: setting a signal's disposition to its default is always sound.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
}

#[test]
fn without_signal_traps_traps_are_typed_errors_whoever_owns_the_signals() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let engine = Engine::builder()
        .modes(Modes::new().signal_traps(false))
        .build()
        .unwrap();
    take_the_fault_signals();
    let files = corpus_files();
    assert!(files.len() >= 25, "corpus has only {} modules", files.len());
    let mut failures = Vec::new();
    let mut traps = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let want = expectation(&text);
        traps += usize::from(want == "trap" || want == "stack-overflow");
        let got = corpus_outcome(&engine, path);
        if got != want {
            failures.push(format!("{}: expected {want}, got {got}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(traps >= 5, "the corpus has only {traps} trapping modules");
    assert_good_policy_still_answers(&engine);
}

#[test]
fn with_signal_traps_a_trap_then_ends_the_process() {
    let trap = || {
        let engine = Engine::builder().modes(&Modes::new()).build().unwrap();
        let path = fixture("adversarial/divide_by_zero.wat");
        let mut policy = engine.load(Source::file(&path), Params::new()).unwrap();
        let req = request(&[10.0], 10.0, replicas(2, 1, 10));
        // wasmtime's handlers turn the fault into an error...
        assert_eq!(policy.decide(&req).unwrap_err().kind(), ErrorKind::Trap);
        // ...until another runtime takes the signals.
        take_the_fault_signals();
        let _ = policy.decide(&req);
    };
    if std::env::var_os(CHILD).is_some() {
        trap();
        return;
    }
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "with_signal_traps_a_trap_then_ends_the_process",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap()
        .status;
    let signal = status.signal();
    assert!(
        signal == Some(libc::SIGFPE) || signal == Some(libc::SIGILL),
        "the child ended with {status:?}: the trap did not end it"
    );
}
