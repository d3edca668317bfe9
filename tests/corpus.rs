//! Every module in `tests/adversarial/` states what must happen to it on its first line
//! (`;; expect: <error-kind>` or `;; expect: ok <replicas>`). Each runs under the default
//! limits; after each, a good policy on the same engine must still work.

use leadtime::Source;
use leadtime::{Engine, Limits, Params};
use leadtime_tests::{corpus_files, corpus_outcome, expectation, fixture, replicas, request};

#[test]
fn every_corpus_module_ends_as_its_header_says() {
    let engine = Engine::new(&Limits::default()).unwrap();
    let mut good = engine
        .load(Source::builtin("target-tracking"), Params::new())
        .unwrap();
    let good_req = request(&[95.0], 10.0, replicas(2, 1, 20));

    let files = corpus_files();
    assert!(files.len() >= 25, "corpus has only {} modules", files.len());

    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let want = expectation(&text);
        let got = corpus_outcome(&engine, path);
        if got != want {
            failures.push(format!("{}: expected {want}, got {got}", path.display()));
        }
        // The host is unharmed: the good policy still answers.
        assert_eq!(
            good.decide(&good_req).unwrap().replicas,
            10,
            "after {}",
            path.display()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn garbage_truncated_and_oversized_modules_are_invalid() {
    let engine = Engine::new(Limits::new().module_bytes(1 << 20)).unwrap();
    let good = wat::parse_file(fixture("adversarial/ok_fixed.wat")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x7fELF definitely not wasm".to_vec()),
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("over the size cap", {
            let mut big = good.clone();
            // A custom section of 2 MiB keeps it valid wasm, only too large.
            big.extend_from_slice(&custom_section(2 << 20));
            big
        }),
    ];
    for (what, bytes) in cases {
        let err = match engine.load(Source::bytes(what, &bytes), Params::new()) {
            Ok(_) => panic!("{what}: loaded"),
            Err(e) => e,
        };
        assert_eq!(
            err.kind(),
            leadtime::ErrorKind::InvalidModule,
            "{what}: {err}"
        );
    }
}

fn custom_section(size: usize) -> Vec<u8> {
    let name = b"pad";
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name);
    body.resize(size, 0);
    let mut out = vec![0u8];
    let mut n = body.len();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend(body);
    out
}
