//! Injected faults: scheduled and seeded request faults, row locks, failing records, latency.

use reqwest::{Method, StatusCode};
use serde_json::json;

use plansync::emulator::Emulator;

use super::{error_code, start, start_with, Api};

#[tokio::test]
async fn scheduled_faults_hit_exactly_the_named_requests() {
    let emu = start().await;
    let api = Api::login(&emu).await;
    emu.set_faults_str("503@1,500@2,drop@3,expire@4").unwrap();
    let (status, body) = api.get("/limits").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!([{"message": "Server too busy", "errorCode": "SERVER_UNAVAILABLE"}])
    );
    let (status, body) = api.get("/limits").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN_EXCEPTION")
    );
    let dropped = api
        .http
        .get(api.url("/limits"))
        .bearer_auth(&api.token)
        .send()
        .await;
    match dropped {
        Err(err) => assert!(!err.is_timeout(), "{err}"),
        Ok(response) => panic!("expected a dropped connection, got {}", response.status()),
    }
    let (status, body) = api.get("/limits").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID")
    );
    // The session stays invalid: the client must log in again.
    assert_eq!(api.get("/limits").await.0, StatusCode::UNAUTHORIZED);
    let api = Api::login(&emu).await;
    assert_eq!(api.get("/limits").await.0, StatusCode::OK);
    emu.shutdown().await;
}

#[tokio::test]
async fn the_same_seed_gives_the_same_faults() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let emu = start().await;
        let api = Api::login(&emu).await;
        emu.set_faults_str("seed=11,503=0.3,500=0.2").unwrap();
        let mut statuses = Vec::new();
        for _ in 0..30 {
            statuses.push(api.get("/limits").await.0.as_u16());
        }
        runs.push(statuses);
        emu.shutdown().await;
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].contains(&503) && runs[0].contains(&500) && runs[0].contains(&200));
}

#[tokio::test]
async fn row_locks_and_failing_records_in_collections() {
    let emu = start_with(Emulator::builder().faults(
        plansync::emulator::faults::FaultSpec::parse("lock@1,fail-record=Cursed").unwrap(),
    ))
    .await;
    let api = Api::login(&emu).await;
    let records = json!({"records": [
        {"attributes": {"type": "Account"}, "Name": "A"},
        {"attributes": {"type": "Account"}, "Name": "B"},
    ]});
    let (status, body) = api
        .call(Method::POST, "/composite/sobjects", Some(records.clone()))
        .await;
    assert_eq!(status, StatusCode::OK);
    for row in body.as_array().unwrap() {
        assert_eq!(row["success"], false);
        assert_eq!(row["errors"][0]["statusCode"], "UNABLE_TO_LOCK_ROW");
        assert_eq!(
            row["errors"][0]["message"],
            "unable to obtain exclusive access to this record"
        );
    }
    let (_, body) = api
        .call(Method::POST, "/composite/sobjects", Some(records))
        .await;
    assert_eq!(body[0]["success"], true, "request 2 has no lock fault");

    let cursed = api.create("Account", json!({"Name": "Cursed"})).await;
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/sobjects/Account/{cursed}"),
            Some(json!({"Industry": "Energy"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn bad_fault_specs_are_refused_with_the_bad_part() {
    let emu = start().await;
    let err = emu.set_faults_str("503=0.1,explode=1").unwrap_err();
    assert!(err.to_string().contains("explode=1"), "{err}");
    emu.shutdown().await;
}
