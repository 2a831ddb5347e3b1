//! The standard objects plansync reads, described as a new org describes them.
