//! The opt-in listener: `/metrics` (Prometheus text, or OpenMetrics when a scraper asks for
//! it) and `/healthz`, over HTTP or HTTPS, behind the access rules of [`super::access`]. The
//! handlers only read the shared state the daemon updates after each run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::MetricsSection;

use super::access::{self, Access, AccessError};
use super::{MetricsState, SharedMetrics};

fn snapshot(shared: &SharedMetrics) -> MetricsState {
    shared.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The OpenMetrics content type, served to scrapers whose `Accept` asks for it.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn metrics(State(shared): State<SharedMetrics>, headers: HeaderMap) -> impl IntoResponse {
    let state = snapshot(&shared);
    let wants_openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    if wants_openmetrics {
        (
            [(header::CONTENT_TYPE, OPENMETRICS)],
            state.render_openmetrics(Utc::now()),
        )
    } else {
        (
            [(
                header::CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )],
            state.render(Utc::now()),
        )
    }
}

async fn healthz(State(shared): State<SharedMetrics>) -> impl IntoResponse {
    let (healthy, reason) = snapshot(&shared).health(Utc::now());
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{reason}\n"),
    )
}

/// The routes, `/metrics` and `/healthz`, behind `access`.
pub fn router(shared: SharedMetrics, access: Access) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(shared)
        .layer(axum::middleware::from_fn_with_state(
            access,
            access::require,
        ))
}

/// Where and how the endpoint listens.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub access: Access,
    /// HTTPS when set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Endpoint {
    /// From `[metrics]`: `None` when no `listen` is set. Reads the token file and the TLS
    /// files now, so a missing one fails the start.
    pub fn from_config(section: &MetricsSection) -> Result<Option<Endpoint>, AccessError> {
        let Some(addr) = section.listen else {
            return Ok(None);
        };
        let access = Access::from_config(section)?;
        let tls = match (&section.tls_cert_file, &section.tls_key_file) {
            (Some(cert), Some(key)) => Some(access::tls_config(cert, key)?),
            _ => None,
        };
        Ok(Some(Endpoint { addr, access, tls }))
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// Binds the endpoint's address now (so a taken port fails the start) and serves until
/// `shutdown`.
pub async fn serve(
    endpoint: Endpoint,
    shared: SharedMetrics,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(endpoint.addr).await?;
    let bound = listener.local_addr()?;
    let app = router(shared, endpoint.access);
    match endpoint.tls {
        None => {
            tokio::spawn(async move {
                let server = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { shutdown.cancelled().await });
                if let Err(err) = server.await {
                    tracing::warn!(error = %err, "the metrics listener stopped");
                }
            });
        }
        Some(tls) => {
            tokio::spawn(serve_tls(listener, app, tls, shutdown));
        }
    }
    Ok(bound)
}

/// Accepts TLS connections and serves HTTP/1.1 on each until `shutdown`.
async fn serve_tls(
    listener: TcpListener,
    app: Router,
    tls: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: wait, then go on.
                    tracing::warn!(error = %err, "the metrics listener cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => return,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
            let stream = match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "a TLS handshake on the metrics listener failed");
                    return;
                }
                Err(_) => return,
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::access::tests::hash;
    use super::super::tests::sample;
    use super::*;

    async fn get(
        client: &reqwest::Client,
        url: &str,
        auth: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> (u16, Option<String>, String) {
        let resp = auth(client.get(url)).send().await.unwrap();
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_string());
        (status, challenge, resp.text().await.unwrap())
    }

    /// Binds every interface (what a central Prometheus needs) and connects over loopback.
    async fn serve_on_all_interfaces(
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> (u16, CancellationToken) {
        let access = Access::new(
            Some(secrecy::SecretString::from("scrape-t0ken")),
            vec![("prometheus".into(), hash("right horse"))],
        );
        let mut state = MetricsState::new(Utc::now(), Duration::from_secs(60));
        state.fields_written = 5;
        let shutdown = CancellationToken::new();
        let endpoint = Endpoint {
            addr: "0.0.0.0:0".parse().unwrap(),
            access,
            tls,
        };
        let bound = serve(endpoint, Arc::new(Mutex::new(state)), shutdown.clone())
            .await
            .unwrap();
        assert!(bound.ip().is_unspecified(), "{bound}");
        (bound.port(), shutdown)
    }

    async fn scrape_checks(client: &reqwest::Client, base: &str) {
        let (status, challenge, _) = get(client, &format!("{base}/metrics"), |r| r).await;
        assert_eq!(status, 401);
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"plansync\""));
        let (status, _, _) = get(client, &format!("{base}/healthz"), |r| r).await;
        assert_eq!(status, 401);
        let (status, _, _) = get(client, &format!("{base}/metrics"), |r| {
            r.bearer_auth("wrong")
        })
        .await;
        assert_eq!(status, 401);
        let (status, _, _) = get(client, &format!("{base}/metrics"), |r| {
            r.basic_auth("prometheus", Some("wrong horse"))
        })
        .await;
        assert_eq!(status, 401);
        let (status, _, body) = get(client, &format!("{base}/metrics"), |r| {
            r.bearer_auth("scrape-t0ken")
        })
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(sample(&body, "plansync_fields_written_total"), Some(5.0));
        let (status, _, body) = get(client, &format!("{base}/metrics"), |r| {
            r.basic_auth("prometheus", Some("right horse"))
        })
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, _, body) = get(client, &format!("{base}/healthz"), |r| {
            r.basic_auth("prometheus", Some("right horse"))
        })
        .await;
        assert_eq!(status, 503, "{body}");
    }

    #[tokio::test]
    async fn a_listener_on_every_interface_requires_the_credential() {
        let (port, shutdown) = serve_on_all_interfaces(None).await;
        let client = reqwest::Client::new();
        scrape_checks(&client, &format!("http://127.0.0.1:{port}")).await;
        shutdown.cancel();
    }

    #[tokio::test]
    async fn the_listener_serves_https_with_the_configured_certificate() {
        let generated =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        let section = MetricsSection {
            listen: Some("0.0.0.0:0".parse().unwrap()),
            tls_cert_file: Some(cert),
            tls_key_file: Some(key),
            ..MetricsSection::default()
        };
        let endpoint = Endpoint::from_config(&section).unwrap().unwrap();
        assert_eq!(endpoint.scheme(), "https");
        let (port, shutdown) = serve_on_all_interfaces(endpoint.tls).await;
        let client = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(generated.cert.pem().as_bytes()).unwrap(),
            )
            .build()
            .unwrap();
        scrape_checks(&client, &format!("https://127.0.0.1:{port}")).await;
        // Plain HTTP on the TLS port gets no metrics.
        let plain = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .bearer_auth("scrape-t0ken")
            .send()
            .await;
        assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));
        shutdown.cancel();
    }
}
