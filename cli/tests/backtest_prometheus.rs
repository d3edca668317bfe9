//! `leadtime backtest --prometheus`: a trace read from a real Prometheus holding four days of
//! history (written with `promtool tsdb create-blocks-from openmetrics`, a two-hour gap in it),
//! served over TLS with basic auth (`--web.config.file`), in pages under its point limit; and the
//! same table from the trace `--save-trace` wrote, byte for byte.

mod common;

use common::{leadtime, stderr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";
/// Four days at one minute, ending an hour ago (inside the default retention).
const DAYS: i64 = 4;

struct Server {
    child: Child,
    url: String,
    dir: PathBuf,
    end: i64,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (`make setup` installs it)"));
    assert!(out.status.success(), "{program} {args:?}: {}", stderr(&out));
}

/// History of `load{workload="web"}` (a daily cycle with a gap from hour 30 to 32) and of
/// `split{pod="a"|"b"}` (two series), a real Prometheus over it, TLS and basic auth in front.
fn start() -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("leadtime-bt-prom-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let end = now / 60 * 60 - 3600;
    let mut om = String::from("# TYPE load gauge\n");
    let minutes = DAYS * 1440;
    for i in 0..=minutes {
        let t = end - (minutes - i) * 60;
        if (30 * 60..32 * 60).contains(&i) {
            continue;
        }
        let day = (t % 86_400) as f64 / 86_400.0;
        let v = 200.0 + 100.0 * (std::f64::consts::TAU * day).sin() + (i % 7) as f64;
        om.push_str(&format!("load{{workload=\"web\"}} {v:.3} {t}\n"));
    }
    // A second workload without a daily cycle: bursts every few hours.
    for i in 0..=minutes {
        let t = end - (minutes - i) * 60;
        let v = 100.0 + if i % 240 < 20 { 300.0 } else { (i % 13) as f64 };
        om.push_str(&format!("load{{workload=\"api\"}} {v:.3} {t}\n"));
    }
    om.push_str("# TYPE split gauge\n");
    for pod in ["a", "b"] {
        for i in 0..=120 {
            let t = end - (120 - i) * 60;
            om.push_str(&format!("split{{pod=\"{pod}\"}} 1 {t}\n"));
        }
    }
    // Ready times of five pods (kube-state-metrics' ready time less created time, as a gauge).
    om.push_str("# TYPE ready_seconds gauge\n");
    for (n, seconds) in [60, 90, 120, 240, 600].iter().enumerate() {
        for i in 0..=30 {
            let t = end - 86_400 + (n as i64 * 3600) + i * 60;
            om.push_str(&format!("ready_seconds{{pod=\"web-{n}\"}} {seconds} {t}\n"));
        }
    }
    om.push_str("# EOF\n");
    std::fs::write(dir.join("history.om"), om).unwrap();
    run(
        &dir,
        "promtool",
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "history.om",
            "data",
        ],
    );
    // A CA, and the server's certificate for localhost signed by it (as serve/README.md says).
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1";
    for command in [
        format!("req -x509 {ec} -subj /CN=test-ca -keyout ca.key -out ca.crt"),
        format!(
            "req {ec} -subj /CN=localhost -addext subjectAltName=DNS:localhost \
             -keyout server.key -out server.csr"
        ),
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -days 1 -copy_extensions copy \
         -out server.crt"
            .to_string(),
    ] {
        let words: Vec<&str> = command.split_whitespace().collect();
        run(&dir, "openssl", &words);
    }
    std::fs::write(dir.join("password"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(dir.join("wrong"), "hunter2\n").unwrap();
    std::fs::write(
        dir.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  leadtime: {}\n",
            bcrypt::hash(PASSWORD, 4).unwrap()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("prometheus.yml"), "scrape_configs: []\n").unwrap();
    let child = Command::new("prometheus")
        .current_dir(&dir)
        .args([
            "--config.file=prometheus.yml",
            "--web.config.file=web.yml",
            "--storage.tsdb.path=data",
            "--storage.tsdb.retention.time=30d",
            &format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("`prometheus` is not on PATH: run `make setup`");
    Server {
        child,
        url: format!("https://localhost:{port}"),
        dir,
        end,
    }
}

/// `leadtime backtest` reading `query` from `server` with `password_file`, plus `extra` flags;
/// retried while Prometheus is still starting (at most 30 s).
fn backtest(
    server: &Server,
    query: &str,
    password_file: &str,
    extra: &[&str],
) -> std::process::Output {
    let (ca, password, end) = (
        server.dir.join("ca.crt"),
        server.dir.join(password_file),
        server.end.to_string(),
    );
    let mut args = vec![
        "backtest",
        "--prometheus",
        &server.url,
        "--prometheus-ca-file",
        ca.to_str().unwrap(),
        "--prometheus-username",
        "leadtime",
        "--prometheus-password-file",
        password.to_str().unwrap(),
        "--query",
        query,
        "--end",
        &end,
    ];
    args.extend_from_slice(extra);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = leadtime(&args);
        let starting = stderr(&out).contains("unreachable");
        if !starting || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

const POLICIES: &[&str] = &[
    "--policy",
    "hpa",
    "--policy",
    "target-tracking",
    "--ready-time",
    "5m",
    "--peak-pods",
    "20",
];

#[test]
fn a_trace_from_prometheus_backtests_as_the_file_it_saves() {
    let server = start();
    let saved = server.dir.join("web.csv");
    // 30 s steps over four days: 11,521 points, over Prometheus' 11,000 for one query.
    let mut extra = vec![
        "--range",
        "4d",
        "--step",
        "30s",
        "--save-trace",
        saved.to_str().unwrap(),
    ];
    extra.extend_from_slice(POLICIES);
    let online = backtest(&server, r#"load{workload="web"}"#, "password", &extra);
    assert!(online.status.success(), "{}", stderr(&online));

    let mut offline_args = vec!["backtest", "--trace", saved.to_str().unwrap()];
    offline_args.extend_from_slice(POLICIES);
    let offline = leadtime(&offline_args);
    assert!(offline.status.success(), "{}", stderr(&offline));
    // Byte for byte, but for the column of measured call times (µs), which no two runs share.
    let without_timing = |out: &std::process::Output| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                match words
                    .iter()
                    .position(|w| w.contains('/') && w.contains(|c: char| c.is_ascii_digit()))
                {
                    Some(i) => [&words[..i], &words[i + 1..]].concat().join(" "),
                    None => line.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        without_timing(&online),
        without_timing(&offline),
        "the same table from Prometheus and from the saved trace"
    );
    assert!(String::from_utf8_lossy(&online.stdout).starts_with("web.csv: 11521 decisions"));

    // The gap stays a gap: no row inside it (2 h of data missing, 5 min of staleness around).
    let text = std::fs::read_to_string(&saved).unwrap();
    let rows = text.lines().count() - 1;
    let all = (DAYS * 2880 + 1) as usize;
    assert!(
        rows < all - 200 && rows > all - 300,
        "{rows} rows of {all} grid points"
    );
    assert!(text.starts_with("timestamp,value\n"), "{}", &text[..80]);
}

#[test]
fn bad_input_says_what_is_wrong_and_ready_times_come_from_the_cluster() {
    let server = start();
    // Every pod seen over the range counts once, with its ready time.
    let ready = backtest(
        &server,
        r#"load{workload="web"}"#,
        "password",
        &[
            "--range",
            "2d",
            "--ready-query",
            "ready_seconds",
            "--policy",
            "hpa",
            "--peak-pods",
            "20",
        ],
    );
    assert!(ready.status.success(), "{}", stderr(&ready));
    let table = String::from_utf8_lossy(&ready.stdout);
    assert!(table.contains("ready time 5 observed samples"), "{table}");

    let mut extra = vec!["--range", "1d"];
    extra.extend_from_slice(POLICIES);
    // More than Prometheus holds: what came back is said, and the run goes on with it.
    let mut long = vec!["--range", "10d"];
    long.extend_from_slice(POLICIES);
    let short = backtest(&server, r#"load{workload="web"}"#, "password", &long);
    assert!(short.status.success(), "{}", stderr(&short));
    assert!(
        stderr(&short).contains("asked for 10.0 days of history, Prometheus had 4.0"),
        "{}",
        stderr(&short)
    );
    // Too little history for a daily cycle: said, and the run goes on.
    let day = backtest(&server, r#"load{workload="web"}"#, "password", &extra);
    assert!(day.status.success(), "{}", stderr(&day));
    assert!(
        stderr(&day).contains("under the two days the predictive policy learns a daily cycle from"),
        "{}",
        stderr(&day)
    );
    // Credentials refused: said so, and nothing of the password.
    let refused = backtest(&server, r#"load{workload="web"}"#, "wrong", &extra);
    assert!(!refused.status.success());
    let text = stderr(&refused);
    assert!(
        text.contains("401") && text.contains("credentials"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    // Two series: their count and the label that tells them apart.
    let several = backtest(&server, "split", "password", &extra);
    let text = stderr(&several);
    assert!(!several.status.success());
    assert!(
        text.contains("returned 2 series") && text.contains(r#"differ in pod: "a", "b""#),
        "{text}"
    );
    assert!(text.contains("sum(split)"), "{text}");
    // Nothing there: said so, with where to look.
    let none = backtest(&server, "absent_metric", "password", &extra);
    let text = stderr(&none);
    assert!(!none.status.success());
    assert!(
        text.contains("returned no data") && text.contains("retention"),
        "{text}"
    );
}

#[test]
fn a_fleet_of_scaled_objects_as_kubectl_prints_them() {
    let server = start();
    let objects = common::repo("testdata/fleet/scaledobjects.yaml");
    let (ca, end) = (server.dir.join("ca.crt"), server.end.to_string());
    let password = server.dir.join("password");
    let report = server.dir.join("report");
    let args = [
        "fleet",
        "--report",
        report.to_str().unwrap(),
        objects.to_str().unwrap(),
        "--prometheus",
        &server.url,
        "--prometheus-ca-file",
        ca.to_str().unwrap(),
        "--prometheus-username",
        "leadtime",
        "--prometheus-password-file",
        password.to_str().unwrap(),
        "--range",
        "4d",
        "--end",
        &end,
        "--json",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let out = leadtime(&args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !text.contains("unreachable") || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<&str> = json["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["workload"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["shop/api", "shop/web"], "{json}");
    for w in json["workloads"].as_array().unwrap() {
        // Each against the HPA at its own cost, from the trigger's own settings.
        assert!(w["days"].as_f64().unwrap() > 3.9, "{w}");
        assert!(["helps", "hurts", "even", "outside"].contains(&w["verdict"].as_str().unwrap()));
        let source = if w["workload"] == "shop/web" {
            "leadtime"
        } else {
            "prometheus"
        };
        assert_eq!(w["source"], source, "{w}");
    }
    let web = json["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workload"] == "shop/web")
        .unwrap();
    assert_eq!(web["ready"], "240s", "readySeconds of the trigger: {web}");
    // The workload whose query gives two series is named with why; the rest still ran.
    assert_eq!(json["failed"][0]["workload"], "shop/split", "{json}");
    assert!(json["failed"][0]["error"]
        .as_str()
        .unwrap()
        .contains("returned 2 series"));
    // The cpu trigger is listed as skipped, with why.
    assert_eq!(json["skipped"][0]["object"], "jobs/batch", "{json}");
    assert_eq!(json["skipped"][0]["trigger"], "cpu");
    // The report: the fleet's table linking each workload's own backtest report.
    let index = std::fs::read_to_string(report.join("index.html")).unwrap();
    for (name, file) in [("shop/web", "shop_web.html"), ("shop/api", "shop_api.html")] {
        assert!(
            index.contains(&format!("<a href=\"{file}\">{name}</a>")),
            "{index}"
        );
        let page = std::fs::read_to_string(report.join(file)).unwrap();
        assert!(page.contains("<svg") && page.contains(name), "{file}");
    }
    assert!(
        index.contains("jobs/batch (cpu trigger): skipped"),
        "{index}"
    );

    // The table: a row per workload, then the warnings with what was skipped and why.
    let text = leadtime(&args[..args.len() - 1]);
    let table = String::from_utf8_lossy(&text.stdout);
    assert!(table.starts_with("workload"), "{table}");
    assert!(table.contains("of 2 workloads under-provisioned for less time than the HPA"));
    assert!(table.contains("shop/split: not backtested:"), "{table}");
    assert!(
        table.contains("jobs/batch (cpu trigger): skipped:"),
        "{table}"
    );
}
