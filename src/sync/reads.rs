//! Reading several queries at the fewest API calls: their pages go out as composite requests
//! (one API call each) of up to [`COMPOSITE_MAX_QUERY_OR_COLLECTIONS`] query operations, a
//! query's later pages chained in the following calls; slots a call has left over chain more
//! pages of the queries it carries. An org that refuses the composite resource (an API version
//! before it, or the resource turned off: `404 NOT_FOUND`) is read through plain REST queries
//! instead, one request per page, for the rest of the process.
//!
//! Pages reach the caller in each query's order; a query's own failure (`MALFORMED_QUERY`,
//! `INVALID_TYPE`, `QUERY_TIMEOUT`) comes back as that query's result, and the others go on.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{debug, warn};

use crate::crm::{
    CrmClient, CrmError, PageRead, QueryPage, RawQueryPage, COMPOSITE_MAX_QUERY_OR_COLLECTIONS,
};

use super::SyncError;

/// Whether the org serves the composite resource; once refused, never asked again by this
/// process.
#[derive(Debug, Default)]
pub struct Composite {
    refused: AtomicBool,
}

/// Error codes with which a CRM says it does not serve a resource at this API version.
const REFUSAL_CODES: &[&str] = &[
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "FUNCTIONALITY_NOT_ENABLED",
];

impl Composite {
    /// Whether composite requests are still worth sending.
    pub fn usable(&self) -> bool {
        !self.refused.load(Ordering::Relaxed)
    }

    /// Whether `error`, the answer to a composite request as a whole, says the org does not
    /// serve the resource; remembers it (and says so once in the log) when it does.
    pub fn refused_by(&self, error: &CrmError) -> bool {
        let refused = matches!(error, CrmError::Api { status, error_code, .. }
            if *status == 404 || *status == 405 || REFUSAL_CODES.contains(&error_code.as_str()));
        if refused && !self.refused.swap(true, Ordering::Relaxed) {
            warn!(error = %error, "the CRM does not serve composite requests: using one REST request per page and per write batch");
        }
        refused
    }
}

/// Where one query's reading starts.
#[derive(Debug, Clone)]
pub enum Source {
    /// A SOQL query (`queryAll` when `include_deleted`).
    Query { soql: String, include_deleted: bool },
    /// A first page already read; its next pages are read from here.
    Page(QueryPage),
}

/// Where one query's reading stands.
enum State {
    Start { soql: String, include_deleted: bool },
    Next(String),
    Done,
    Failed(CrmError),
}

impl State {
    fn active(&self) -> bool {
        matches!(self, State::Start { .. } | State::Next(_))
    }

    fn read(&self, chained: usize) -> Option<PageRead> {
        match self {
            State::Start {
                soql,
                include_deleted,
            } => Some(PageRead::query(soql, *include_deleted, chained)),
            State::Next(url) => Some(PageRead::next(url, chained)),
            State::Done | State::Failed(_) => None,
        }
    }
}

/// Where a query stands after `page`: its next page, or done.
fn after(page: &QueryPage) -> State {
    match (&page.next_records_url, page.done) {
        (Some(next), false) => State::Next(next.clone()),
        _ => State::Done,
    }
}

/// How many pages to chain after each of a call's reads: the call's spare operations go one
/// at a time to the reads known to have more pages (`more`), or, when none is, to every read
/// (a first page may have more).
pub fn chain_spares(more: &[bool], spare: usize) -> Vec<usize> {
    let mut chained = vec![0; more.len()];
    let mut order: Vec<usize> = (0..more.len()).filter(|i| more[*i]).collect();
    if order.is_empty() {
        order = (0..more.len()).collect();
    }
    if order.is_empty() {
        return chained;
    }
    for n in 0..spare {
        chained[order[n % order.len()]] += 1;
    }
    chained
}

/// The composite calls of one round, as the sources (indexes into `states`) each carries:
/// first pages packed five to a call; a query known to have more pages gets a call of its
/// own (its spare operations chain its next pages) while fewer than `concurrency` calls are
/// planned, else joins the emptiest one. At most `concurrency` calls; the rest wait for the
/// next round.
fn call_groups(states: &[State], active: &[usize], concurrency: usize) -> Vec<Vec<usize>> {
    let starts: Vec<usize> = active
        .iter()
        .copied()
        .filter(|i| matches!(states[*i], State::Start { .. }))
        .collect();
    let mut groups: Vec<Vec<usize>> = starts
        .chunks(COMPOSITE_MAX_QUERY_OR_COLLECTIONS)
        .map(<[usize]>::to_vec)
        .collect();
    groups.truncate(concurrency.max(1));
    for i in active
        .iter()
        .copied()
        .filter(|i| matches!(states[*i], State::Next(_)))
    {
        if groups.len() < concurrency.max(1) {
            groups.push(vec![i]);
        } else if let Some(group) = groups
            .iter_mut()
            .filter(|g| g.len() < COMPOSITE_MAX_QUERY_OR_COLLECTIONS)
            .min_by_key(|g| g.len())
        {
            group.push(i);
        }
    }
    groups
}

/// Sends the composite reads of one round at the same time; their answers in order.
#[allow(clippy::type_complexity)]
async fn send_calls(
    crm: &CrmClient,
    calls: Vec<Vec<PageRead>>,
) -> Vec<Result<Vec<Result<Vec<RawQueryPage>, CrmError>>, CrmError>> {
    if calls.len() == 1 {
        return vec![crm.query_pages_composite_raw(&calls[0]).await];
    }
    let count = calls.len();
    let mut set = tokio::task::JoinSet::new();
    for (n, reads) in calls.into_iter().enumerate() {
        let crm = crm.clone();
        set.spawn(async move { (n, crm.query_pages_composite_raw(&reads).await) });
    }
    let mut answers: Vec<Option<_>> = (0..count).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((n, answer)) = joined {
            answers[n] = Some(answer);
        }
    }
    answers
        .into_iter()
        .map(|answer| {
            answer.unwrap_or_else(|| {
                Err(CrmError::InvalidRequest(
                    "a composite read ended without an answer".into(),
                ))
            })
        })
        .collect()
}

/// Reads every source to its end, handing each page to `on_page` with the index of its
/// source, with up to `concurrency` composite calls in flight. `stop` is asked before every
/// round of requests; `Some(why)` ends the reading with
/// [`SyncError::Stopped`]. Returns each source's own outcome; an error of the request as a
/// whole (transport, session, quota) or of `on_page` ends the reading.
pub async fn read_pages(
    crm: &CrmClient,
    composite: &Composite,
    concurrency: usize,
    sources: Vec<Source>,
    stop: &dyn Fn() -> Option<String>,
    mut on_page: impl FnMut(usize, QueryPage) -> Result<(), SyncError>,
) -> Result<Vec<Result<(), CrmError>>, SyncError> {
    let mut states = Vec::with_capacity(sources.len());
    for (i, source) in sources.into_iter().enumerate() {
        states.push(match source {
            Source::Query {
                soql,
                include_deleted,
            } => State::Start {
                soql,
                include_deleted,
            },
            Source::Page(page) => {
                let state = after(&page);
                on_page(i, page)?;
                state
            }
        });
    }
    loop {
        let active: Vec<usize> = (0..states.len()).filter(|i| states[*i].active()).collect();
        if active.is_empty() {
            break;
        }
        if let Some(why) = stop() {
            return Err(SyncError::Stopped(why));
        }
        if composite.usable() {
            let groups = call_groups(&states, &active, concurrency);
            let calls: Vec<Vec<PageRead>> = groups
                .iter()
                .map(|group| {
                    let more: Vec<bool> = group
                        .iter()
                        .map(|i| matches!(states[*i], State::Next(_)))
                        .collect();
                    let spare = COMPOSITE_MAX_QUERY_OR_COLLECTIONS - group.len();
                    group
                        .iter()
                        .zip(chain_spares(&more, spare))
                        .filter_map(|(i, c)| states[*i].read(c))
                        .collect()
                })
                .collect();
            debug!(calls = calls.len(), "composite reads");
            let answers = send_calls(crm, calls).await;
            let mut refused = false;
            for (group, answer) in groups.iter().zip(answers) {
                match answer {
                    Ok(results) => {
                        for (i, result) in group.iter().zip(results) {
                            states[*i] = match result {
                                Ok(pages) => {
                                    // Each page's records are parsed when its turn comes.
                                    let mut state = State::Done;
                                    for (p, page) in pages.into_iter().enumerate() {
                                        match page.parse() {
                                            Ok(page) => {
                                                state = after(&page);
                                                on_page(*i, page)?;
                                            }
                                            Err(error) if p == 0 => {
                                                state = State::Failed(error);
                                                break;
                                            }
                                            // The pages before it are stored: go on from
                                            // the last one's nextRecordsUrl.
                                            Err(_) => break,
                                        }
                                    }
                                    state
                                }
                                Err(error) => State::Failed(error),
                            };
                        }
                    }
                    Err(error) if composite.refused_by(&error) => refused = true,
                    Err(error) => return Err(error.into()),
                }
            }
            if refused {
                continue;
            }
        } else {
            let i = active[0];
            let answer = match &states[i] {
                State::Start {
                    soql,
                    include_deleted,
                } => crm.query(soql, *include_deleted).await,
                State::Next(url) => crm.query_more(url).await,
                State::Done | State::Failed(_) => continue,
            };
            states[i] = match answer {
                Ok(page) => {
                    let state = after(&page);
                    on_page(i, page)?;
                    state
                }
                Err(error @ CrmError::Api { .. }) => State::Failed(error),
                Err(error) => return Err(error.into()),
            };
        }
    }
    Ok(states
        .into_iter()
        .map(|s| match s {
            State::Failed(error) => Err(error),
            _ => Ok(()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_operations_chain_pages_of_queries_with_more_first() {
        assert_eq!(chain_spares(&[false; 5], 0), [0; 5]);
        assert_eq!(chain_spares(&[false], 4), [4]);
        assert_eq!(chain_spares(&[false, true], 3), [0, 3]);
        assert_eq!(chain_spares(&[false, false], 3), [2, 1]);
        assert_eq!(chain_spares(&[false, false, true], 2), [0, 0, 2]);
        assert_eq!(chain_spares(&[true, false, true], 2), [1, 0, 1]);
        assert_eq!(chain_spares(&[], 5), Vec::<usize>::new());
    }

    #[test]
    fn first_pages_pack_five_to_a_call_and_long_queries_get_calls_of_their_own() {
        let start = || State::Start {
            soql: "SELECT Id FROM Account".into(),
            include_deleted: true,
        };
        let next = || State::Next("/services/data/v62.0/query/01g-2000".into());
        // An incremental cycle: seven first pages in two calls, whatever the bound.
        let states: Vec<State> = (0..7).map(|_| start()).collect();
        let active: Vec<usize> = (0..7).collect();
        assert_eq!(
            call_groups(&states, &active, 3),
            [vec![0, 1, 2, 3, 4], vec![5, 6]]
        );
        assert_eq!(call_groups(&states, &active, 1), [vec![0, 1, 2, 3, 4]]);
        // Three long queries and a first page: the first page's call, then one call per long
        // query up to the bound; the last one joins the emptiest call.
        let states = vec![next(), start(), next(), next(), State::Done];
        let active = vec![0, 1, 2, 3];
        assert_eq!(
            call_groups(&states, &active, 3),
            [vec![1, 3], vec![0], vec![2]]
        );
        assert_eq!(call_groups(&states, &active, 1), [vec![1, 0, 2, 3]]);
        assert_eq!(
            call_groups(&states, &active, 5),
            [vec![1], vec![0], vec![2], vec![3]]
        );
    }

    #[test]
    fn only_a_missing_resource_refuses_composite() {
        let api = |status, code: &str| CrmError::Api {
            status,
            error_code: code.into(),
            message: "m".into(),
            fields: Vec::new(),
        };
        let composite = Composite::default();
        assert!(!composite.refused_by(&api(400, "MALFORMED_QUERY")));
        assert!(!composite.refused_by(&api(403, "REQUEST_LIMIT_EXCEEDED")));
        assert!(!composite.refused_by(&CrmError::SessionExpired));
        assert!(composite.usable());
        assert!(composite.refused_by(&api(404, "NOT_FOUND")));
        assert!(!composite.usable(), "remembered");
    }
}
