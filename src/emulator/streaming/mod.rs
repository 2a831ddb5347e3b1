//! Change Data Capture: the org's change events, kept in a bounded retention buffer with
//! replay ids, and served over CometD (Bayeux long polling) at `/cometd/NN.0` by [`bayeux`].
//!
//! Every transaction the emulator commits through its REST API (one plain request, one
//! sObject Collections request, one composite request) publishes change events: one per
//! object and kind of change, merging the records that got the same change (the CRM puts
//! their Ids in one event's `recordIds`), with a `transactionKey` shared by the events of the
//! transaction and a `sequenceNumber` counting them. Replay ids increase by one per event.
//! The facts, their sources and what is simplified are in `docs/streaming.md`.

pub(crate) mod bayeux;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::faults::ConnectFault;
use super::org::{ChangeKind, RecordChange};

/// The channel that carries the change events of every object.
pub const ALL_CHANGE_EVENTS: &str = "/data/ChangeEvents";

/// How long the CRM keeps change events: 72 hours.
pub const DEFAULT_RETENTION_AGE: Duration = Duration::from_secs(72 * 3600);

/// How many events the emulator keeps at most (the oldest go first).
pub const DEFAULT_RETENTION_COUNT: usize = 10_000;

/// How long the CRM holds a `/meta/connect` with no event to deliver, and the `timeout` of
/// its advice: 110 seconds.
pub const DEFAULT_LONG_POLL_TIMEOUT: Duration = Duration::from_secs(110);

/// How long the CRM keeps a client that does not reconnect after a `/meta/connect` returned:
/// 40 seconds.
pub const DEFAULT_CLIENT_IDLE_LIMIT: Duration = Duration::from_secs(40);

/// Changes in one transaction beyond which the CRM sends overflow events instead.
pub const DEFAULT_OVERFLOW_THRESHOLD: usize = 100_000;

/// Most events one `/meta/connect` answer carries; the rest go with the next one.
const MAX_EVENTS_PER_CONNECT: usize = 1_000;

/// The streaming side of an emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamingConfig {
    /// How long a `/meta/connect` waits for events (and the advice's `timeout`).
    pub long_poll_timeout: Duration,
    /// How long a client may stay away between connects before it is forgotten.
    pub client_idle_limit: Duration,
    /// Events older than this are dropped.
    pub retention_age: Duration,
    /// At most this many events are kept.
    pub retention_count: usize,
    /// Changes in one transaction beyond this number give one `GAP_OVERFLOW` event per object
    /// instead of change events (a create, delete or undelete counts one; an update counts
    /// its changed fields).
    pub overflow_threshold: usize,
    /// Whether messages after the handshake must carry the `BAYEUX_BROWSER` cookie the
    /// handshake set, as the CRM requires.
    pub require_cookie: bool,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        StreamingConfig {
            long_poll_timeout: DEFAULT_LONG_POLL_TIMEOUT,
            client_idle_limit: DEFAULT_CLIENT_IDLE_LIMIT,
            retention_age: DEFAULT_RETENTION_AGE,
            retention_count: DEFAULT_RETENTION_COUNT,
            overflow_threshold: DEFAULT_OVERFLOW_THRESHOLD,
            require_cookie: true,
        }
    }
}

/// One published event as the buffer keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub replay_id: u64,
    /// The object's API name (`entityName`).
    pub entity: String,
    /// The object's own channel (`/data/AccountChangeEvent`).
    pub channel: String,
    pub published_at: DateTime<Utc>,
    /// The `data` member of the delivered message: `schema`, `payload`, `event.replayId`.
    pub data: Value,
}

/// The standard objects with change events (Change Data Capture Developer Guide, "Change
/// Event Object Support"); every custom object has them too.
pub const STANDARD_OBJECTS_WITH_CHANGE_EVENTS: &[&str] = &[
    "Account",
    "AccountContactRole",
    "Asset",
    "Campaign",
    "CampaignMember",
    "CampaignMemberStatus",
    "Case",
    "Contact",
    "Contract",
    "ContractLineItem",
    "Entitlement",
    "Event",
    "EventRelation",
    "Lead",
    "ListEmail",
    "LiveChatTranscript",
    "Opportunity",
    "OpportunityContactRole",
    "Order",
    "OrderItem",
    "Product2",
    "Quote",
    "QuoteLineItem",
    "ServiceContract",
    "Task",
    "TaskRelation",
    "User",
];

/// Whether the CRM publishes change events for `object`: every custom object, and the
/// standard objects of [`STANDARD_OBJECTS_WITH_CHANGE_EVENTS`] (not, for instance,
/// `CurrencyType` or `OpportunityStage`).
pub fn has_change_events(object: &str) -> bool {
    object.ends_with("__c") || STANDARD_OBJECTS_WITH_CHANGE_EVENTS.contains(&object)
}

/// The name of the change event of an object: `AccountChangeEvent`, and for a custom object
/// the name without its `c` suffix: `Account_Plan__ChangeEvent`.
pub fn change_event_name(object: &str) -> String {
    match object.strip_suffix("__c") {
        Some(base) => format!("{base}__ChangeEvent"),
        None => format!("{object}ChangeEvent"),
    }
}

/// The channel of an object's change events: `/data/AccountChangeEvent`.
pub fn channel_of(object: &str) -> String {
    format!("/data/{}", change_event_name(object))
}

/// The `schema` of an object's events: a stable opaque id, 22 characters as the CRM's.
fn schema_id(entity: &str) -> String {
    // FNV-1a over the name, twice with different seeds, for 16 bytes.
    let hash = |seed: u64| {
        entity.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let mut bytes = hash(0xcbf2_9ce4_8422_2325).to_be_bytes().to_vec();
    bytes.extend_from_slice(&hash(0x8422_2325_cbf2_9ce4).to_be_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A transaction key in the CRM's form (`0002343d-9d90-e395-ed20-cf416ba652ad`).
fn transaction_key() -> String {
    let mut rng = rand::thread_rng();
    let hex = |n: usize, rng: &mut rand::rngs::ThreadRng| -> String {
        (0..n)
            .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
            .collect()
    };
    format!(
        "{}-{}-{}-{}-{}",
        hex(8, &mut rng),
        hex(4, &mut rng),
        hex(4, &mut rng),
        hex(4, &mut rng),
        hex(12, &mut rng)
    )
}

/// Who committed a transaction and through what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The committing user's Id (`commitUser`).
    pub user_id: String,
    /// `changeOrigin`: `com/salesforce/api/rest/59.0;client=plansync`, or empty.
    pub change_origin: String,
}

impl Origin {
    /// A change made through the REST API of `version` (`59.0`), by the API client named in
    /// the `Sforce-Call-Options` header's `client=` if any.
    pub fn rest(user_id: &str, version: &str, client: Option<&str>) -> Origin {
        let mut change_origin = format!("com/salesforce/api/rest/{version}");
        if let Some(client) = client.filter(|c| !c.is_empty()) {
            change_origin.push_str(";client=");
            change_origin.push_str(client);
        }
        Origin {
            user_id: user_id.to_string(),
            change_origin,
        }
    }
}

#[derive(Debug)]
struct Bus {
    last_replay_id: u64,
    /// The highest replay id dropped from retention (0: none yet).
    purged_through: u64,
    commit_number: u64,
    events: VecDeque<StoredEvent>,
}

/// Switches for tests: what the next messages suffer.
#[derive(Debug, Default)]
struct Faults {
    /// This many next `/meta/connect` requests get their connection closed unanswered.
    drop_connects: u32,
    /// `/meta/connect` number → its fault (the fault spec's `connect-*` items).
    schedule: BTreeMap<u64, ConnectFault>,
    /// `/meta/connect` messages seen since the schedule was set.
    connects: u64,
}

/// The org's change events and the CometD clients reading them.
#[derive(Debug)]
pub struct Streaming {
    config: StreamingConfig,
    bus: Mutex<Bus>,
    /// Bumped on every publish and every fault, to wake held connects.
    wake: watch::Sender<u64>,
    clients: Mutex<HashMap<String, bayeux::Client>>,
    faults: Mutex<Faults>,
    /// Set when the server stops: held connects answer at once.
    closed: AtomicBool,
}

/// A change of one object in a transaction, merging the records that got the same change.
struct Group {
    entity: String,
    kind: ChangeKind,
    ids: Vec<String>,
    fields: Map<String, Value>,
    changed_fields: Vec<String>,
    committed_at: DateTime<Utc>,
}

/// The audit fields whose values differ between records changed together; two changes are
/// the same change when everything else is equal.
const AUDIT: [&str; 5] = [
    "Id",
    "CreatedDate",
    "LastModifiedDate",
    "CreatedById",
    "LastModifiedById",
];

fn same_change(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let strip = |m: &Map<String, Value>| -> Vec<(String, Value)> {
        m.iter()
            .filter(|(k, _)| !AUDIT.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    strip(a) == strip(b)
}

impl Streaming {
    pub fn new(config: StreamingConfig) -> Streaming {
        Streaming {
            config,
            bus: Mutex::new(Bus {
                last_replay_id: 0,
                purged_through: 0,
                commit_number: 10_650_000_000,
                events: VecDeque::new(),
            }),
            wake: watch::channel(0).0,
            clients: Mutex::new(HashMap::new()),
            faults: Mutex::new(Faults::default()),
            closed: AtomicBool::new(false),
        }
    }

    pub fn config(&self) -> &StreamingConfig {
        &self.config
    }

    fn bus(&self) -> MutexGuard<'_, Bus> {
        self.bus.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn clients(&self) -> MutexGuard<'_, HashMap<String, bayeux::Client>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every held `/meta/connect`, which then re-checks its client and session.
    pub fn wake(&self) {
        self.wake.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Makes every held and later `/meta/connect` answer without waiting (the server stops).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub(crate) fn wake_receiver(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    /// Publishes the change events of one committed transaction; returns their replay ids.
    pub fn publish_transaction(&self, changes: Vec<RecordChange>, origin: &Origin) -> Vec<u64> {
        if changes.is_empty() {
            return Vec::new();
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut overflowed: Vec<String> = Vec::new();
        let mut counted = 0usize;
        for change in changes {
            if !has_change_events(&change.object) {
                continue;
            }
            let weight = match change.kind {
                ChangeKind::Update => change.changed_fields.len().max(1),
                _ => 1,
            };
            counted += weight;
            if counted > self.config.overflow_threshold {
                if !overflowed.contains(&change.object) {
                    overflowed.push(change.object);
                }
                continue;
            }
            let found = groups.iter_mut().find(|g| {
                g.entity == change.object
                    && g.kind == change.kind
                    && g.changed_fields == change.changed_fields
                    && same_change(&g.fields, &change.fields)
            });
            match found {
                Some(g) => g.ids.push(change.id),
                None => groups.push(Group {
                    entity: change.object,
                    kind: change.kind,
                    ids: vec![change.id],
                    fields: change.fields,
                    changed_fields: change.changed_fields,
                    committed_at: change.committed_at,
                }),
            }
        }
        if groups.is_empty() && overflowed.is_empty() {
            return Vec::new();
        }
        let key = transaction_key();
        let mut bus = self.bus();
        bus.commit_number += 1;
        let commit_number = bus.commit_number;
        let mut sequence = 0u64;
        let mut published = Vec::new();
        for g in groups {
            sequence += 1;
            let header = json!({
                "entityName": g.entity,
                "recordIds": g.ids,
                "changeType": g.kind.change_type(),
                "changeOrigin": origin.change_origin,
                "transactionKey": key,
                "sequenceNumber": sequence,
                "commitTimestamp": g.committed_at.timestamp_millis(),
                "commitNumber": commit_number,
                "commitUser": origin.user_id,
                "changedFields": g.changed_fields,
            });
            let mut payload = Map::new();
            payload.insert("ChangeEventHeader".into(), header);
            for (k, v) in g.fields {
                if k != "Id" {
                    payload.insert(k, v);
                }
            }
            published.push(Self::push(&mut bus, &g.entity, payload));
        }
        for entity in overflowed {
            sequence += 1;
            let header = json!({
                "entityName": entity,
                "recordIds": [],
                "changeType": "GAP_OVERFLOW",
                "changeOrigin": origin.change_origin,
                "transactionKey": key,
                "sequenceNumber": sequence,
                "commitTimestamp": Utc::now().timestamp_millis(),
                "commitNumber": commit_number,
                "commitUser": origin.user_id,
                "changedFields": [],
            });
            let mut payload = Map::new();
            payload.insert("ChangeEventHeader".into(), header);
            published.push(Self::push(&mut bus, &entity, payload));
        }
        self.purge(&mut bus, Utc::now());
        drop(bus);
        self.wake();
        published
    }

    /// Publishes a gap event (`GAP_CREATE`, `GAP_UPDATE`, `GAP_DELETE`, `GAP_UNDELETE`) or,
    /// with `GAP_OVERFLOW` and no Ids, an overflow event for `entity`, as the CRM sends when
    /// it cannot describe a change. Returns its replay id.
    pub fn publish_gap(&self, entity: &str, change_type: &str, record_ids: &[String]) -> u64 {
        let mut bus = self.bus();
        bus.commit_number += 1;
        let header = json!({
            "entityName": entity,
            "recordIds": record_ids,
            "changeType": change_type,
            "changeOrigin": "",
            "transactionKey": transaction_key(),
            "sequenceNumber": 1,
            "commitTimestamp": Utc::now().timestamp_millis(),
            "commitNumber": bus.commit_number,
            "commitUser": "",
            "changedFields": [],
        });
        let mut payload = Map::new();
        payload.insert("ChangeEventHeader".into(), header);
        let id = Self::push(&mut bus, entity, payload);
        self.purge(&mut bus, Utc::now());
        drop(bus);
        self.wake();
        id
    }

    /// Publishes a `GAP_OVERFLOW` event for `entity`; returns its replay id.
    pub fn publish_overflow(&self, entity: &str) -> u64 {
        self.publish_gap(entity, "GAP_OVERFLOW", &[])
    }

    fn push(bus: &mut Bus, entity: &str, payload: Map<String, Value>) -> u64 {
        bus.last_replay_id += 1;
        let replay_id = bus.last_replay_id;
        let data = json!({
            "schema": schema_id(entity),
            "payload": payload,
            "event": {"replayId": replay_id},
        });
        bus.events.push_back(StoredEvent {
            replay_id,
            entity: entity.to_string(),
            channel: channel_of(entity),
            published_at: Utc::now(),
            data,
        });
        replay_id
    }

    fn purge(&self, bus: &mut Bus, now: DateTime<Utc>) {
        let age =
            chrono::Duration::from_std(self.config.retention_age).unwrap_or(chrono::Duration::MAX);
        while let Some(front) = bus.events.front() {
            let too_many = bus.events.len() > self.config.retention_count;
            let too_old = now - front.published_at > age;
            if !(too_many || too_old) {
                break;
            }
            bus.purged_through = front.replay_id;
            bus.events.pop_front();
        }
    }

    /// The retained events, oldest first (after dropping those past retention).
    pub fn retained(&self) -> Vec<StoredEvent> {
        let mut bus = self.bus();
        self.purge(&mut bus, Utc::now());
        bus.events.iter().cloned().collect()
    }

    /// The replay id of the latest event (0 before any).
    pub fn last_replay_id(&self) -> u64 {
        self.bus().last_replay_id
    }

    /// Where a subscription with this replay option starts (the last replay id it has
    /// seen), or `None` when the id is not one the bus can replay from.
    pub(crate) fn start_after(&self, replay: i64) -> Option<u64> {
        let mut bus = self.bus();
        self.purge(&mut bus, Utc::now());
        match replay {
            -1 => Some(bus.last_replay_id),
            -2 => Some(bus.purged_through),
            n if n >= 0 => {
                let n = n as u64;
                (bus.purged_through..=bus.last_replay_id)
                    .contains(&n)
                    .then_some(n)
            }
            _ => None,
        }
    }

    /// Events after `after` whose object's channel is `channel` (or every object for
    /// `/data/ChangeEvents`), at most `limit`.
    pub(crate) fn events_after(&self, channel: &str, after: u64, limit: usize) -> Vec<StoredEvent> {
        let bus = self.bus();
        bus.events
            .iter()
            .filter(|e| e.replay_id > after)
            .filter(|e| channel == ALL_CHANGE_EVENTS || e.channel == channel)
            .take(limit)
            .cloned()
            .collect()
    }

    /// Closes the connection of the next `/meta/connect` without an answer.
    pub fn drop_next_connect(&self) {
        self.faults().drop_connects += 1;
    }

    /// Sets the fault spec's `connect-*` schedule; connect numbering restarts at 1.
    pub fn set_connect_schedule(&self, schedule: BTreeMap<u64, ConnectFault>) {
        let mut faults = self.faults();
        faults.schedule = schedule;
        faults.connects = 0;
    }

    /// Counts a `/meta/connect` and returns the fault it gets, if any.
    pub(crate) fn next_connect_fault(&self) -> Option<ConnectFault> {
        let mut faults = self.faults();
        faults.connects += 1;
        if faults.drop_connects > 0 {
            faults.drop_connects -= 1;
            return Some(ConnectFault::Drop);
        }
        let n = faults.connects;
        faults.schedule.get(&n).copied()
    }

    /// Forgets every client, as the CRM does after a server restart or a long absence: the
    /// next message of each answers `403::Unknown client` with the advice to handshake.
    /// Held connects answer at once.
    pub fn forget_clients(&self) {
        self.clients().clear();
        self.wake();
    }

    /// How many clients are handshaken.
    pub fn client_count(&self) -> usize {
        self.clients().len()
    }
}

#[cfg(test)]
mod publish_tests;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod tests;
