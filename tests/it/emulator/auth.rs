//! The token endpoint, sessions, versions and limits.

use std::time::Duration;

use base64::Engine;
use plansync::emulator::auth::JwtConfig;
use plansync::emulator::Emulator;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use super::{error_code, keys, read, start, start_with, Api, V};

const PUBLIC_KEY: &[u8] = include_bytes!("../../fixtures/keys/test-only-jwt-public.pem");
const PRIVATE_KEY: &[u8] = include_bytes!("../../fixtures/keys/test-only-jwt-private.pem");
const USERNAME: &str = "integration@plansync.example";

async fn token_request(base: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = Client::new()
        .post(format!("{base}/services/oauth2/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    read(response).await
}

fn assertion(claims: Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(PRIVATE_KEY).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .unwrap()
}

#[tokio::test]
async fn client_credentials_token_has_the_real_shape() {
    let emu = start().await;
    let (status, body) = token_request(
        emu.base_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", emu.client_id()),
            ("client_secret", emu.client_secret()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        keys(&body),
        [
            "access_token",
            "signature",
            "scope",
            "instance_url",
            "id",
            "token_type",
            "issued_at"
        ]
    );
    let org_id = emu.with_org(|org| org.org_id().to_string());
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with(&format!("{}!", &org_id[..15])), "{token}");
    let issued_at = body["issued_at"].as_str().unwrap();
    assert_eq!(issued_at.len(), 13);
    assert!(issued_at.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(body["instance_url"], emu.base_url());
    assert_eq!(body["token_type"], "Bearer");
    let id = body["id"].as_str().unwrap();
    assert!(id.ends_with(&format!(
        "/id/{org_id}/{}",
        emu.with_org(|o| o.user_id().to_string())
    )));
    // signature = base64(HMAC-SHA256(id + issued_at, client secret))
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, emu.client_secret().as_bytes());
    let expected = base64::engine::general_purpose::STANDARD
        .encode(ring::hmac::sign(&key, format!("{id}{issued_at}").as_bytes()).as_ref());
    assert_eq!(body["signature"], expected.as_str());

    // Basic client authentication works too, and the token opens data endpoints.
    let response = Client::new()
        .post(format!("{}/services/oauth2/token", emu.base_url()))
        .basic_auth(emu.client_id(), Some(emu.client_secret()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK);

    // Sent to the shared login host instead of the org's My Domain, the flow is refused.
    let response = Client::new()
        .post(format!("{}/services/oauth2/token", emu.base_url()))
        .header(reqwest::header::HOST, "login.salesforce.com")
        .basic_auth(emu.client_id(), Some(emu.client_secret()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let (refused, error) = read(response).await;
    assert_eq!(refused, StatusCode::BAD_REQUEST);
    assert_eq!(
        error,
        json!({"error": "invalid_grant", "error_description": "request not supported on this domain"})
    );

    let api = Api {
        http: Client::new(),
        base: emu.base_url().to_string(),
        token: body["access_token"].as_str().unwrap().to_string(),
    };
    assert_eq!(api.get("/limits").await.0, StatusCode::OK);
    let (status, info) = api.get("/services/oauth2/userinfo").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["organization_id"], org_id.as_str());
    emu.shutdown().await;
}

/// A token request's form, and the error and description it gets.
type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);

#[tokio::test]
async fn token_errors_use_the_oauth_envelope() {
    let emu = Emulator::builder()
        .refresh_token("5Aep861.test-refresh")
        .start()
        .await
        .unwrap();
    let base = emu.base_url();
    let cases: Vec<Case> = vec![
        (vec![], "invalid_request", "grant type is missing"),
        (
            vec![("grant_type", "password")],
            "unsupported_grant_type",
            "grant type not supported",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "x"),
            ],
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", emu.client_id()),
                ("client_secret", "wrong"),
            ],
            "invalid_client",
            "invalid client credentials",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", emu.client_id()),
                ("refresh_token", "stale"),
            ],
            "invalid_grant",
            "expired access/refresh token",
        ),
    ];
    for (form, error, description) in cases {
        let (status, body) = token_request(base, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(
            body,
            json!({"error": error, "error_description": description})
        );
    }
    let (status, body) = token_request(
        base,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", emu.client_id()),
            ("client_secret", emu.client_secret()),
            ("refresh_token", "5Aep861.test-refresh"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("expires_in").is_none());
    assert!(body.get("refresh_token").is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn jwt_bearer_checks_signature_audience_subject_and_expiry() {
    let emu = Emulator::builder()
        .jwt(JwtConfig::new(PUBLIC_KEY, USERNAME).unwrap())
        .start()
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    let claims = |aud: &str, sub: &str, exp: Value| json!({"iss": emu.client_id(), "sub": sub, "aud": aud, "exp": exp});
    let login = "https://login.salesforce.com";
    let ok_cases = [
        claims(login, USERNAME, json!((now + 180).to_string())),
        claims("https://test.salesforce.com", USERNAME, json!(now + 180)),
        // sfdx-core sends milliseconds
        claims(login, USERNAME, json!(now * 1000 + 300)),
        // ... computed from a clock a moment behind: still far in the future, still accepted
        claims(login, USERNAME, json!((now - 2) * 1000 + 300)),
    ];
    for c in ok_cases {
        let (status, body) = token_request(
            emu.base_url(),
            &[("grant_type", grant), ("assertion", &assertion(c.clone()))],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{c} -> {body}");
        assert!(body["access_token"].as_str().unwrap().contains('!'));
    }
    let bad_cases = [
        (
            claims(login, USERNAME, json!(now - 10)),
            "invalid_grant",
            "expired authorization code",
        ),
        (
            claims(emu.base_url(), USERNAME, json!(now + 180)),
            "invalid_grant",
            "audience is invalid",
        ),
        (
            claims(login, "someone@else", json!(now + 180)),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        (
            json!({"iss": "other-app", "sub": USERNAME, "aud": login, "exp": now + 180}),
            "invalid_client_id",
            "client identifier invalid",
        ),
    ];
    for (c, error, description) in bad_cases {
        let (status, body) = token_request(
            emu.base_url(),
            &[("grant_type", grant), ("assertion", &assertion(c.clone()))],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{c}");
        assert_eq!(
            body,
            json!({"error": error, "error_description": description}),
            "{c}"
        );
    }
    // A token signed by another key is refused.
    let forged = {
        let good = assertion(claims(login, USERNAME, json!(now + 180)));
        let mut parts: Vec<&str> = good.split('.').collect();
        parts[2] = "AAAA";
        parts.join(".")
    };
    let (status, body) = token_request(
        emu.base_url(),
        &[("grant_type", grant), ("assertion", &forged)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    emu.shutdown().await;
}

#[tokio::test]
async fn data_endpoints_need_a_live_session() {
    let emu = start_with(Emulator::builder().session_ttl(Duration::from_secs(1))).await;
    let api = Api::login(&emu).await;
    let invalid =
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]);
    let (status, body) = read(Client::new().get(api.url("/limits")).send().await.unwrap()).await;
    assert_eq!((status, &body), (StatusCode::UNAUTHORIZED, &invalid));
    let (status, body) = read(
        Client::new()
            .get(api.url("/limits"))
            .bearer_auth("00D000000000001!made-up")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &body), (StatusCode::UNAUTHORIZED, &invalid));
    assert_eq!(api.get("/limits").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = api.get("/limits").await;
    assert_eq!((status, &body), (StatusCode::UNAUTHORIZED, &invalid));

    let api = Api::login(&emu).await;
    emu.expire_sessions();
    assert_eq!(api.get("/limits").await.0, StatusCode::UNAUTHORIZED);
    emu.shutdown().await;
}

#[tokio::test]
async fn versions_are_listed_and_others_are_not_found() {
    let emu = start().await;
    let api = Api::login(&emu).await;
    let response = Client::new()
        .get(format!("{}/services/data", emu.base_url()))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("sforce-limit-info").is_none());
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    let list = body.as_array().unwrap();
    assert_eq!(list.first().unwrap()["version"], "31.0");
    assert_eq!(list.last().unwrap()["url"], "/services/data/v68.0");
    assert_eq!(keys(&list[0]), ["label", "url", "version"]);
    for version in ["v31.0", "v68.0"] {
        let (status, _) = api.get(&format!("/services/data/{version}/limits")).await;
        assert_eq!(status, StatusCode::OK, "{version}");
    }
    for version in ["v30.0", "v69.0", "vX"] {
        let (status, body) = api.get(&format!("/services/data/{version}/limits")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{version}");
        assert_eq!(
            body,
            json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
        );
    }
    let (status, body) = api.get("/no-such-resource").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn every_data_call_is_counted_until_the_daily_limit() {
    let emu = start_with(Emulator::builder().daily_api_limit(3)).await;
    let api = Api::login(&emu).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let response = api.send(reqwest::Method::GET, "/limits", None).await;
        seen.push(
            response.headers()["sforce-limit-info"]
                .to_str()
                .unwrap()
                .to_string(),
        );
        let (status, body) = read(response).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["DailyApiRequests"]["Max"] == 3);
        assert!(body["DailyBulkApiBatches"]["Remaining"].is_number());
    }
    assert_eq!(seen, ["api-usage=1/3", "api-usage=2/3", "api-usage=3/3"]);
    let response = api
        .send(
            reqwest::Method::GET,
            &format!("/services/data/{V}/limits/"),
            None,
        )
        .await;
    assert_eq!(response.headers()["sforce-limit-info"], "api-usage=3/3");
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    assert_eq!(emu.api_usage(), (3, 3));
    emu.shutdown().await;
}

#[tokio::test]
async fn refuses_non_loopback_addresses_unless_allowed() {
    let err = Emulator::builder()
        .listen("0.0.0.0:0".parse().unwrap())
        .start()
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("--allow-remote"), "{err}");
    let emu = Emulator::builder()
        .listen("0.0.0.0:0".parse().unwrap())
        .allow_remote(true)
        .start()
        .await
        .unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn every_path_under_a_version_is_behind_the_session_gate() {
    let emu = Emulator::builder().seed("empty").start().await.unwrap();
    let http = Client::new();
    let url = |path: &str| format!("{}/services/data/v59.0{path}", emu.base_url());
    // No session: 401 INVALID_SESSION_ID, even for a path no route serves.
    for path in ["/", "/composite", "/no/such/resource"] {
        let (status, body) = read(http.get(url(path)).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID", "{path}");
    }
    let token = emu.access_token();
    // The version's root lists its resources.
    let response = http.get(url("/")).bearer_auth(&token).send().await.unwrap();
    assert!(response.headers().contains_key("sforce-limit-info"));
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["sobjects"], "/services/data/v59.0/sobjects");
    // An unknown resource: the CRM's NOT_FOUND array, counted like any data call.
    let response = http
        .get(url("/composite/graph"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("sforce-limit-info"));
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body[0]["errorCode"], "NOT_FOUND");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_method_a_resource_does_not_serve_is_an_error_array() {
    let emu = Emulator::builder().seed("empty").start().await.unwrap();
    let response = Client::new()
        .put(format!("{}/services/data/v59.0/limits", emu.base_url()))
        .bearer_auth(emu.access_token())
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body[0]["errorCode"], "METHOD_NOT_ALLOWED");
    assert!(body[0]["message"].as_str().unwrap().contains("PUT"));
    emu.shutdown().await;
}
