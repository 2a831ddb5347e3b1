//! The SystemModstamp index: whatever writes, undos and history moves happened, reading by it
//! gives the records a scan of the table gives.

use chrono::Duration;

use super::*;
use crate::emulator::query::{is_deleted, matching};
use crate::emulator::soql;

/// The Ids of `object` stamped `floor` or later, by the index and by a scan, sorted.
fn by_index_and_scan(org: &Org, object: &str, floor: &str) -> (Vec<String>, Vec<String>) {
    let id = |r: &super::super::Record| r["Id"].as_str().unwrap().to_string();
    let mut indexed: Vec<String> = org.records_stamped_from(object, floor).map(id).collect();
    let mut scanned: Vec<String> = org
        .records(object)
        .filter(|r| Org::stamp_text(r).is_some_and(|t| t >= floor))
        .map(id)
        .collect();
    indexed.sort();
    scanned.sort();
    (indexed, scanned)
}

#[test]
fn the_modstamp_index_follows_every_write_undo_and_history_move() {
    let mut org = org();
    let a: Vec<String> = (0..6)
        .map(|i| account(&mut org, &format!("a{i}")))
        .collect();
    let later = t0() + Duration::minutes(5);
    org.update("Account", &a[1], &body(json!({"Name": "moved"})), later)
        .unwrap();
    org.delete(Some("Account"), &a[2], later).unwrap();
    let savepoint = org.savepoint();
    org.update("Account", &a[3], &body(json!({"Name": "undone"})), later)
        .unwrap();
    org.create("Account", &body(json!({"Name": "undone"})), later)
        .unwrap();
    org.rollback_to(savepoint);

    let stamp = |org: &Org, id: &str| {
        Org::stamp_text(org.get("Account", id).unwrap())
            .unwrap()
            .to_string()
    };
    let floor = stamp(&org, &a[1]);
    let (indexed, scanned) = by_index_and_scan(&org, "Account", &floor);
    assert_eq!(indexed, scanned);
    let mut want = vec![a[1].clone(), a[2].clone()];
    want.sort();
    assert_eq!(
        indexed, want,
        "the updated and the deleted account, not the undone write"
    );

    org.spread_history(t0() - Duration::days(30), t0() - Duration::days(1));
    org.age_history(Duration::days(2));
    for id in &a {
        let floor = stamp(&org, id);
        let (indexed, scanned) = by_index_and_scan(&org, "Account", &floor);
        assert_eq!(indexed, scanned, "from {floor}");
        assert!(indexed.contains(id));
    }
    // Nothing is left in the index at a stamp no record has any more.
    let (indexed, scanned) = by_index_and_scan(&org, "Account", &floor);
    assert_eq!(indexed, scanned);
    assert!(indexed.len() < a.len(), "{indexed:?}");

    // A query with a SystemModstamp floor reads by the index and matches the same records as
    // the same filter read by a scan (the floor hidden in an OR).
    let floor = stamp(&org, &a[3]);
    let at = floor.replace("+0000", "Z");
    let read = |text: &str| -> Vec<String> {
        let query = soql::parse(text, org.catalog()).unwrap();
        matching(&org, &query, true)
            .into_iter()
            .map(|r| format!("{} {}", r["Id"].as_str().unwrap(), is_deleted(r)))
            .collect()
    };
    let indexed = read(&format!(
        "SELECT Id FROM Account WHERE SystemModstamp >= {at} AND Name != 'x' ORDER BY Id"
    ));
    let scanned = read(&format!(
        "SELECT Id FROM Account WHERE (SystemModstamp >= {at} OR Name = 'never') AND Name != 'x' ORDER BY Id"
    ));
    assert_eq!(indexed, scanned);
    assert!(!indexed.is_empty());
}
