//! What the admin commands that explain the store's mirror (`explain`, `plan`) load: the
//! configuration, the store, the mapped names, the record Id they were given (checked), and
//! the mirror as the domain's rules read it.

use std::path::Path;

use crate::config::Config;
use crate::domain::Rules;
use crate::store::Store;
use crate::sync::compute::{org_data, MirrorInputs};
use crate::sync::{Names, ObjectKind, SyncEngine};

use super::ids;
use super::status::config_and_store;
use super::sync::sync_settings;
use super::CliError;

/// The configuration, the store, the names and the checked Id a command was given.
pub struct AdminInputs {
    pub config: Config,
    pub store: Store,
    pub names: Names,
    /// The record's Id, well formed and of `kind` (see [`ids::check_arg`]).
    pub id: String,
}

impl AdminInputs {
    /// Loads the configuration at `config` and its store, and checks `raw_id` as the Id of a
    /// `kind` record for `command`.
    pub fn load(
        config: &Path,
        raw_id: &str,
        kind: ObjectKind,
        command: &str,
    ) -> Result<AdminInputs, CliError> {
        let (config, store) = config_and_store(config)?;
        let settings = sync_settings(&config);
        let id = ids::check_arg(raw_id, kind, command, &settings.names, Some(&store))?;
        Ok(AdminInputs {
            config,
            store,
            names: settings.names,
            id,
        })
    }

    /// The rules a cycle uses and the mirror's records as they read them, amounts converted at
    /// the rates the last cycle stored.
    pub fn org(&self) -> Result<(Rules, MirrorInputs), CliError> {
        let settings = sync_settings(&self.config);
        let rates = SyncEngine::stored_rates(&self.store, settings.currency)?;
        let inputs = org_data(&self.store, &self.names, rates)?;
        Ok((settings.rules, inputs))
    }
}
