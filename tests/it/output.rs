//! What the real binary writes where a user reads it: a closed pipe ends a command quietly,
//! and under systemd each log line carries its journal priority.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use plansync::emulator::Emulator;

use super::common::{plansync, write_config};

/// SIGPIPE's number on Linux.
const SIGPIPE: i32 = 13;

/// Runs the binary with its stdout on a pipe whose reading end is already closed, so that
/// its first write fails; returns its stderr after asserting a quiet, normal end.
fn run_into_closed_pipe(args: &[&str]) -> String {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_plansync"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{args:?}: {stderr}"
    );
    // Killed by SIGPIPE, like other Unix tools (the shell shows 141), or done already.
    assert!(
        output.status.success() || output.status.signal() == Some(SIGPIPE),
        "{args:?} ended with {}: {stderr}",
        output.status
    );
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_every_command_quietly() {
    let emulator = Emulator::builder().seed("demo").start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator);
    let config = config.to_str().unwrap().to_string();
    let (ok, _, stderr) = plansync(&["sync", "--config", &config]).await;
    assert!(ok, "{stderr}");

    let cases: Vec<Vec<&str>> = vec![
        vec!["status", "--json", "--config", &config],
        vec!["status", "--config", &config],
        vec!["writes", "list", "--config", &config],
        vec!["sync", "--dry-run", "--json", "--config", &config],
        vec!["completions", "bash"],
        vec!["--help"],
    ];
    for args in cases {
        tokio::task::block_in_place(|| run_into_closed_pipe(&args));
    }

    // Through a pipe a reader closes early, as `| head -c 10` does: the reader gets its bytes.
    let (reader, writer) = std::io::pipe().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_plansync"))
        .args(["status", "--json", "--config", &config])
        .env("RUST_LOG", "warn")
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 10];
    std::io::Read::read_exact(&mut &reader, &mut head).unwrap();
    drop(reader);
    assert_eq!(head[0], b'{', "{:?}", String::from_utf8_lossy(&head));
    let output = tokio::task::block_in_place(|| {
        drop(child.stdin.take());
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        (status, stderr)
    });
    assert!(!output.1.contains("panicked"), "{}", output.1);
    assert!(
        output.0.success() || output.0.signal() == Some(SIGPIPE),
        "{}: {}",
        output.0,
        output.1
    );
    emulator.shutdown().await;
}

/// Runs `plansync sync` with stderr in a file that `JOURNAL_STREAM` names, as systemd does
/// for a service whose stderr is the journal; returns the file's text.
fn sync_with_journal_stderr(config: &str, dir: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let path = dir.join("journal.log");
    let file = std::fs::File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_plansync"))
        .args(["sync", "--config", config])
        .args(extra)
        .env("RUST_LOG", "warn,plansync=info")
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env("PLANSYNC__HTTP__MAX_RETRIES", "0")
        .stdout(Stdio::null())
        .stderr(file)
        .status()
        .unwrap();
    (status.success(), std::fs::read_to_string(&path).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_journal_a_failed_run_is_an_error_line() {
    let emulator = Emulator::builder().seed("empty").start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator);
    let config = config.to_str().unwrap().to_string();

    // A run that succeeds: its one `run finished` line is info (<6>), with every field.
    let (ok, log) = tokio::task::block_in_place(|| {
        sync_with_journal_stderr(&config, dir.path(), &["--log-format", "json"])
    });
    assert!(ok, "{log}");
    let finished: Vec<&str> = log.lines().filter(|l| l.contains("run finished")).collect();
    assert_eq!(finished.len(), 1, "{log}");
    let line = finished[0];
    assert!(line.starts_with("<6>{"), "{line}");
    let json: serde_json::Value = serde_json::from_str(&line[3..]).unwrap();
    for field in [
        "kind",
        "outcome",
        "rows_pulled",
        "fields_written",
        "api_calls",
        "duration_ms",
    ] {
        assert!(!json["fields"][field].is_null(), "no {field} in {line}");
    }
    assert_eq!(json["fields"]["outcome"], "succeeded");
    assert!(json["fields"].get("error").is_none(), "{line}");
    // No field is an empty string.
    for (name, value) in json["fields"].as_object().unwrap() {
        assert_ne!(value, "", "{name} is empty in {line}");
    }
    // Every line has a priority.
    for line in log.lines() {
        assert!(
            ["<3>", "<4>", "<6>", "<7>"]
                .iter()
                .any(|p| line.starts_with(p)),
            "{line}"
        );
    }

    // The CRM is down: the run fails, and its line is an error (<3>) naming the cause.
    emulator.set_faults_str("503=1").unwrap();
    let (ok, log) =
        tokio::task::block_in_place(|| sync_with_journal_stderr(&config, dir.path(), &[]));
    assert!(!ok, "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("run finished"))
        .unwrap_or_else(|| panic!("no run finished line in\n{log}"));
    // JSON by itself, since JOURNAL_STREAM says systemd started it.
    assert!(line.starts_with("<3>{"), "{line}");
    let json: serde_json::Value = serde_json::from_str(&line[3..]).unwrap();
    assert_eq!(json["level"], "ERROR", "{line}");
    assert_eq!(json["fields"]["outcome"], "failed", "{line}");
    assert_eq!(json["fields"]["kind"], "incremental", "{line}");
    assert!(
        json["fields"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("503"),
        "{line}"
    );

    // Without JOURNAL_STREAM naming stderr, no prefix.
    let (_, _, stderr) = plansync(&["sync", "--config", &config]).await;
    assert!(!stderr.lines().any(|l| l.starts_with("<3>")), "{stderr}");
    emulator.shutdown().await;
}
