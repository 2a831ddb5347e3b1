//! The token flows: what each grant sends, how the client reads the answer and its errors,
//! retries of the token endpoint, and secrets kept out of `Debug` output.

use base64::Engine;

use super::*;

#[tokio::test]
async fn jwt_bearer_sends_a_signed_assertion_with_the_right_claims() {
    let s = Stub::start(|_| Reply::next_token()).await;
    let pem = std::fs::read_to_string(key_path("crm-test-key.pem")).unwrap();
    let auth = AuthConfig::JwtBearer {
        client_id: "3MVG9-consumer-key".into(),
        username: "integration@acme.example".into(),
        private_key_pem: SecretString::from(pem),
        audience: String::new(),
    };
    let client = s.client_for(auth);
    let before = Utc::now().timestamp();
    client.authenticate().await.unwrap();
    let after = Utc::now().timestamp();

    let sent = s.token_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "POST");
    assert_eq!(
        sent[0].form_value("grant_type").as_deref(),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    let assertion = sent[0].form_value("assertion").unwrap();
    let public = std::fs::read(key_path("crm-test-key.pub.pem")).unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap();
    // No audience configured: the production login host, as real orgs expect (the stub's own
    // URL, like a My Domain URL, would be refused as `audience is invalid`).
    let audience = "https://login.salesforce.com".to_string();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience.as_str()]);
    let decoded = jsonwebtoken::decode::<Value>(&assertion, &key, &validation).unwrap();
    assert_eq!(decoded.header.alg, jsonwebtoken::Algorithm::RS256);
    let claims = decoded.claims;
    assert_eq!(claims["iss"], "3MVG9-consumer-key");
    assert_eq!(claims["sub"], "integration@acme.example");
    assert_eq!(claims["aud"], audience.as_str());
    let exp = claims["exp"].as_i64().expect("exp is a number");
    assert!(
        exp >= before + 180 && exp <= after + 180,
        "exp {exp} is now + 3 min"
    );
    assert_eq!(client.instance_url(), Some(s.url.clone()));

    // A tampered payload does not verify: the signature covers the claims.
    let mut parts: Vec<String> = assertion.split('.').map(str::to_string).collect();
    let forged = json!({"iss": "someone-else", "sub": "integration@acme.example", "aud": audience, "exp": exp});
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
    assert!(jsonwebtoken::decode::<Value>(&parts.join("."), &key, &validation).is_err());
}

#[tokio::test]
async fn jwt_bearer_uses_an_explicit_audience() {
    let s = Stub::start(|_| Reply::next_token()).await;
    let auth = AuthConfig::JwtBearer {
        client_id: "k".into(),
        username: "u@example.com".into(),
        private_key_pem: SecretString::from(
            std::fs::read_to_string(key_path("crm-test-key.pem")).unwrap(),
        ),
        audience: "https://test.salesforce.com".into(),
    };
    let client = s.client_for(auth);
    client.authenticate().await.unwrap();
    let assertion = s.token_requests()[0].form_value("assertion").unwrap();
    let payload = assertion.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "https://test.salesforce.com");
}

#[test]
fn a_bad_jwt_key_is_a_config_error() {
    let auth = AuthConfig::JwtBearer {
        client_id: "k".into(),
        username: "u".into(),
        private_key_pem: SecretString::from(
            "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
        ),
        audience: String::new(),
    };
    let err = CrmClient::new(config(
        &Url::parse("https://login.salesforce.com").unwrap(),
        auth,
    ))
    .unwrap_err();
    assert!(matches!(err, CrmError::InvalidConfig(_)), "{err:?}");
}

#[tokio::test]
async fn client_credentials_sends_basic_auth_and_no_secret_in_the_body() {
    let s = Stub::start(|_| Reply::next_token()).await;
    s.client().authenticate().await.unwrap();
    let sent = s.token_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].form(),
        vec![("grant_type".to_string(), "client_credentials".to_string())]
    );
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("3MVG9-client:{CLIENT_SECRET}"));
    assert_eq!(
        sent[0]
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("Basic {basic}")
    );
    assert!(sent[0]
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("application/x-www-form-urlencoded"));
}

#[tokio::test]
async fn refresh_token_sends_the_form_fields() {
    let s = Stub::start(|_| Reply::next_token()).await;
    let auth = AuthConfig::RefreshToken {
        client_id: "cid".into(),
        client_secret: Some(SecretString::from("csecret")),
        refresh_token: SecretString::from("5Aep861-refresh"),
    };
    let client = s.client_for(auth);
    client.authenticate().await.unwrap();
    // The field order is not part of the grant.
    let mut form = s.token_requests()[0].form();
    form.sort();
    let want: Vec<(String, String)> = [
        ("client_id", "cid"),
        ("client_secret", "csecret"),
        ("grant_type", "refresh_token"),
        ("refresh_token", "5Aep861-refresh"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(form, want);
    assert!(s.token_requests()[0].headers.get("authorization").is_none());

    // Without a secret, no client_secret field.
    let s = Stub::start(|_| Reply::next_token()).await;
    let auth = AuthConfig::RefreshToken {
        client_id: "cid".into(),
        client_secret: None,
        refresh_token: SecretString::from("rt"),
    };
    s.client_for(auth).authenticate().await.unwrap();
    assert_eq!(s.token_requests()[0].form_value("client_secret"), None);
}

#[tokio::test]
async fn token_errors_are_permanent_auth_errors_with_the_crm_text() {
    let s = Stub::start(|_| {
        Reply::json(
            400,
            json!({"error": "invalid_grant", "error_description": "audience is invalid"}),
        )
    })
    .await;
    let client = s.client();
    let err = client.authenticate().await.unwrap_err();
    match &err {
        CrmError::Auth {
            status,
            error,
            description,
        } => {
            assert_eq!(
                (*status, error.as_str(), description.as_str()),
                (400, "invalid_grant", "audience is invalid")
            );
        }
        other => panic!("expected Auth, got {other:?}"),
    }
    assert!(err.is_permanent() && !err.is_retryable());
    assert!(err.to_string().contains("audience is invalid"));
    assert_eq!(client.api_calls(), 1, "no retry on bad credentials");

    // A data call without a token fails the same way, without sending the data request.
    let err = client
        .query("SELECT Id FROM Account", false)
        .await
        .unwrap_err();
    assert!(matches!(err, CrmError::Auth { .. }));
    assert!(s.data_requests().is_empty());
}

#[tokio::test]
async fn token_endpoint_outage_is_retried() {
    let s = Stub::start(first_then(
        2,
        |_| {
            Reply::json(
                503,
                json!({"error": "server_unavailable", "error_description": "busy"}),
            )
        },
        |_| Reply::next_token(),
    ))
    .await;
    let client = s.client();
    client.authenticate().await.unwrap();
    assert_eq!(s.token_requests().len(), 3);
    assert_eq!(client.api_calls(), 3);
}

#[tokio::test]
async fn configured_instance_url_wins_and_http_needs_loopback() {
    let s = crm(|_| ok_query(json!([]))).await;
    let instance = s.url.join("/").unwrap();
    let client = s.client_with(|cfg| cfg.instance_url = Some(instance.clone()));
    assert_eq!(client.instance_url(), Some(instance));

    let mut cfg = config(&s.url, client_credentials());
    cfg.instance_url = Some(Url::parse("http://acme.my.salesforce.com").unwrap());
    assert!(matches!(
        CrmClient::new(cfg),
        Err(CrmError::InvalidConfig(_))
    ));
    let cfg = config(
        &Url::parse("http://login.salesforce.com").unwrap(),
        client_credentials(),
    );
    assert!(matches!(
        CrmClient::new(cfg),
        Err(CrmError::InvalidConfig(_))
    ));
    let mut cfg = config(&s.url, client_credentials());
    cfg.api_version = "sixty-two".into();
    assert!(matches!(
        CrmClient::new(cfg),
        Err(CrmError::InvalidConfig(_))
    ));
}

#[tokio::test]
async fn an_http_instance_url_from_a_remote_token_response_is_refused() {
    let s = Stub::start(|seen| {
        if seen.is_token() {
            token_reply("http://acme.my.salesforce.com", 1)
        } else {
            ok_query(json!([]))
        }
    })
    .await;
    let err = s.client().authenticate().await.unwrap_err();
    assert!(matches!(err, CrmError::InvalidConfig(_)), "{err:?}");
}

#[tokio::test]
async fn secrets_never_appear_in_debug_output() {
    let s = crm(|_| ok_query(json!([]))).await;
    let pem = std::fs::read_to_string(key_path("crm-test-key.pem")).unwrap();
    let configs = [
        config(&s.url, client_credentials()),
        config(
            &s.url,
            AuthConfig::RefreshToken {
                client_id: "c".into(),
                client_secret: Some(SecretString::from(CLIENT_SECRET)),
                refresh_token: SecretString::from("refresh-me-secret"),
            },
        ),
        config(
            &s.url,
            AuthConfig::JwtBearer {
                client_id: "c".into(),
                username: "u".into(),
                private_key_pem: SecretString::from(pem),
                audience: String::new(),
            },
        ),
    ];
    for cfg in configs {
        let shown_config = format!("{cfg:?}");
        let client = CrmClient::with_backoff(cfg, fast()).unwrap();
        client.query("SELECT Id FROM Account", false).await.unwrap();
        let shown = format!(
            "{shown_config} {client:?} {:?}",
            client.inner_token_debug().await
        );
        for secret in [CLIENT_SECRET, "refresh-me-secret", "PRIVATE KEY", "tok-"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
    }
}
