//! Run kinds: what a run does, whether it is a dry run, and the name the run log, the report
//! and `status` give the pair (`incremental`, `full`, `dry-run`, `resync`, `resync-dry-run`,
//! `snapshot`, `snapshot-dry-run`). Scripts read those names: they never change.

use std::fmt;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunKind {
    /// Pull what changed since the cursors.
    Incremental,
    /// Re-pull everything, reconcile deletions, recompute every plan.
    Full,
    /// Re-pull what a resync target names, ignoring (and keeping) the cursors.
    Resync,
    /// An incremental cycle evaluated as of a date that writes the plan snapshots only.
    Snapshot,
}

impl RunKind {
    pub const ALL: [RunKind; 4] = [
        RunKind::Incremental,
        RunKind::Full,
        RunKind::Resync,
        RunKind::Snapshot,
    ];

    /// The name of a run of this kind that writes.
    pub fn as_str(self) -> &'static str {
        RunName::new(self, false).as_str()
    }
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run's kind and whether it is a dry run (pulls and computes, writes nothing to the CRM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunName {
    pub kind: RunKind,
    pub dry_run: bool,
}

impl RunName {
    pub fn new(kind: RunKind, dry_run: bool) -> Self {
        RunName { kind, dry_run }
    }

    /// The name the run log keeps and `status` shows. A dry run of a cycle, full or not, is
    /// `dry-run`.
    pub fn as_str(self) -> &'static str {
        match (self.kind, self.dry_run) {
            (RunKind::Incremental | RunKind::Full, true) => "dry-run",
            (RunKind::Incremental, false) => "incremental",
            (RunKind::Full, false) => "full",
            (RunKind::Resync, false) => "resync",
            (RunKind::Resync, true) => "resync-dry-run",
            (RunKind::Snapshot, false) => "snapshot",
            (RunKind::Snapshot, true) => "snapshot-dry-run",
        }
    }

    /// Reads a name from the run log. `dry-run` reads as an incremental dry run (the log does
    /// not tell a full dry run from an incremental one); `None` for a name plansync never
    /// writes.
    pub fn parse(text: &str) -> Option<RunName> {
        [false, true]
            .into_iter()
            .flat_map(|dry_run| RunKind::ALL.map(|kind| RunName::new(kind, dry_run)))
            .find(|name| name.as_str() == text)
    }

    /// Whether a run of this name recomputes the plans and writes their values: a dry run
    /// writes nothing, a snapshot run only the snapshot records.
    pub fn writes_plans(self) -> bool {
        !self.dry_run && self.kind != RunKind::Snapshot
    }
}

impl fmt::Display for RunName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use RunKind::*;

    #[test]
    fn names_are_the_ones_the_run_log_has_always_kept() {
        let cases = [
            (Incremental, false, "incremental"),
            (Full, false, "full"),
            (Incremental, true, "dry-run"),
            (Full, true, "dry-run"),
            (Resync, false, "resync"),
            (Resync, true, "resync-dry-run"),
            (Snapshot, false, "snapshot"),
            (Snapshot, true, "snapshot-dry-run"),
        ];
        for (kind, dry_run, text) in cases {
            let name = RunName::new(kind, dry_run);
            assert_eq!(name.as_str(), text, "{kind:?} dry_run={dry_run}");
            assert_eq!(name.to_string(), text);
        }
        assert_eq!(Full.as_str(), "full");
        assert_eq!(Snapshot.to_string(), "snapshot");
    }

    #[test]
    fn names_read_back_and_unknown_ones_do_not() {
        for text in [
            "incremental",
            "full",
            "dry-run",
            "resync",
            "resync-dry-run",
            "snapshot",
            "snapshot-dry-run",
        ] {
            let name = RunName::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(name.as_str(), text);
        }
        assert_eq!(
            RunName::parse("dry-run"),
            Some(RunName::new(Incremental, true))
        );
        for text in ["", "Full", "nightly", "dry-run-full", " full"] {
            assert_eq!(RunName::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn only_runs_that_write_plan_values_count_as_writing_plans() {
        let cases = [
            (Incremental, false, true),
            (Full, false, true),
            (Resync, false, true),
            (Snapshot, false, false),
            (Incremental, true, false),
            (Full, true, false),
            (Resync, true, false),
            (Snapshot, true, false),
        ];
        for (kind, dry_run, writes) in cases {
            assert_eq!(
                RunName::new(kind, dry_run).writes_plans(),
                writes,
                "{kind:?} dry_run={dry_run}"
            );
        }
    }
}
