//! Bulk query jobs against the emulator as a real HTTP server on 127.0.0.1, and the CSV
//! reading on its own.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{parse_csv, parse_csv_records, ColumnType, ColumnTypes};
use crate::crm::composite::tests::demo;
use crate::crm::{BulkOptions, BulkQuery, CrmClient};

fn fast(max_records: usize) -> BulkOptions {
    BulkOptions {
        max_records,
        poll_initial: Duration::from_millis(1),
        poll_max: Duration::from_millis(5),
        max_wait: Duration::from_secs(30),
    }
}

async fn types(client: &CrmClient) -> ColumnTypes {
    let mut types = ColumnTypes::default();
    types.add_describe("", &client.describe("Opportunity").await.unwrap());
    types.add_describe("Account.", &client.describe("Account").await.unwrap());
    types
}

const SOQL: &str = "SELECT Id, Name, Amount, Probability, CloseDate, IsClosed, CreatedDate, \
                    NextStep, AccountId, Account.Name FROM Opportunity";

#[tokio::test]
async fn a_bulk_query_gives_the_rest_records_set_by_set() {
    let (emulator, client) = demo(12).await;
    let types = types(&client).await;

    let mut rest: Vec<Map<String, Value>> = Vec::new();
    let mut page = client.query(SOQL, false).await.unwrap();
    loop {
        rest.extend(page.records.clone());
        match page.next_records_url.clone() {
            Some(next) => page = client.query_more(&next).await.unwrap(),
            None => break,
        }
    }
    assert_eq!(rest.len(), 2400);

    let before = emulator.api_usage().0;
    let query = client
        .bulk_query(SOQL, false, &types, &fast(1000))
        .await
        .unwrap();
    let BulkQuery::Ready(mut results) = query else {
        panic!("the emulator runs bulk queries: {query:?}");
    };
    assert_eq!(results.total(), 2400);
    assert_eq!(results.object(), "Opportunity");
    let mut bulk: Vec<Map<String, Value>> = Vec::new();
    let mut sets = 0;
    while let Some(page) = results.next_page().await.unwrap() {
        sets += 1;
        assert!(page.records.len() <= 1000);
        assert_eq!(page.done, bulk.len() + page.records.len() == 2400);
        bulk.extend(page.records);
    }
    assert_eq!(sets, 3);
    assert_eq!(
        results.next_page().await.unwrap(),
        None,
        "nothing after the last set"
    );
    assert_eq!(
        emulator.api_usage().0,
        before + 1 + 2 + 3,
        "create, two polls, three result sets"
    );
    assert_eq!(bulk.len(), rest.len());
    for (b, r) in bulk.iter().zip(&rest) {
        assert_eq!(b, r, "the same JSON record as the REST page");
    }
    assert!(bulk.iter().any(|r| r["NextStep"].is_null()));
    assert!(bulk.iter().any(|r| r["IsClosed"] == json!(true)));

    let job_id = results.job_id().to_string();
    results.delete().await.unwrap();
    let gone = client.bulk_job_info(&job_id).await.unwrap_err();
    assert_eq!(gone.status(), Some(404));
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_large_result_set_is_handed_out_a_rest_page_at_a_time() {
    let (emulator, client) = demo(12).await;
    let types = types(&client).await;
    let query = client
        .bulk_query(SOQL, false, &types, &fast(5000))
        .await
        .unwrap();
    let BulkQuery::Ready(mut results) = query else {
        panic!("the emulator runs bulk queries: {query:?}");
    };
    let before = emulator.api_usage().0;
    let mut pages = Vec::new();
    while let Some(page) = results.next_page().await.unwrap() {
        pages.push((page.records.len(), page.done));
    }
    // One set of 2,400 rows, one download: parsed as two pages, the last one done.
    assert_eq!(pages, [(2000, false), (400, true)]);
    assert_eq!(emulator.api_usage().0, before + 1, "one result set");
    emulator.shutdown().await;
}

#[tokio::test]
async fn refusals_and_failed_jobs_signal_a_fallback_to_rest() {
    let (emulator, client) = demo(1).await;
    let types = ColumnTypes::default();

    emulator.bulk().refuse_objects(&["Task"]);
    match client
        .bulk_query("SELECT Id FROM Task", false, &types, &fast(100))
        .await
        .unwrap()
    {
        BulkQuery::Refused(r) => {
            assert_eq!(r.code, "INVALIDENTITY");
            assert_eq!(r.message, "Task is not supported by the Bulk API");
        }
        BulkQuery::Ready(_) => panic!("Task is refused"),
    }
    match client
        .bulk_query(
            "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
            false,
            &types,
            &fast(100),
        )
        .await
        .unwrap()
    {
        BulkQuery::Refused(r) => assert_eq!(r.code, "API_ERROR"),
        BulkQuery::Ready(_) => panic!("subqueries are refused"),
    }
    emulator.bulk().fail_jobs(true);
    match client
        .bulk_query("SELECT Id FROM Account", true, &types, &fast(100))
        .await
        .unwrap()
    {
        BulkQuery::Refused(r) => assert_eq!(r.code, "Failed"),
        BulkQuery::Ready(_) => panic!("the job fails"),
    }
    emulator.bulk().fail_jobs(false);

    // Other errors are errors, not refusals: a malformed query is the caller's to fix.
    let err = client
        .bulk_query("SELECT Id FRM Account", false, &types, &fast(100))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some("MALFORMED_QUERY"));
    emulator.shutdown().await;
}

#[test]
fn csv_fields_quotes_line_breaks_and_nulls() {
    let text =
        "\"Id\",\"Note\",\"N\"\r\n\"a\",\"say \"\"hi\"\", then\r\nbye\",\r\n\"b\",,\"3\"\r\n";
    let rows = parse_csv(text, ',').unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1][1].as_deref(), Some("say \"hi\", then\r\nbye"));
    assert_eq!(rows[1][2], None);
    assert_eq!(rows[2], [Some("b".into()), None, Some("3".into())]);
    assert!(parse_csv("\"a\",\"unclosed\n", ',').is_err());
    assert!(parse_csv("\"a\"x,\"b\"\n", ',').is_err());
    let pipes = parse_csv("\"a|b\"|\"c\"\n", '|').unwrap();
    assert_eq!(pipes[0], [Some("a|b".into()), Some("c".into())]);
}

#[test]
fn records_are_typed_and_parents_nested() {
    let mut types = ColumnTypes::default();
    types.set("Amount", ColumnType::Number);
    types.set("IsWon", ColumnType::Boolean);
    types.set("CreatedDate", ColumnType::DateTime);
    types.set("Account.AnnualRevenue", ColumnType::Number);
    let text =
        "\"Id\",\"Amount\",\"IsWon\",\"CreatedDate\",\"Account.Name\",\"Account.AnnualRevenue\"\n\
                \"006A\",\"1250.50\",\"true\",\"2024-05-01T10:00:00.000Z\",\"Acme\",\"2500000\"\n\
                \"006B\",,\"false\",,,\n";
    let records = parse_csv_records(text, ',', &types).unwrap();
    // Numbers keep their written form ("1250.50"), as the REST page's arbitrary-precision
    // JSON does.
    assert_eq!(
        Value::Object(records[0].clone()).to_string(),
        "{\"Id\":\"006A\",\"Amount\":1250.50,\"IsWon\":true,\
         \"CreatedDate\":\"2024-05-01T10:00:00.000+0000\",\
         \"Account\":{\"Name\":\"Acme\",\"AnnualRevenue\":2500000}}"
    );
    assert_eq!(
        Value::Object(records[1].clone()),
        json!({"Id": "006B", "Amount": null, "IsWon": false, "CreatedDate": null, "Account": null})
    );
    types.set("Id", ColumnType::Boolean);
    assert!(parse_csv_records(text, ',', &types)
        .unwrap_err()
        .contains("column Id"));
    assert!(parse_csv_records("\"A\",\"B\"\n\"1\"\n", ',', &ColumnTypes::default()).is_err());
}
