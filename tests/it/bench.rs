//! `plansync bench` as a user runs it: the real binary starts its emulator, runs the three
//! cases as child processes and prints one JSON object. Its call counts are deterministic and
//! are checked against the floor's formula; times and memory are only checked to be measured.

use serde_json::Value;

use super::common::{plansync, plansync_code};

/// Runs `plansync bench --scale 1 --json` and parses its report.
async fn bench_scale_1() -> Value {
    let (success, stdout, stderr) = plansync(&["bench", "--scale", "1", "--json"]).await;
    assert!(success, "plansync bench failed:\n{stderr}\n{stdout}");
    assert!(
        stderr.contains("bench: full: running plansync sync"),
        "{stderr}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("no JSON ({e}):\n{stdout}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The counts of a case that do not depend on time.
fn counts(case: &Value) -> Value {
    let mut c = case.clone();
    for timed in [
        "wall_ms",
        "cycle_ms",
        "cpu_ms",
        "rows_per_s",
        "peak_rss_kib",
    ] {
        c.as_object_mut().unwrap().remove(timed);
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_counts_calls_deterministically_against_the_composite_floor() {
    let first = bench_scale_1().await;
    assert_eq!(first["scale"], 1);
    assert_eq!(first["floor"]["kind"], "composite");
    let formula = first["floor"]["formula"].as_str().unwrap();
    assert!(
        formula.contains("ceil(rows pulled / 2000)") && formula.contains("ceil(pages / 5)"),
        "{formula}"
    );
    let org_rows = first["org_rows"].as_object().unwrap();
    assert_eq!(org_rows.len(), 7, "{org_rows:?}");
    assert_eq!(
        u(&first["org_rows_total"]),
        org_rows.values().map(u).sum::<u64>()
    );
    assert_eq!(org_rows["opportunity"], 200);

    let cases = first["cases"].as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c["case"].as_str().unwrap()).collect();
    assert_eq!(names, ["full", "one_percent", "unchanged", "quiet"]);
    for case in cases {
        let calls = &case["calls"];
        let kinds = [
            "token",
            "query",
            "next_page",
            "get_deleted",
            "get_updated",
            "limits",
            "write",
            "composite",
            "bulk",
            "describe",
            "other",
        ];
        assert_eq!(
            u(&calls["total"]),
            kinds.iter().map(|k| u(&calls[k])).sum::<u64>(),
            "{case}"
        );
        // Each case is a fresh process: one token.
        assert_eq!(calls["token"], 1, "{case}");
        // The floor, recomputed from the rows the case pulled and the records it wrote.
        let rows = case["rows_pulled"].as_object().unwrap();
        assert_eq!(rows.len(), 7, "{case}");
        let pages: u64 = rows.values().map(|r| u(r).div_ceil(2000).max(1)).sum();
        let written = u(&case["records_written"]);
        let floor = &case["floor"];
        assert_eq!(u(&floor["reads"]), pages.div_ceil(5), "{case}");
        assert_eq!(
            u(&floor["writes"]),
            written.div_ceil(200).div_ceil(5),
            "{case}"
        );
        assert_eq!(
            u(&floor["total"]),
            pages.div_ceil(5) + written.div_ceil(200).div_ceil(5) + 1,
            "{case}"
        );
        // Below the Bulk threshold no client reads or writes in fewer calls than the floor.
        assert_eq!(calls["bulk"], 0, "{case}");
        assert!(u(&calls["total"]) >= u(&floor["total"]), "{case}");
        // Reads and writes go through composite requests: no plain query, page or Collection.
        for plain in ["query", "next_page", "write", "get_deleted", "limits"] {
            assert_eq!(calls[plain], 0, "{plain}: {case}");
        }
        assert!(u(&case["peak_rss_kib"]) > 1024, "{case}");
        assert!(u(&case["wall_ms"]) > 0, "{case}");
        assert!(case["cpu_ms"].is_u64(), "{case}");
    }
    // The full sync pulls every row the org has, and writes (links and rollups).
    let full = &cases[0];
    assert_eq!(full["rows_pulled"].as_object().unwrap(), org_rows);
    assert!(u(&full["records_written"]) > 0, "{full}");
    // 1% of 200 opportunities changed before the second cycle, none before the third.
    assert_eq!(cases[1]["changed_opportunities"], 2);
    assert!(u(&cases[1]["rows_pulled"]["opportunity"]) >= 2);
    assert_eq!(cases[2]["changed_opportunities"], 0);
    assert_eq!(cases[2]["records_written"], 0, "{}", cases[2]);
    // An unchanged cycle: its reads in two composite calls, and the token.
    assert_eq!(cases[2]["calls"]["composite"], 2, "{}", cases[2]);
    assert_eq!(cases[2]["calls"]["total"], 3, "{}", cases[2]);
    // An hour on, the write-backs are behind the lookback window: nothing to read again.
    let quiet = &cases[3];
    assert_eq!(quiet["rows_pulled_total"], 0, "{quiet}");
    assert_eq!(quiet["records_written"], 0, "{quiet}");
    assert_eq!(quiet["calls"]["total"], 3, "{quiet}");

    // The same org and the same cycles cost the same calls, row for row.
    let second = bench_scale_1().await;
    let a: Vec<Value> = cases.iter().map(counts).collect();
    let b: Vec<Value> = second["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(counts)
        .collect();
    assert_eq!(a, b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_refuses_a_scale_of_zero_and_unknown_flags_and_documents_its_exit_status() {
    let (code, _, stderr) = plansync_code(&["bench", "--scale", "0"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("must be 1 or more"), "{stderr}");
    let (code, _, stderr) = plansync_code(&["bench", "--scale", "ten"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--scale 100"), "{stderr}");
    let (code, _, stderr) = plansync_code(&["bench", "--rows", "5"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--rows"), "{stderr}");
    let (code, _, stderr) = plansync_code(&["bench", "--", "sync"]).await;
    assert_eq!(code, 2, "{stderr}");
    let (success, help, _) = plansync(&["bench", "--help"]).await;
    assert!(success);
    assert!(
        help.contains("Exit status:") && help.contains("  0 "),
        "{help}"
    );
    assert!(help.contains("cargo run --release -- bench"), "{help}");
}
