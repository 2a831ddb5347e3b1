//! The real `plansync emulator` binary: first stdout line, serving, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn the_binary_prints_its_address_serves_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_plansync"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--seed", "empty"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let base = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let versions: serde_json::Value = reqwest::get(format!("{base}/services/data"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(versions[0]["version"], "31.0");
    let token = reqwest::Client::new()
        .post(format!("{base}/services/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", plansync::emulator::DEFAULT_CLIENT_ID),
            ("client_secret", plansync::emulator::DEFAULT_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), reqwest::StatusCode::OK);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn the_binary_refuses_a_non_loopback_address() {
    let output = Command::new(env!("CARGO_BIN_EXE_plansync"))
        .args(["emulator", "--listen", "0.0.0.0:0", "--seed", "empty"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--allow-remote"));
    let output = Command::new(env!("CARGO_BIN_EXE_plansync"))
        .args(["emulator", "--faults", "503=2"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("503=2"));
}
