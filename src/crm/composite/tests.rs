//! The composite reads and writes against the emulator as a real HTTP server on 127.0.0.1,
//! counting the API calls it sees.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{json, Map, Value};
use url::Url;

use crate::crm::{AuthConfig, Backoff, CrmClient, CrmConfig, CrmError, PageRead, RecordWrite};
use crate::emulator::{Emulator, RunningEmulator};

fn client_for(emulator: &RunningEmulator) -> CrmClient {
    let config = CrmConfig {
        login_url: Url::parse(emulator.base_url()).unwrap(),
        instance_url: None,
        api_version: "62.0".into(),
        auth: AuthConfig::ClientCredentials {
            client_id: emulator.client_id().to_string(),
            client_secret: SecretString::from(emulator.client_secret().to_string()),
        },
        timeout: Duration::from_secs(30),
        max_retries: 2,
    };
    let backoff = Backoff {
        base: Duration::from_millis(1),
        max: Duration::from_millis(5),
    };
    CrmClient::with_backoff(config, backoff).unwrap()
}

/// The emulator with the demo seed at `scale`, and a client for it.
pub(crate) async fn demo(scale: u32) -> (RunningEmulator, CrmClient) {
    let emulator = Emulator::builder()
        .seed("demo")
        .scale(scale)
        .start()
        .await
        .unwrap();
    let client = client_for(&emulator);
    (emulator, client)
}

const OPPS: &str = "SELECT Id, Name, Amount, StageName, Account.Name FROM Opportunity";

#[tokio::test]
async fn five_query_operations_in_one_call_give_the_plain_pages() {
    // 2,400 opportunities: two pages of the default 2,000.
    let (emulator, client) = demo(12).await;
    client.authenticate().await.unwrap();

    let first = client.query(OPPS, false).await.unwrap();
    let next = first.next_records_url.clone().expect("more than one page");
    let second = client.query_more(&next).await.unwrap();
    assert!(second.done);

    let before = emulator.api_usage().0;
    let results = client
        .query_pages_composite(&[
            // Two chained pages asked for, one more than the query has.
            PageRead::query(OPPS, false, 2),
            PageRead::query("SELECT Id, Name FROM Account", true, 0),
            PageRead::query("SELECT Id FRM Account", false, 0),
        ])
        .await
        .unwrap();
    assert_eq!(
        emulator.api_usage().0,
        before + 1,
        "five query operations, one API call"
    );
    assert_eq!(
        client.api_usage().unwrap().used,
        before + 1,
        "Sforce-Limit-Info is read"
    );

    let opps = results[0].as_ref().unwrap();
    assert_eq!(opps.len(), 2, "the page after the last one is not there");
    assert_eq!(opps[0].records, first.records);
    assert_eq!(opps[0].total_size, 2400);
    assert!(!opps[0].done);
    assert_eq!(opps[1].records, second.records);
    assert!(opps[1].done);
    assert_eq!(opps[1].next_records_url, None);

    let accounts = results[1].as_ref().unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].total_size, 360);
    assert!(accounts[0].records[0].get("attributes").is_none());

    match &results[2] {
        Err(CrmError::Api {
            status, error_code, ..
        }) => {
            assert_eq!(*status, 400);
            assert_eq!(error_code, "MALFORMED_QUERY");
        }
        other => panic!("expected the query's own error, got {other:?}"),
    }

    // A next page by its nextRecordsUrl.
    let fresh = client.query(OPPS, false).await.unwrap();
    let results = client
        .query_pages_composite(&[PageRead::next(
            fresh.next_records_url.as_deref().unwrap(),
            0,
        )])
        .await
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap()[0].records, second.records);

    // More than five operations is refused before anything is sent.
    let calls = emulator.api_usage().0;
    let err = client
        .query_pages_composite(&[
            PageRead::query(OPPS, false, 3),
            PageRead::query(OPPS, false, 1),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, CrmError::InvalidRequest(_)), "{err}");
    assert_eq!(emulator.api_usage().0, calls);
    emulator.shutdown().await;
}

fn update(id: &str, stage: &str) -> RecordWrite {
    let mut fields = Map::new();
    fields.insert("StageName".into(), json!(stage));
    RecordWrite {
        object: "Opportunity".into(),
        id: Some(id.to_string()),
        fields,
    }
}

#[tokio::test]
async fn writes_go_1000_records_per_call_with_per_record_results() {
    let (emulator, client) = demo(6).await;
    client.authenticate().await.unwrap();
    let ids: Vec<String> = emulator.with_org(|org| {
        org.live_records("Opportunity")
            .take(1001)
            .map(|r| r["Id"].as_str().unwrap().to_string())
            .collect()
    });
    assert_eq!(ids.len(), 1001);
    let writes: Vec<RecordWrite> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            update(
                id,
                if i % 250 == 3 {
                    "No such stage"
                } else {
                    "Prospecting"
                },
            )
        })
        .collect();

    // The plain Collections answer for one bad row, to compare shapes.
    let plain = client.update(&writes[3..4]).await.unwrap();

    let before = emulator.api_usage().0;
    let results = client.update_composite(&writes).await.unwrap();
    assert_eq!(
        emulator.api_usage().0,
        before + 2,
        "1,001 records: two calls"
    );
    assert_eq!(results.len(), 1001);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.id.as_deref(), Some(ids[i].as_str()), "row {i}");
        assert_eq!(result.success, i % 250 != 3, "row {i}: {result:?}");
    }
    assert_eq!(
        results[3], plain[0],
        "the same per-record result as a plain Collection"
    );
    let prospecting = emulator.with_org(|org| {
        ids.iter()
            .filter(|id| org.get("Opportunity", id).unwrap()["StageName"] == "Prospecting")
            .count()
    });
    assert_eq!(prospecting, 1001 - 4, "rows 3, 253, 503 and 753 failed");

    // Creates: 450 records in one call, each result with its new Id.
    let creates: Vec<RecordWrite> = (0..450)
        .map(|n| {
            let mut fields = Map::new();
            fields.insert("Name".into(), json!(format!("Composite {n}")));
            RecordWrite {
                object: "Account".into(),
                id: None,
                fields,
            }
        })
        .collect();
    let before = emulator.api_usage().0;
    let created = client.create_composite(&creates).await.unwrap();
    assert_eq!(emulator.api_usage().0, before + 1);
    assert_eq!(created.len(), 450);
    let last_id = created[449].id.clone().unwrap();
    let name = emulator.with_org(|org| org.get("Account", &last_id).map(|r| r["Name"].clone()));
    assert_eq!(name, Some(Value::from("Composite 449")));
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_bad_record_fails_alone_and_keeps_its_id() {
    let (emulator, client) = demo(1).await;
    let ids: Vec<String> = emulator.with_org(|org| {
        org.live_records("Opportunity")
            .take(3)
            .map(|r| r["Id"].as_str().unwrap().to_string())
            .collect()
    });
    let mut writes: Vec<RecordWrite> = ids.iter().map(|id| update(id, "Prospecting")).collect();
    writes[1].fields.insert("NoSuchField__c".into(), json!(1));
    let results = client.update_composite(&writes).await.unwrap();
    assert_eq!(results.len(), 3);
    assert!(results[0].success && results[2].success);
    assert!(!results[1].success);
    assert_eq!(results[1].id.as_deref(), Some(ids[1].as_str()));
    assert!(!results[1].errors.is_empty());
    emulator.shutdown().await;
}

#[tokio::test]
async fn upserts_by_external_id_report_created_then_updated() {
    let (emulator, client) = demo(1).await;
    let plan: String = emulator.with_org(|org| {
        org.live_records("Account_Plan__c").next().unwrap()["Id"]
            .as_str()
            .unwrap()
            .to_string()
    });
    let snapshots = |won: i64| -> Vec<RecordWrite> {
        (0..3)
            .map(|n| {
                let mut fields = Map::new();
                fields.insert(
                    "Snapshot_Key__c".into(),
                    json!(format!("{plan}-2026-0{}", n + 1)),
                );
                fields.insert("Account_Plan__c".into(), json!(plan));
                fields.insert(
                    "Snapshot_Date__c".into(),
                    json!(format!("2026-0{}-01", n + 1)),
                );
                fields.insert("Won_Amount__c".into(), json!(won));
                RecordWrite {
                    object: "Account_Plan_Snapshot__c".into(),
                    id: None,
                    fields,
                }
            })
            .collect()
    };
    let first = client
        .upsert_composite(
            "Account_Plan_Snapshot__c",
            "Snapshot_Key__c",
            &snapshots(10),
        )
        .await
        .unwrap();
    assert!(
        first.iter().all(|r| r.success && r.created == Some(true)),
        "{first:?}"
    );
    let second = client
        .upsert_composite(
            "Account_Plan_Snapshot__c",
            "Snapshot_Key__c",
            &snapshots(20),
        )
        .await
        .unwrap();
    assert!(
        second.iter().all(|r| r.success && r.created == Some(false)),
        "{second:?}"
    );
    assert_eq!(first[2].id, second[2].id);
    let won = emulator.with_org(|org| {
        org.get("Account_Plan_Snapshot__c", second[2].id.as_deref().unwrap())
            .unwrap()["Won_Amount__c"]
            .to_string()
    });
    assert_eq!(won, "20");
    emulator.shutdown().await;
}
