//! The REST resources: paging, collections chunking and results, upserts, limits and
//! `Sforce-Limit-Info`, getDeleted, describe and versions.

use chrono::TimeZone;

use super::*;

#[tokio::test]
async fn paging_follows_next_records_url() {
    let s = crm(|seen| {
        let page = |ids: &[&str], next: Option<&str>| {
            let records: Vec<Value> = ids
                .iter()
                .map(|id| json!({"attributes": {"type": "Opportunity", "url": format!("/x/{id}")}, "Id": id}))
                .collect();
            let mut body = json!({"totalSize": 5, "done": next.is_none(), "records": records});
            if let Some(n) = next {
                body["nextRecordsUrl"] = json!(n);
            }
            Reply::json(200, body)
        };
        match seen.path.as_str() {
            "/services/data/v62.0/queryAll" => page(&["a", "b"], Some("/services/data/v62.0/query/01g000000000001AAA-2")),
            "/services/data/v62.0/query/01g000000000001AAA-2" => {
                page(&["c", "d"], Some("/services/data/v62.0/query/01g000000000001AAA-4"))
            }
            "/services/data/v62.0/query/01g000000000001AAA-4" => page(&["e"], None),
            _ => Reply::json(404, json!([{"errorCode": "NOT_FOUND", "message": "no"}])),
        }
    })
    .await;
    let client = s.client();
    let soql = "SELECT Id FROM Opportunity WHERE SystemModstamp >= 2024-01-01T00:00:00.000Z";
    let mut page = client.query(soql, true).await.unwrap();
    let mut ids = Vec::new();
    loop {
        assert_eq!(page.total_size, 5);
        ids.extend(
            page.records
                .iter()
                .map(|r| r["Id"].as_str().unwrap().to_string()),
        );
        match page.next_records_url.clone() {
            Some(next) => page = client.query_more(&next).await.unwrap(),
            None => break,
        }
    }
    assert_eq!(ids, ["a", "b", "c", "d", "e"]);
    let sent = s.data_requests();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0].query, vec![("q".to_string(), soql.to_string())]);
    assert!(sent[1].query.is_empty() && sent[2].query.is_empty());

    // An absolute next URL on the instance host is fine; another host is refused.
    let absolute = format!("{}services/data/v62.0/query/01g000000000001AAA-4", s.url);
    assert_eq!(client.query_more(&absolute).await.unwrap().records.len(), 1);
    for bad in [
        "https://evil.example/services/data/v62.0/query/x",
        "/etc/passwd",
        "query/x",
    ] {
        assert!(
            matches!(
                client.query_more(bad).await,
                Err(CrmError::InvalidRequest(_))
            ),
            "{bad}"
        );
    }
}

/// Answers a collections request: one result per record, failing every record whose
/// `Name` ends in `7`, with `created` for upserts.
fn collections_reply(seen: &Seen, upsert: bool) -> Reply {
    let body = seen.json();
    let records = body["records"].as_array().unwrap();
    let results: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let name = r["Name"].as_str().unwrap_or_default();
            let id = r.get("id").cloned().unwrap_or_else(|| json!(format!("a0X00000000{i:04}AAA")));
            let mut out = if name.ends_with('7') {
                json!({"id": id, "success": false, "errors": [
                    {"statusCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access to this record", "fields": []}]})
            } else {
                json!({"id": id, "success": true, "errors": []})
            };
            if upsert {
                out["created"] = json!(i % 2 == 0);
            }
            out
        })
        .collect();
    Reply::json(200, Value::Array(results))
}

#[tokio::test]
async fn updates_are_chunked_by_200_and_keep_input_order() {
    let s = crm(|seen| collections_reply(seen, false)).await;
    let client = s.client();
    let records: Vec<RecordWrite> = (0..450)
        .map(|i| {
            let mut fields = Map::new();
            fields.insert("Name".into(), json!(format!("plan {i}")));
            fields.insert("Id".into(), json!("ignored"));
            RecordWrite {
                object: "Account_Plan__c".into(),
                id: Some(format!("a0X{i:015}")),
                fields,
            }
        })
        .collect();
    let results = client.update(&records).await.unwrap();
    assert_eq!(results.len(), 450);
    for (i, (r, w)) in results.iter().zip(&records).enumerate() {
        assert_eq!(r.id, w.id, "result {i} is for input {i}");
        assert_eq!(r.success, i % 10 != 7, "result {i}");
        if !r.success {
            assert!(r.errors[0].is_transient());
        }
    }
    let sent = s.data_requests();
    let sizes: Vec<usize> = sent
        .iter()
        .map(|r| r.json()["records"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![200, 200, 50]);
    for r in &sent {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("PATCH", "/services/data/v62.0/composite/sobjects")
        );
        let body = r.json();
        assert_eq!(body["allOrNone"], json!(false));
        let first = &body["records"][0];
        assert_eq!(first["attributes"]["type"], "Account_Plan__c");
        assert!(first["id"].as_str().unwrap().starts_with("a0X"));
        assert!(first.get("Id").is_none(), "the Id field is sent only as id");
    }

    // An update without an Id is refused before anything is sent.
    let mut bad = records[..1].to_vec();
    bad[0].id = None;
    assert!(matches!(
        client.update(&bad).await,
        Err(CrmError::InvalidRequest(_))
    ));
    assert_eq!(s.data_requests().len(), 3);
    assert!(client.update(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_short_results_array_is_a_decode_error() {
    let s = crm(|_| {
        Reply::json(
            200,
            json!([{"id": "a0X000000000001AAA", "success": true, "errors": []}]),
        )
    })
    .await;
    let records: Vec<RecordWrite> = (0..2)
        .map(|i| RecordWrite {
            object: "A__c".into(),
            id: Some(format!("a0X00000000000{i}AAA")),
            fields: Map::new(),
        })
        .collect();
    let err = s.client().update(&records).await.unwrap_err();
    assert!(matches!(err, CrmError::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn upserts_go_to_the_external_id_resource() {
    let s = crm(|seen| collections_reply(seen, true)).await;
    let client = s.client();
    let records: Vec<RecordWrite> = (0..3)
        .map(|i| {
            let mut fields = Map::new();
            fields.insert("Plan_Key__c".into(), json!(format!("k{i}")));
            fields.insert("Name".into(), json!(format!("snap {i}")));
            RecordWrite {
                object: "Plan_Snapshot__c".into(),
                id: Some("001000000000001AAA".into()),
                fields,
            }
        })
        .collect();
    let results = client
        .upsert("Plan_Snapshot__c", "Plan_Key__c", &records)
        .await
        .unwrap();
    assert_eq!(
        results.iter().map(|r| r.created).collect::<Vec<_>>(),
        vec![Some(true), Some(false), Some(true)]
    );
    let sent = s.data_requests();
    assert_eq!(
        sent[0].path,
        "/services/data/v62.0/composite/sobjects/Plan_Snapshot__c/Plan_Key__c"
    );
    assert_eq!(sent[0].method, "PATCH");
    let first = &sent[0].json()["records"][0];
    assert!(
        first.get("id").is_none(),
        "upserts match on the external id, not the Id"
    );
    assert_eq!(first["Plan_Key__c"], "k0");

    let missing = vec![RecordWrite {
        object: "Plan_Snapshot__c".into(),
        id: None,
        fields: Map::new(),
    }];
    assert!(matches!(
        client
            .upsert("Plan_Snapshot__c", "Plan_Key__c", &missing)
            .await,
        Err(CrmError::InvalidRequest(_))
    ));
    assert!(matches!(
        client
            .upsert("Plan_Snapshot__c/../x", "Plan_Key__c", &records)
            .await,
        Err(CrmError::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn limits_and_limit_info_are_tracked() {
    let s = crm(|_| {
        Reply::json(
            200,
            json!({
                "DailyApiRequests": {"Max": 15000, "Remaining": 14998, "Some App": {"Max": 0, "Remaining": 0}},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DataStorageMB": {"Max": 5, "Remaining": 5}
            }),
        )
        .header("Sforce-Limit-Info", "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)")
    })
    .await;
    let client = s.client();
    assert_eq!(client.api_usage(), None);
    let limits = client.limits().await.unwrap();
    assert_eq!(
        limits.daily_api_requests,
        Some(Limit {
            max: 15000,
            remaining: 14998
        })
    );
    assert_eq!(limits.daily_api_requests.unwrap().used(), 2);
    assert_eq!(limits.all.len(), 3);
    assert_eq!(s.data_requests()[0].path, "/services/data/v62.0/limits");
    let usage = client.api_usage().unwrap();
    assert_eq!(
        usage,
        ApiUsage {
            used: 25,
            max: 5000
        }
    );
    assert!((usage.percent() - 0.5).abs() < 1e-9);
    assert_eq!(client.api_calls(), 2);
}

#[tokio::test]
async fn get_deleted_sends_the_window_and_parses_dates() {
    let s = crm(|_| {
        Reply::json(
            200,
            json!({
                "deletedRecords": [{"id": "006000000000001AAA", "deletedDate": "2024-05-07T22:07:19.000+0000"}],
                "earliestDateAvailable": "2024-05-03T15:57:00.000+0000",
                "latestDateCovered": "2024-05-08T21:20:00.000+0000"
            }),
        )
    })
    .await;
    let client = s.client();
    let start = Utc.with_ymd_and_hms(2024, 5, 6, 0, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2024, 5, 10, 0, 0, 0).unwrap();
    let deleted = client.get_deleted("Opportunity", start, end).await.unwrap();
    assert_eq!(
        deleted.deleted,
        vec![(
            "006000000000001AAA".to_string(),
            Utc.with_ymd_and_hms(2024, 5, 7, 22, 7, 19).unwrap()
        )]
    );
    assert_eq!(
        deleted.earliest_date_available,
        Some(Utc.with_ymd_and_hms(2024, 5, 3, 15, 57, 0).unwrap())
    );
    assert_eq!(
        deleted.latest_date_covered,
        Some(Utc.with_ymd_and_hms(2024, 5, 8, 21, 20, 0).unwrap())
    );
    let sent = &s.data_requests()[0];
    assert_eq!(
        sent.path,
        "/services/data/v62.0/sobjects/Opportunity/deleted/"
    );
    assert_eq!(
        sent.query,
        vec![
            ("start".to_string(), "2024-05-06T00:00:00+00:00".to_string()),
            ("end".to_string(), "2024-05-10T00:00:00+00:00".to_string())
        ]
    );
    assert!(matches!(
        client.get_deleted("Opportunity", end, start).await,
        Err(CrmError::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn describe_returns_the_json() {
    let s = crm(|_| {
        Reply::json(
            200,
            json!({"name": "Account", "fields": [{"name": "Id", "type": "id"}]}),
        )
    })
    .await;
    let d = s.client().describe("Account").await.unwrap();
    assert_eq!(d["fields"][0]["type"], "id");
    assert_eq!(
        s.data_requests()[0].path,
        "/services/data/v62.0/sobjects/Account/describe"
    );
}

#[tokio::test]
async fn versions_lists_the_served_versions() {
    let s = crm(|_| {
        Reply::json(
            200,
            json!([{"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"},
                       {"label": "Spring '24", "url": "/services/data/v60.0", "version": "60.0"}]),
        )
    })
    .await;
    let versions = s.client().versions().await.unwrap();
    assert_eq!(versions, ["59.0", "60.0"]);
    assert_eq!(s.data_requests()[0].path, "/services/data");
}
