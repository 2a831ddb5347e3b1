//! The command line as operators script it: exit statuses in `--help`, completions of
//! `--object`, and one documented JSON object per command with `--json`.

use super::common::{plansync, plansync_code};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_help_states_its_exit_status() {
    for command in [
        vec!["sync"],
        vec!["resync"],
        vec!["snapshot"],
        vec!["run"],
        vec!["status"],
        vec!["explain"],
        vec!["plan"],
        vec!["writes"],
        vec!["writes", "list"],
        vec!["doctor"],
        vec!["demo"],
        vec!["emulator"],
        vec!["completions"],
    ] {
        let mut args = command.clone();
        args.push("--help");
        let (success, out, err) = plansync(&args).await;
        assert!(success, "{err}");
        assert!(out.contains("Exit status:"), "{command:?} --help:\n{out}");
        assert!(out.contains("  0 "), "{command:?} --help:\n{out}");
    }
    let (_, run_help, _) = plansync(&["run", "--help"]).await;
    assert!(run_help.contains("130"), "{run_help}");
    let (_, sync_help, _) = plansync(&["sync", "--help"]).await;
    assert!(sync_help.contains("3    stopped early"), "{sync_help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_names_complete_and_a_wrong_one_exits_2_naming_them() {
    let (success, bash, err) = plansync(&["completions", "bash"]).await;
    assert!(success, "{err}");
    let object_case = bash
        .split("--object)")
        .nth(1)
        .and_then(|rest| rest.split(";;").next())
        .unwrap_or_default();
    for name in [
        "account",
        "plan",
        "plan_account",
        "opportunity",
        "contact",
        "task",
        "event",
    ] {
        assert!(object_case.contains(name), "{name} missing:\n{object_case}");
    }
    let (code, _, err) = plansync_code(&["resync", "--object", "Widget__c"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("plan_account"), "{err}");
}
