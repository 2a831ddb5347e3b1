//! Sessions, retries and quota: refresh on 401 (once, shared by concurrent requests),
//! retries of transient failures up to the limit, what is never retried, and timeouts.

use super::*;

#[tokio::test]
async fn a_401_refreshes_once_and_retries() {
    let s = crm(|seen| {
        if seen.bearer().as_deref() == Some("00D000000000001!tok-1") {
            session_expired()
        } else {
            ok_query(json!([{"attributes": {"type": "Account"}, "Id": "001000000000001AAA"}]))
        }
    })
    .await;
    let client = s.client();
    let page = client.query("SELECT Id FROM Account", false).await.unwrap();
    assert_eq!(page.records[0]["Id"], "001000000000001AAA");
    assert_eq!(s.token_requests().len(), 2);
    let bearers: Vec<_> = s
        .data_requests()
        .iter()
        .map(|r| r.bearer().unwrap())
        .collect();
    assert_eq!(
        bearers,
        vec!["00D000000000001!tok-1", "00D000000000001!tok-2"]
    );
    assert_eq!(client.api_calls(), 4);
}

#[tokio::test]
async fn a_second_401_is_session_expired() {
    let s = crm(|_| session_expired()).await;
    let client = s.client();
    let err = client
        .query("SELECT Id FROM Account", false)
        .await
        .unwrap_err();
    assert!(matches!(err, CrmError::SessionExpired), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(s.token_requests().len(), 2, "exactly one refresh");
    assert_eq!(s.data_requests().len(), 2, "the request is retried once");
}

#[tokio::test]
async fn concurrent_401s_share_one_refresh() {
    let s = Stub::start(|seen| {
        if seen.is_token() {
            Reply::next_token().after(Duration::from_millis(150))
        } else if seen.bearer().as_deref() == Some("00D000000000001!tok-1") {
            session_expired().after(Duration::from_millis(20))
        } else {
            ok_query(json!([]))
        }
    })
    .await;
    let client = s.client();
    client.authenticate().await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            c.query("SELECT Id FROM Account", false).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        s.token_requests().len(),
        2,
        "one initial token and a single refresh"
    );
    let stale = s
        .data_requests()
        .iter()
        .filter(|r| r.bearer().as_deref() == Some("00D000000000001!tok-1"))
        .count();
    assert_eq!(stale, 8, "every task first used the old token");
}

#[tokio::test]
async fn a_503_is_retried_until_success() {
    let s = crm(first_then(2, |_| server_busy(), |_| ok_query(json!([])))).await;
    let client = s.client();
    client.query("SELECT Id FROM Account", true).await.unwrap();
    let sent = s.data_requests();
    assert_eq!(sent.len(), 3);
    assert!(sent
        .iter()
        .all(|r| r.path == "/services/data/v62.0/queryAll"));
}

#[tokio::test]
async fn retries_stop_at_max_retries() {
    let s = crm(|_| Reply::empty(429)).await;
    let client = s.client_with(|cfg| cfg.max_retries = 2);
    let err = client.limits().await.unwrap_err();
    assert!(matches!(err, CrmError::Api { status: 429, .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(s.data_requests().len(), 3, "the first try and two retries");
}

#[tokio::test]
async fn a_create_is_not_retried() {
    let s = crm(|_| server_busy()).await;
    let client = s.client();
    let mut fields = Map::new();
    fields.insert("Name".into(), json!("FY25"));
    let records = vec![RecordWrite {
        object: "Account_Plan__c".into(),
        id: None,
        fields: fields.clone(),
    }];
    let err = client.create(&records).await.unwrap_err();
    assert!(
        err.is_retryable(),
        "the caller may decide; the client does not resend"
    );
    assert_eq!(s.data_requests().len(), 1);
    let err = client
        .create_one("Account_Plan__c", &fields)
        .await
        .unwrap_err();
    assert!(matches!(err, CrmError::Api { status: 503, .. }));
    assert_eq!(s.data_requests().len(), 2);
}

#[tokio::test]
async fn request_limit_exceeded_is_quota_and_never_retried() {
    let s = crm(|_| {
        Reply::error(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        )
        .header("Sforce-Limit-Info", "api-usage=15001/15000")
    })
    .await;
    let client = s.client();
    let err = client
        .query("SELECT Id FROM Account", false)
        .await
        .unwrap_err();
    match &err {
        CrmError::QuotaExceeded { message } => assert_eq!(message, "TotalRequests Limit exceeded."),
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
    assert!(!err.is_retryable() && !err.is_permanent());
    assert_eq!(s.data_requests().len(), 1);
    assert_eq!(
        client.api_usage(),
        Some(ApiUsage {
            used: 15001,
            max: 15000
        })
    );
}

#[tokio::test]
async fn other_403s_are_permanent_api_errors() {
    let s = crm(|_| Reply::error(403, "INSUFFICIENT_ACCESS", "Insufficient privileges")).await;
    let err = s.client().describe("Account").await.unwrap_err();
    assert!(matches!(err, CrmError::Api { status: 403, .. }) && err.is_permanent());
    assert_eq!(s.data_requests().len(), 1);
}

#[tokio::test]
async fn transport_errors_are_retried_then_reported() {
    // A port that nothing listens on: bind, read the port, close.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let mut cfg = config(&url, client_credentials());
    cfg.max_retries = 2;
    let client = CrmClient::with_backoff(cfg, fast()).unwrap();
    let err = client.authenticate().await.unwrap_err();
    assert!(matches!(err, CrmError::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(client.api_calls(), 3);
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let s = crm(|_| ok_query(json!([])).after(Duration::from_millis(800))).await;
    let client = s.client_with(|cfg| {
        cfg.timeout = Duration::from_millis(150);
        cfg.max_retries = 1;
    });
    let err = client
        .query("SELECT Id FROM Account", false)
        .await
        .unwrap_err();
    assert!(matches!(err, CrmError::Timeout { .. }), "{err:?}");
    assert_eq!(s.data_requests().len(), 2, "a timeout is retried");
}
