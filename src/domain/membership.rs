//! Plan membership (design.md §3.1): accounts(plan) is the plan's direct account, its
//! junction accounts and, with Include_Child_Accounts__c, every descendant of those through
//! ParentId. Each member carries how close it is, which linking's first tie-break reads.
//! Cycles in ParentId are found, reported, and never followed more than once.

use std::collections::{HashMap, HashSet, VecDeque};

use super::model::{Account, Plan};

/// How an account belongs to a plan, closest first: `Direct < Junction < Hierarchy{1} <
/// Hierarchy{2} < …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Membership {
    /// The plan's Account__c.
    Direct,
    /// The Account__c of one of the plan's Account_Plan_Account__c rows.
    Junction,
    /// A descendant of a direct or junction account, `hops` ParentId steps below the nearest.
    Hierarchy { hops: u32 },
}

/// The account hierarchy, indexed parent → children.
#[derive(Debug, Clone)]
pub struct Hierarchy<'a> {
    children: HashMap<&'a str, Vec<&'a str>>,
    cycles: Vec<Vec<String>>,
}

impl<'a> Hierarchy<'a> {
    pub fn new(accounts: &'a [Account]) -> Self {
        let mut children: HashMap<&'a str, Vec<&'a str>> = HashMap::new();
        for a in accounts {
            if let Some(parent) = a.parent_id.as_deref() {
                children.entry(parent).or_default().push(a.id.as_str());
            }
        }
        for list in children.values_mut() {
            list.sort_unstable();
            list.dedup();
        }
        Hierarchy {
            children,
            cycles: find_cycles(accounts),
        }
    }

    /// The ParentId cycles, each as its account Ids starting from the smallest, in parent
    /// order; sorted.
    pub fn cycles(&self) -> &[Vec<String>] {
        &self.cycles
    }

    /// accounts(plan) with each member's closeness, sorted by account Id.
    pub fn members<'p>(&self, plan: &'p Plan) -> Vec<(&'p str, Membership)>
    where
        'a: 'p,
    {
        let mut found: HashMap<&'p str, Membership> = HashMap::new();
        if let Some(a) = plan.account_id.as_deref() {
            found.insert(a, Membership::Direct);
        }
        for a in &plan.extra_account_ids {
            found.entry(a.as_str()).or_insert(Membership::Junction);
        }
        if plan.include_child_accounts {
            // Breadth-first from all roots at once gives every descendant its fewest hops;
            // the visited set is what breaks ParentId cycles.
            let mut roots: Vec<&'p str> = found.keys().copied().collect();
            roots.sort_unstable();
            let mut seen: HashSet<&'p str> = roots.iter().copied().collect();
            let mut queue: VecDeque<(&'p str, u32)> = roots.into_iter().map(|r| (r, 0)).collect();
            while let Some((account, hops)) = queue.pop_front() {
                let Some(kids) = self.children.get(account) else {
                    continue;
                };
                for &kid in kids {
                    if seen.insert(kid) {
                        found.insert(kid, Membership::Hierarchy { hops: hops + 1 });
                        queue.push_back((kid, hops + 1));
                    }
                }
            }
        }
        let mut out: Vec<_> = found.into_iter().collect();
        out.sort_unstable();
        out
    }
}

/// Every cycle of the ParentId graph, once each.
fn find_cycles(accounts: &[Account]) -> Vec<Vec<String>> {
    let parent: HashMap<&str, &str> = accounts
        .iter()
        .filter_map(|a| a.parent_id.as_deref().map(|p| (a.id.as_str(), p)))
        .collect();
    // 1 = on the current walk, 2 = done.
    let mut state: HashMap<&str, u8> = HashMap::new();
    let mut cycles = Vec::new();
    let mut ids: Vec<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
    ids.sort_unstable();
    for start in ids {
        if state.contains_key(start) {
            continue;
        }
        let mut path: Vec<&str> = Vec::new();
        let mut at = Some(start);
        while let Some(node) = at {
            match state.get(node) {
                Some(1) => {
                    if let Some(pos) = path.iter().position(|&n| n == node) {
                        let mut cycle: Vec<String> =
                            path[pos..].iter().map(|s| s.to_string()).collect();
                        if let Some(min) = (0..cycle.len()).min_by_key(|&i| &cycle[i]) {
                            cycle.rotate_left(min);
                        }
                        cycles.push(cycle);
                    }
                    break;
                }
                Some(_) => break,
                None => {
                    state.insert(node, 1);
                    path.push(node);
                    at = parent.get(node).copied();
                }
            }
        }
        for n in path {
            state.insert(n, 2);
        }
    }
    cycles.sort();
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testutil::plan;

    fn acct(id: &str, parent: Option<&str>) -> Account {
        Account {
            id: id.to_string(),
            parent_id: parent.map(str::to_string),
        }
    }

    /// R ─ C1 ─ G1 ─ GG1,  R ─ C2,  J ─ JC
    fn tree() -> Vec<Account> {
        vec![
            acct("R", None),
            acct("C1", Some("R")),
            acct("C2", Some("R")),
            acct("G1", Some("C1")),
            acct("GG1", Some("G1")),
            acct("J", None),
            acct("JC", Some("J")),
        ]
    }

    #[test]
    fn members_are_direct_junction_and_descendants_with_their_closeness() {
        let accounts = tree();
        let h = Hierarchy::new(&accounts);
        let mut p = plan("P", "R", "2026-01-01", "2026-12-31");
        p.extra_account_ids = vec!["J".into()];
        // (include children, expected members)
        let cases: [(bool, Vec<(&str, Membership)>); 2] = [
            (
                false,
                vec![("J", Membership::Junction), ("R", Membership::Direct)],
            ),
            (
                true,
                vec![
                    ("C1", Membership::Hierarchy { hops: 1 }),
                    ("C2", Membership::Hierarchy { hops: 1 }),
                    ("G1", Membership::Hierarchy { hops: 2 }),
                    ("GG1", Membership::Hierarchy { hops: 3 }),
                    ("J", Membership::Junction),
                    ("JC", Membership::Hierarchy { hops: 1 }),
                    ("R", Membership::Direct),
                ],
            ),
        ];
        for (include, want) in cases {
            p.include_child_accounts = include;
            assert_eq!(h.members(&p), want, "include children = {include}");
        }
        assert!(h.cycles().is_empty());
    }

    #[test]
    fn an_account_that_is_both_direct_and_junction_or_descendant_keeps_the_closest() {
        let accounts = tree();
        let h = Hierarchy::new(&accounts);
        let mut p = plan("P", "R", "2026-01-01", "2026-12-31");
        p.extra_account_ids = vec!["R".into(), "G1".into()];
        p.include_child_accounts = true;
        let m: HashMap<_, _> = h.members(&p).into_iter().collect();
        assert_eq!(m["R"], Membership::Direct);
        assert_eq!(m["G1"], Membership::Junction);
        // GG1 is 3 hops under R but 1 under the junction account G1: fewest hops wins.
        assert_eq!(m["GG1"], Membership::Hierarchy { hops: 1 });
    }

    #[test]
    fn closeness_orders_direct_then_junction_then_fewer_hops() {
        let mut order = vec![
            Membership::Hierarchy { hops: 2 },
            Membership::Junction,
            Membership::Hierarchy { hops: 1 },
            Membership::Direct,
        ];
        order.sort();
        assert_eq!(
            order,
            vec![
                Membership::Direct,
                Membership::Junction,
                Membership::Hierarchy { hops: 1 },
                Membership::Hierarchy { hops: 2 },
            ]
        );
    }

    #[test]
    fn hierarchy_cycles_are_reported_once_and_never_followed_forever() {
        // A → B → C → A (each line: child → parent), S → S, and D hangs under the cycle.
        let accounts = vec![
            acct("A", Some("C")),
            acct("B", Some("A")),
            acct("C", Some("B")),
            acct("D", Some("B")),
            acct("S", Some("S")),
            acct("T", None),
        ];
        let h = Hierarchy::new(&accounts);
        assert_eq!(
            h.cycles(),
            &[
                vec!["A".to_string(), "C".into(), "B".into()],
                vec!["S".to_string()],
            ]
        );
        let mut p = plan("P", "A", "2026-01-01", "2026-12-31");
        p.include_child_accounts = true;
        let m: Vec<_> = h.members(&p);
        assert_eq!(
            m,
            vec![
                ("A", Membership::Direct),
                ("B", Membership::Hierarchy { hops: 1 }),
                ("C", Membership::Hierarchy { hops: 2 }),
                ("D", Membership::Hierarchy { hops: 2 }),
            ]
        );
        let mut s = plan("P2", "S", "2026-01-01", "2026-12-31");
        s.include_child_accounts = true;
        assert_eq!(h.members(&s), vec![("S", Membership::Direct)]);
    }
}
