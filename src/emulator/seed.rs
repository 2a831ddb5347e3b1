//! Seeded orgs: `empty` (only the rows every org has), `demo` (a deterministic, realistic
//! sales org around `today`, multiplied by `scale`), and `golden` (the golden fixture's org,
//! loaded with its own Ids so results can be compared with its expected links and rollups).
//!
//! Every record goes through the org's normal create path, so the CRM's derived fields
//! (IsClosed, IsWon, Task/Event AccountId, ...) are computed by the org, not copied.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use super::org::{number, Org, RecordError};
use crate::metadata::standard::OPPORTUNITY_STAGES;

/// The seeds [`seed`] knows.
pub const SEEDS: &[&str] = &["empty", "demo", "golden"];

/// The golden fixture: an org and its settings (see `tests/fixtures/golden/README.md`).
pub const GOLDEN_ORG_JSON: &str = include_str!("../../tests/fixtures/golden/org.json");

/// The objects of the golden fixture, in load order (parents before children).
pub const GOLDEN_OBJECTS: &[&str] = &[
    "Account",
    "Contact",
    "Account_Plan__c",
    "Account_Plan_Account__c",
    "Opportunity",
    "Task",
    "Event",
];

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("unknown seed {0:?}; the known seeds are: empty, demo, golden")]
    Unknown(String),
    #[error("seed {seed}: creating {object} {what} failed")]
    Record {
        seed: String,
        object: String,
        what: String,
        #[source]
        source: Box<RecordError>,
    },
    #[error("the golden fixture is not usable: {0}")]
    Fixture(String),
}

/// What a seed created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedSummary {
    pub seed: String,
    /// Records created per object, in creation order of the objects.
    pub created: Vec<(String, usize)>,
    /// For `golden`: the date the fixture's expectations were computed for (`as_of`).
    pub as_of: Option<NaiveDate>,
}

impl SeedSummary {
    fn add(&mut self, object: &str) {
        match self.created.iter_mut().find(|(o, _)| o == object) {
            Some((_, n)) => *n += 1,
            None => self.created.push((object.to_string(), 1)),
        }
    }

    /// Records created for `object`.
    pub fn count(&self, object: &str) -> usize {
        self.created
            .iter()
            .find(|(o, _)| o == object)
            .map_or(0, |(_, n)| *n)
    }

    /// Records created in all.
    pub fn total(&self) -> usize {
        self.created.iter().map(|(_, n)| n).sum()
    }
}

/// Fills `org` with the named seed. `scale` multiplies the demo volume (0 counts as 1);
/// `today` anchors the demo's dates; `now` stamps the records.
pub fn seed(
    org: &mut Org,
    name: &str,
    scale: u32,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<SeedSummary, SeedError> {
    match name {
        "empty" => Ok(SeedSummary {
            seed: name.into(),
            ..SeedSummary::default()
        }),
        "demo" => Demo::new(org, scale.max(1), today, now).run(),
        "golden" => golden(org, now),
        other => Err(SeedError::Unknown(other.to_string())),
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn day(d: NaiveDate) -> Value {
    Value::from(d.format("%Y-%m-%d").to_string())
}

fn money(cents: i64) -> Value {
    let d = rust_decimal::Decimal::new(cents, 2).normalize();
    d.to_string()
        .parse::<serde_json::Number>()
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

const COMPANY_WORDS: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Gringotts",
    "Monarch",
    "Oscorp",
    "Pied Piper",
    "Massive",
    "Dunder",
    "Aperture",
    "Black Mesa",
    "Nakatomi",
    "Rekall",
    "Virtucon",
    "Zorg",
    "Duff",
    "Bluth",
    "Sterling",
    "Prestige",
    "Kramerica",
    "Octan",
];
const SUFFIXES: &[&str] = &["Corp", "Holdings", "Labs", "Group", "Industries", "Systems"];
const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Edsger",
    "Radia",
    "Guido",
    "Hedy",
    "John",
    "Katherine",
    "Tim",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Rossum",
    "Lamarr",
    "Backus",
    "Johnson",
    "Berners-Lee",
];
const TITLES: &[&str] = &[
    "CEO",
    "CFO",
    "VP Sales",
    "Head of IT",
    "Procurement Lead",
    "Engineer",
];

struct Demo<'a> {
    org: &'a mut Org,
    scale: u32,
    today: NaiveDate,
    now: DateTime<Utc>,
    rng: ChaCha8Rng,
    summary: SeedSummary,
    /// The org has CurrencyIsoCode fields: vary record currencies and seed dated rates.
    multi_currency: bool,
}

impl<'a> Demo<'a> {
    fn new(org: &'a mut Org, scale: u32, today: NaiveDate, now: DateTime<Utc>) -> Self {
        let multi_currency = org.catalog().object("DatedConversionRate").is_some();
        Demo {
            org,
            scale,
            today,
            now,
            // "plansync" in ASCII: the same seed gives the same org.
            rng: ChaCha8Rng::seed_from_u64(0x706c_616e_7379_6e63),
            multi_currency,
            summary: SeedSummary {
                seed: "demo".into(),
                ..SeedSummary::default()
            },
        }
    }

    fn create(&mut self, object: &str, fields: Value) -> Result<String, SeedError> {
        let body = obj(fields);
        match self.org.create(object, &body, self.now) {
            Ok(id) => {
                self.summary.add(object);
                Ok(id)
            }
            Err(source) => Err(SeedError::Record {
                seed: "demo".into(),
                object: object.into(),
                what: Value::Object(body).to_string(),
                source: Box::new(source),
            }),
        }
    }

    fn date_around(&mut self, before: i64, after: i64) -> NaiveDate {
        self.today + Duration::days(self.rng.gen_range(-before..=after))
    }

    /// Dated conversion rates as a real org keeps them: a first period from the beginning of
    /// the calendar (the rate the currency had when dated rates were turned on), then
    /// quarterly periods from the start of last year; the org chains them with NextStartDate,
    /// the last one running to the end of time.
    fn dated_rates(&mut self) -> Result<(), SeedError> {
        let year = self.today.year();
        for (code, base) in [("EUR", 920_000i64), ("GBP", 790_000), ("JPY", 151_500_000)] {
            let first = number(rust_decimal::Decimal::new(base, 6));
            self.create(
                "DatedConversionRate",
                json!({"IsoCode": code, "ConversionRate": first,
                       "StartDate": super::org::BEGINNING_OF_TIME}),
            )?;
            for q in 0..12u32 {
                let start = NaiveDate::from_ymd_opt(year - 1 + (q / 4) as i32, 1 + 3 * (q % 4), 1)
                    .unwrap_or(self.today);
                let drift = self.rng.gen_range(-40..=40) * base / 1000;
                let rate = number(rust_decimal::Decimal::new(base + drift, 6));
                self.create(
                    "DatedConversionRate",
                    json!({"IsoCode": code, "ConversionRate": rate, "StartDate": day(start)}),
                )?;
            }
        }
        Ok(())
    }

    fn currency(&mut self, choices: &[&'static str]) -> Option<&'static str> {
        if self.multi_currency {
            choices.choose(&mut self.rng).copied()
        } else {
            None
        }
    }

    fn run(mut self) -> Result<SeedSummary, SeedError> {
        let mut users = vec![self.org.user_id().to_string()];
        for (i, (first, last)) in [("Sam", "Seller"), ("Riley", "Rep"), ("Morgan", "Manager")]
            .iter()
            .enumerate()
        {
            let username = format!("{}.{}@demo.example", first, last).to_ascii_lowercase();
            let id = self.create(
                "User",
                json!({"Username": username, "FirstName": first, "LastName": last,
                       "Email": username, "IsActive": true,
                       "TimeZoneSidKey": (["America/New_York", "Europe/London", "UTC"][i])}),
            )?;
            users.push(id);
        }
        if self.multi_currency {
            self.dated_rates()?;
        }
        for unit in 0..self.scale {
            self.unit(unit, &users)?;
        }
        Ok(self.summary)
    }

    /// One demo's worth of records: 30 accounts, 12 plans, 200 opportunities, 60 contacts,
    /// 150 tasks, 60 events.
    fn unit(&mut self, unit: u32, users: &[String]) -> Result<(), SeedError> {
        let tag = if unit == 0 {
            String::new()
        } else {
            format!(" #{}", unit + 1)
        };
        // Accounts: 6 roots, 12 children (2 per root), 12 grandchildren (1 per child).
        let mut accounts: Vec<String> = Vec::with_capacity(30);
        for i in 0..30usize {
            let parent = match i {
                0..=5 => None,
                6..=17 => Some(accounts[(i - 6) / 2].clone()),
                _ => Some(accounts[6 + (i - 18)].clone()),
            };
            let name = format!(
                "{} {}{}",
                COMPANY_WORDS[i % COMPANY_WORDS.len()],
                SUFFIXES[i % SUFFIXES.len()],
                tag
            );
            let owner = users.choose(&mut self.rng).cloned();
            let industry = [
                "Technology",
                "Manufacturing",
                "Retail",
                "Banking",
                "Healthcare",
            ][i % 5];
            let revenue = self.rng.gen_range(1..500) * 1_000_000i64;
            let id = self.create(
                "Account",
                json!({"Name": name, "ParentId": parent, "OwnerId": owner, "Type": "Customer - Direct",
                       "Industry": industry, "AnnualRevenue": revenue}),
            )?;
            accounts.push(id);
        }
        // Contacts.
        let mut contacts = Vec::with_capacity(60);
        for i in 0..60usize {
            let account = accounts[i % accounts.len()].clone();
            let first = FIRST[self.rng.gen_range(0..FIRST.len())];
            let last = LAST[self.rng.gen_range(0..LAST.len())];
            let title = TITLES[self.rng.gen_range(0..TITLES.len())];
            let email = format!("{}.{}{}@example.com", first, last, i).to_ascii_lowercase();
            let id = self.create(
                "Contact",
                json!({"FirstName": first, "LastName": last, "AccountId": account, "Title": title, "Email": email}),
            )?;
            contacts.push((id, account));
        }
        // Plans over several periods of this and last year.
        let year = self.today.year();
        let ymd = |y: i32, m: u32, d: u32| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
        let periods = [
            (ymd(year, 1, 1), ymd(year, 12, 31), "FY"),
            (ymd(year, 1, 1), ymd(year, 6, 30), "H1"),
            (ymd(year, 7, 1), ymd(year, 12, 31), "H2"),
            (ymd(year, 4, 1), ymd(year, 9, 30), "Mid-year"),
            (ymd(year - 1, 1, 1), ymd(year - 1, 12, 31), "FY"),
            (ymd(year + 1, 1, 1), ymd(year + 1, 12, 31), "FY"),
        ];
        let mut plans = Vec::with_capacity(12);
        for i in 0..12usize {
            let (start, end, label) = periods[i % periods.len()];
            // Plan 9 shares its account with plan 0 over an overlapping, shorter period.
            let account = accounts[if i == 9 { 0 } else { i % 18 }].clone();
            let status = match i {
                4 | 10 => "Closed",
                5 | 11 => "Draft",
                _ => "Active",
            };
            let target = self.rng.gen_range(20..200) * 10_000i64;
            let ratio = (i % 3 == 0).then(|| self.rng.gen_range(15..45));
            let name = format!(
                "{} {} {}{}",
                COMPANY_WORDS[i % 18 % COMPANY_WORDS.len()],
                label,
                start.year(),
                tag
            );
            let mut body = json!({"Name": name, "Account__c": account, "Period_Start__c": day(start),
                       "Period_End__c": day(end), "Status__c": status,
                       "Include_Child_Accounts__c": i % 4 == 1 || i < 6 && i % 2 == 0,
                       "Revenue_Target__c": target, "Close_Ratio__c": ratio});
            if let Some(code) = self.currency(&["USD", "USD", "EUR"]) {
                body["CurrencyIsoCode"] = json!(code);
            }
            let id = self.create("Account_Plan__c", body)?;
            plans.push(id);
        }
        // Extra accounts of multi-account plans.
        for (plan, extra) in [(1usize, 20usize), (1, 21), (3, 25), (7, 28), (8, 12)] {
            self.create(
                "Account_Plan_Account__c",
                json!({"Account_Plan__c": plans[plan], "Account__c": accounts[extra]}),
            )?;
        }
        // Opportunities around today: older ones mostly closed.
        let mut opps = Vec::with_capacity(200);
        for i in 0..200usize {
            let close = self.date_around(240, 200);
            let account = (self.rng.gen_range(0..20) != 0)
                .then(|| accounts[self.rng.gen_range(0..accounts.len())].clone());
            let stage = if close < self.today && self.rng.gen_bool(0.7) {
                if self.rng.gen_bool(0.45) {
                    "Closed Won"
                } else {
                    "Closed Lost"
                }
            } else {
                OPPORTUNITY_STAGES[self.rng.gen_range(0..8)].0
            };
            let amount = (self.rng.gen_range(0..20) != 0)
                .then(|| money(self.rng.gen_range(500_000..25_000_000)));
            let mut body = json!({"Name": format!("Opportunity {:03}{}", i, tag), "AccountId": account,
                                  "CloseDate": day(close), "StageName": stage, "Amount": amount,
                                  "OwnerId": users.choose(&mut self.rng).cloned()});
            if self.rng.gen_range(0..10) == 0 {
                body["Probability"] = json!(self.rng.gen_range(1..10) * 10);
            }
            if let Some(code) = self.currency(&["USD", "USD", "USD", "EUR", "GBP"]) {
                body["CurrencyIsoCode"] = json!(code);
            }
            let id = self.create("Opportunity", body)?;
            opps.push(id);
        }
        // Tasks.
        for i in 0..150usize {
            let what = match self.rng.gen_range(0..10) {
                0..=3 => Some(opps[self.rng.gen_range(0..opps.len())].clone()),
                4..=6 => Some(accounts[self.rng.gen_range(0..accounts.len())].clone()),
                _ => None,
            };
            let who = self
                .rng
                .gen_bool(0.6)
                .then(|| contacts[self.rng.gen_range(0..contacts.len())].0.clone());
            let date = (self.rng.gen_range(0..10) != 0).then(|| self.date_around(90, 60));
            let status = match date {
                Some(d) if d < self.today && self.rng.gen_bool(0.7) => "Completed",
                _ => [
                    "Not Started",
                    "In Progress",
                    "Waiting on someone else",
                    "Deferred",
                ][self.rng.gen_range(0..4)],
            };
            let priority = ["High", "Normal", "Low"][self.rng.gen_range(0..3)];
            self.create(
                "Task",
                json!({"Subject": format!("Follow up {:03}{}", i, tag), "WhatId": what, "WhoId": who,
                       "ActivityDate": date.map(day), "Status": status, "Priority": priority}),
            )?;
        }
        // Events.
        for i in 0..60usize {
            let what = self
                .rng
                .gen_bool(0.7)
                .then(|| opps[self.rng.gen_range(0..opps.len())].clone());
            let who = self
                .rng
                .gen_bool(0.6)
                .then(|| contacts[self.rng.gen_range(0..contacts.len())].0.clone());
            let date = self.date_around(60, 60);
            let subject = format!("Meeting {:03}{}", i, tag);
            let body = if self.rng.gen_range(0..4) == 0 {
                json!({"Subject": subject, "WhatId": what, "WhoId": who, "IsAllDayEvent": true,
                       "ActivityDate": day(date)})
            } else {
                let hour = self.rng.gen_range(7..19);
                let start = date
                    .and_hms_opt(hour, [0, 30][self.rng.gen_range(0..2)], 0)
                    .unwrap_or_default()
                    .and_utc();
                json!({"Subject": subject, "WhatId": what, "WhoId": who, "IsAllDayEvent": false,
                       "StartDateTime": super::org::format_datetime(start),
                       "DurationInMinutes": ([30, 60, 90][self.rng.gen_range(0..3)])})
            };
            self.create("Event", body)?;
        }
        Ok(())
    }
}

/// The golden fixture parsed: its settings and records per object.
pub fn golden_fixture() -> Result<Map<String, Value>, SeedError> {
    match serde_json::from_str::<Value>(GOLDEN_ORG_JSON) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(SeedError::Fixture("org.json is not a JSON object".into())),
        Err(e) => Err(SeedError::Fixture(format!("org.json: {e}"))),
    }
}

fn golden(org: &mut Org, now: DateTime<Utc>) -> Result<SeedSummary, SeedError> {
    let fixture = golden_fixture()?;
    let as_of = fixture
        .get("as_of")
        .and_then(Value::as_str)
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .ok_or_else(|| SeedError::Fixture("org.json has no as_of date".into()))?;
    let mut summary = SeedSummary {
        seed: "golden".into(),
        as_of: Some(as_of),
        ..SeedSummary::default()
    };
    let fail = |object: &str, id: &str, source: RecordError| SeedError::Record {
        seed: "golden".into(),
        object: object.into(),
        what: id.into(),
        source: Box::new(source),
    };
    for object in GOLDEN_OBJECTS {
        let rows = fixture
            .get(*object)
            .and_then(Value::as_array)
            .ok_or_else(|| SeedError::Fixture(format!("org.json has no {object} list")))?;
        let def = org
            .catalog()
            .object(object)
            .cloned()
            .ok_or_else(|| SeedError::Fixture(format!("the org has no object {object}")))?;
        // Self-references to records not loaded yet (ParentId) are set in a second pass.
        let mut deferred: Vec<(String, Map<String, Value>)> = Vec::new();
        for row in rows {
            let Some(row) = row.as_object() else {
                return Err(SeedError::Fixture(format!(
                    "{object}: a row is not an object"
                )));
            };
            let id = row
                .get("Id")
                .and_then(Value::as_str)
                .ok_or_else(|| SeedError::Fixture(format!("{object}: a row has no Id")))?
                .to_string();
            let mut body = Map::new();
            let mut later = Map::new();
            for (k, v) in row {
                let Some(f) = def.field(k) else {
                    return Err(SeedError::Fixture(format!(
                        "{object} {id}: unknown field {k}"
                    )));
                };
                if !f.createable {
                    continue;
                }
                let self_ref = f.reference_to.iter().any(|r| r == *object);
                match v.as_str() {
                    Some(target) if self_ref && org.get(object, target).is_none() => {
                        later.insert(k.clone(), v.clone());
                    }
                    _ => {
                        body.insert(k.clone(), v.clone());
                    }
                }
            }
            if *object == "Event"
                && body.get("IsAllDayEvent") != Some(&Value::Bool(true))
                && body.get("EndDateTime").is_none_or(Value::is_null)
                && body.get("DurationInMinutes").is_none_or(Value::is_null)
            {
                // The fixture gives only starts; the CRM needs an end or a duration.
                body.insert("DurationInMinutes".into(), Value::from(60));
            }
            org.create_with_id(object, &id, &body, now)
                .map_err(|e| fail(object, &id, e))?;
            summary.add(object);
            if !later.is_empty() {
                deferred.push((id, later));
            }
        }
        for (id, later) in deferred {
            org.update(object, &id, &later, now)
                .map_err(|e| fail(object, &id, e))?;
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::standard::catalog;
    use chrono::TimeZone;
    use rust_decimal::Decimal;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 8, 15, 6, 0, 0).unwrap()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 8, 15).unwrap()
    }

    fn seeded(name: &str, scale: u32) -> (Org, SeedSummary) {
        let mut org = Org::new(catalog(false).unwrap(), now());
        let summary = seed(&mut org, name, scale, today(), now()).unwrap();
        (org, summary)
    }

    #[test]
    fn empty_has_only_the_rows_every_org_has() {
        let (org, summary) = seeded("empty", 1);
        assert_eq!(summary.total(), 0);
        assert_eq!(org.count("OpportunityStage"), 10);
        assert_eq!(org.count("TaskStatus"), 5);
        assert_eq!(org.count("User"), 1);
        assert_eq!(org.count("Account"), 0);
    }

    #[test]
    fn unknown_seed_names_the_known_ones() {
        let mut org = Org::new(catalog(false).unwrap(), now());
        let err = seed(&mut org, "big", 1, today(), now())
            .unwrap_err()
            .to_string();
        for known in SEEDS {
            assert!(err.contains(known), "{err}");
        }
    }

    #[test]
    fn demo_is_deterministic_and_varied() {
        let (a, summary) = seeded("demo", 1);
        let (b, _) = seeded("demo", 1);
        assert_eq!(summary.count("Account"), 30);
        assert_eq!(summary.count("Account_Plan__c"), 12);
        assert_eq!(summary.count("Opportunity"), 200);
        assert_eq!(summary.count("Contact"), 60);
        assert_eq!(summary.count("Task"), 150);
        assert_eq!(summary.count("Event"), 60);
        for object in [
            "Account",
            "Account_Plan__c",
            "Account_Plan_Account__c",
            "Opportunity",
            "Task",
            "Event",
            "Contact",
        ] {
            let ra: Vec<_> = a.records(object).collect();
            let rb: Vec<_> = b.records(object).collect();
            assert_eq!(ra, rb, "{object} differs between two runs");
        }
        let opps: Vec<_> = a.records("Opportunity").collect();
        let won = opps.iter().filter(|o| o["IsWon"] == json!(true)).count();
        let lost = opps
            .iter()
            .filter(|o| o["IsClosed"] == json!(true) && o["IsWon"] == json!(false))
            .count();
        assert!(
            won > 10 && lost > 10 && won + lost < 190,
            "won {won} lost {lost}"
        );
        let statuses: std::collections::BTreeSet<_> = a
            .records("Account_Plan__c")
            .map(|p| p["Status__c"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(statuses.len(), 3);
        let with_parent = a
            .records("Account")
            .filter(|r| r.get("ParentId").is_some())
            .count();
        assert_eq!(with_parent, 24);
        let overdue = a
            .records("Task")
            .filter(|t| {
                t["IsClosed"] == json!(false)
                    && t.get("ActivityDate")
                        .and_then(Value::as_str)
                        .is_some_and(|d| d < "2026-08-15")
            })
            .count();
        assert!(overdue > 0);
    }

    #[test]
    fn multi_currency_demo_varies_currencies_and_seeds_dated_rates() {
        let mut org = Org::new(catalog(true).unwrap(), now());
        let summary = seed(&mut org, "demo", 1, today(), now()).unwrap();
        assert_eq!(summary.count("DatedConversionRate"), 39);
        let codes: std::collections::BTreeSet<_> = org
            .records("Opportunity")
            .map(|o| o["CurrencyIsoCode"].as_str().unwrap().to_string())
            .collect();
        assert!(codes.len() >= 3, "{codes:?}");
        // Per currency: the first period from the beginning of the calendar, each period
        // ending where the next starts, the last at the end of time.
        for code in ["EUR", "GBP", "JPY"] {
            let mut periods: Vec<(String, String)> = org
                .records("DatedConversionRate")
                .filter(|r| r["IsoCode"] == code)
                .map(|r| {
                    (
                        r["StartDate"].as_str().unwrap().to_string(),
                        r["NextStartDate"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            periods.sort();
            assert_eq!(periods[0].0, "0001-01-01", "{code}");
            assert_eq!(periods.last().unwrap().1, "9999-12-31", "{code}");
            for pair in periods.windows(2) {
                assert_eq!(pair[0].1, pair[1].0, "{code}: {periods:?}");
            }
        }
        let (single, _) = seeded("demo", 1);
        assert!(single
            .records("Opportunity")
            .all(|o| o.get("CurrencyIsoCode").is_none()));
    }

    #[test]
    fn demo_scale_multiplies_the_volume() {
        let (_, one) = seeded("demo", 1);
        let (_, three) = seeded("demo", 3);
        assert_eq!(three.count("Opportunity"), 3 * one.count("Opportunity"));
        assert_eq!(three.count("Account"), 3 * one.count("Account"));
        assert_eq!(three.count("User"), one.count("User"));
    }

    fn same(expected: &Value, actual: Option<&Value>) -> bool {
        let actual = actual.unwrap_or(&Value::Null);
        match (expected, actual) {
            (Value::Number(e), Value::Number(a)) => {
                e.to_string().parse::<Decimal>().ok() == a.to_string().parse::<Decimal>().ok()
            }
            _ => expected == actual,
        }
    }

    #[test]
    fn golden_loads_every_record_with_its_id_and_the_fixture_derived_values() {
        let (org, summary) = seeded("golden", 1);
        assert_eq!(summary.as_of, Some(today()));
        assert_eq!(summary.count("Account_Plan__c"), 16);
        assert_eq!(summary.count("Opportunity"), 260);
        let fixture = golden_fixture().unwrap();
        let mut compared = 0;
        for object in GOLDEN_OBJECTS {
            let rows = fixture[*object].as_array().unwrap();
            assert_eq!(summary.count(object), rows.len(), "{object}");
            for row in rows {
                let row = row.as_object().unwrap();
                let id = row["Id"].as_str().unwrap();
                let rec = org
                    .get(object, id)
                    .unwrap_or_else(|| panic!("{object} {id} missing"));
                for (k, v) in row {
                    assert!(
                        same(v, rec.get(k)),
                        "{object} {id} {k}: fixture {v}, org {:?}",
                        rec.get(k)
                    );
                    compared += 1;
                }
            }
        }
        assert!(compared > 5000);
        // New records continue after the fixture's Ids.
        let mut org = org;
        let id = org
            .create("Account", &obj(json!({"Name": "After"})), now())
            .unwrap();
        assert!(id.as_str() > "0015e00000000")
    }
}
