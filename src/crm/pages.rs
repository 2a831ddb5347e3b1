//! Following a SOQL query's pages (wire doc: `nextRecordsUrl` paging): every caller that
//! reads a query to its end goes through [`follow`], which hands each page over as it arrives
//! and asks before every further request whether to go on, so a shutdown (or an exhausted
//! API budget) takes effect between pages, never in the middle of one.

use super::{CrmClient, CrmError, QueryPage};

/// Hands `first` and every later page of its query to `on_page`, in order. Before asking the
/// CRM for the next page it calls `stop`: `Some(error)` ends the walk with that error (the
/// pages handed over so far stay handed over). The walk ends after the page marked `done`, or
/// the first page without a `nextRecordsUrl`; an error from `on_page` or from the CRM ends it
/// at once.
pub async fn follow<E>(
    crm: &CrmClient,
    first: QueryPage,
    stop: impl Fn() -> Option<E>,
    mut on_page: impl FnMut(QueryPage) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<CrmError>,
{
    let mut page = first;
    loop {
        let next = page.next_records_url.take().filter(|_| !page.done);
        on_page(page)?;
        let Some(next) = next else {
            return Ok(());
        };
        if let Some(error) = stop() {
            return Err(error);
        }
        page = crm.query_more(&next).await?;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use axum::extract::{Path, State};
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use serde_json::{json, Value};
    use url::Url;

    use super::*;
    use crate::crm::{AuthConfig, CrmConfig};

    /// A CRM whose query has three pages (`a`, `b`, `c`) behind the first, counting the
    /// page requests it answers.
    async fn three_page_crm() -> (CrmClient, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(AtomicUsize::new(0));
        let instance = base.clone();
        let app = Router::new()
            .route(
                "/services/oauth2/token",
                post(move || {
                    let instance = instance.clone();
                    async move {
                        Json(json!({
                            "access_token": "00D000000000001!tok",
                            "instance_url": instance,
                            "token_type": "Bearer",
                            "issued_at": "1706700000000"
                        }))
                    }
                }),
            )
            .route(
                "/services/data/v62.0/query/{locator}",
                get(
                    |State(served): State<Arc<AtomicUsize>>, Path(locator): Path<String>| async move {
                        served.fetch_add(1, Ordering::SeqCst);
                        let (id, next): (&str, Value) = match locator.as_str() {
                            "01g-1" => ("b", json!("/services/data/v62.0/query/01g-2")),
                            _ => ("c", Value::Null),
                        };
                        Json(json!({
                            "totalSize": 3,
                            "done": next.is_null(),
                            "nextRecordsUrl": next,
                            "records": [{"attributes": {"type": "Account"}, "Id": id}]
                        }))
                    },
                ),
            )
            .with_state(served.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let crm = CrmClient::new(CrmConfig {
            login_url: Url::parse(&base).unwrap(),
            instance_url: Some(Url::parse(&base).unwrap()),
            api_version: "62.0".into(),
            auth: AuthConfig::ClientCredentials {
                client_id: "id".into(),
                client_secret: "secret".to_string().into(),
            },
            timeout: Duration::from_secs(5),
            max_retries: 0,
        })
        .unwrap();
        (crm, served)
    }

    fn first_page() -> QueryPage {
        QueryPage {
            total_size: 3,
            done: false,
            next_records_url: Some("/services/data/v62.0/query/01g-1".into()),
            records: vec![json!({"Id": "a"}).as_object().unwrap().clone()],
        }
    }

    fn ids(page: &QueryPage) -> Vec<String> {
        page.records
            .iter()
            .filter_map(|r| r["Id"].as_str().map(str::to_string))
            .collect()
    }

    #[tokio::test]
    async fn every_page_is_handed_over_in_order() {
        let (crm, served) = three_page_crm().await;
        let mut seen = Vec::new();
        follow(
            &crm,
            first_page(),
            || None::<CrmError>,
            |page| {
                seen.extend(ids(&page));
                Ok::<_, CrmError>(())
            },
        )
        .await
        .unwrap();
        assert_eq!(seen, ["a", "b", "c"]);
        assert_eq!(served.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_stop_ends_the_walk_before_the_next_request() {
        let (crm, served) = three_page_crm().await;
        let mut seen = Vec::new();
        let asked = Cell::new(0);
        let result = follow(
            &crm,
            first_page(),
            || {
                asked.set(asked.get() + 1);
                (asked.get() == 2).then(|| CrmError::InvalidRequest("stopped".into()))
            },
            |page| {
                seen.extend(ids(&page));
                Ok::<_, CrmError>(())
            },
        )
        .await;
        assert!(
            matches!(&result, Err(CrmError::InvalidRequest(why)) if why == "stopped"),
            "{result:?}"
        );
        assert_eq!(seen, ["a", "b"], "the page in hand is kept, no later one");
        assert_eq!(served.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_last_page_is_not_followed_and_stop_is_not_asked() {
        let (crm, served) = three_page_crm().await;
        let mut last = first_page();
        // A done page keeps no link to follow, even if the CRM sent one.
        last.done = true;
        let mut seen = Vec::new();
        follow(
            &crm,
            last,
            || -> Option<CrmError> { panic!("nothing to stop between") },
            |page| {
                seen.extend(ids(&page));
                Ok::<_, CrmError>(())
            },
        )
        .await
        .unwrap();
        assert_eq!(seen, ["a"]);
        assert_eq!(served.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_error_from_a_page_ends_the_walk() {
        let (crm, served) = three_page_crm().await;
        let result = follow(
            &crm,
            first_page(),
            || None,
            |_| Err(CrmError::InvalidRequest("bad page".into())),
        )
        .await;
        assert!(matches!(result, Err(CrmError::InvalidRequest(_))));
        assert_eq!(served.load(Ordering::SeqCst), 0);
    }
}
