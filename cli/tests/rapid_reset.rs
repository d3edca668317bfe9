//! HTTP/2 rapid reset against the real `leadtime serve`: h2 ends each such connection (GOAWAY),
//! and its warning, one per connection, reaches the log at most once a minute.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Opens a connection and resets streams as fast as it opens them until the server ends the
/// connection; whether it did (GOAWAY or reset) within 2,000 streams.
async fn rapid_reset(addr: SocketAddr) -> bool {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(connection);
    for _ in 0..2_000 {
        let request = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        let ready = match client.ready().await {
            Ok(ready) => ready,
            Err(_) => break,
        };
        client = ready;
        let Ok((_, mut stream)) = client.send_request(request, false) else {
            break;
        };
        stream.send_reset(h2::Reason::CANCEL);
    }
    // The connection task ends with the server's GOAWAY.
    matches!(
        tokio::time::timeout(Duration::from_secs(5), driver).await,
        Ok(Ok(Err(_)))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_connections_are_ended_and_logged_once() {
    let (grpc, http) = (free_port(), free_port());
    let mut server = Command::new(env!("CARGO_BIN_EXE_leadtime"))
        .args(["serve", "--insecure", "--prometheus", "http://127.0.0.1:9"])
        .args([
            "--listen",
            &grpc.to_string(),
            "--http-listen",
            &http.to_string(),
        ])
        .env_remove("LEADTIME_LOG")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(grpc).await.is_err() {
        assert!(Instant::now() < deadline, "the scaler did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut ended = 0;
    for _ in 0..10 {
        if rapid_reset(grpc).await {
            ended += 1;
        }
    }
    terminate(server.id());
    let _ = server.wait();
    let mut log = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    // The attack happened: h2 ended the connections.
    assert!(
        ended >= 5,
        "only {ended} of 10 connections were ended:\n{log}"
    );
    let warnings = log.lines().filter(|l| l.contains("reached limit")).count();
    assert_eq!(
        warnings, 1,
        "rapid-reset warnings for {ended} connections:\n{log}"
    );
}

/// SIGTERM, as Kubernetes stops the scaler.
fn terminate(pid: u32) {
    Command::new("kill").arg(pid.to_string()).status().unwrap();
}
