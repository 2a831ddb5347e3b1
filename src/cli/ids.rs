//! Record Ids given on the command line, checked before anything runs: well formed (15 or 18
//! letters and digits, the 18-character checksum), and of the object the command expects, told
//! by the key prefix ([`crate::metadata::id::check`]). Standard objects' prefixes are the same
//! in every org; custom objects' prefixes are per org, so they are learned from the store's
//! mirror and, for commands that talk to the CRM, from the CRM itself.

use crate::crm::{soql, CrmClient};
use crate::metadata::id::{self, IdCheckError, Prefixes};
use crate::store::Store;
use crate::sync::{Names, ObjectKind};

use super::CliError;

/// The standard prefixes and those of the records the store's mirror holds (each object's
/// pull cursor is the Id of a record of it).
pub fn known_prefixes(store: Option<&Store>, names: &Names) -> Result<Prefixes, CliError> {
    let mut prefixes = Prefixes::standard();
    if let Some(store) = store {
        for kind in ObjectKind::ALL {
            let object = names.object(kind);
            if let Some(cursor) = store.cursor(object)? {
                if let Some(prefix) = id::key_prefix(&cursor.id) {
                    prefixes.learn(prefix, object);
                }
            }
        }
    }
    Ok(prefixes)
}

/// Checks an Id given to `taker` (a command or an option) for a record of `kind`; returns
/// its 18-character form. A wrong Id is an input error (exit status 2).
pub fn check_arg(
    input: &str,
    kind: ObjectKind,
    taker: &str,
    names: &Names,
    store: Option<&Store>,
) -> Result<String, CliError> {
    let prefixes = known_prefixes(store, names)?;
    Ok(id::check(input, names.object(kind), taker, &prefixes)?)
}

/// Like [`check_arg`], for commands that talk to the CRM: an Id of an object the local
/// knowledge cannot name is named by the CRM's list of objects, and the record must exist in
/// the CRM ([`confirm_in_crm`]).
pub async fn check_with_crm(
    input: &str,
    kind: ObjectKind,
    taker: &str,
    names: &Names,
    store: &Store,
    crm: &CrmClient,
) -> Result<String, CliError> {
    let object = names.object(kind);
    let id = match id::check(input, object, taker, &known_prefixes(Some(store), names)?) {
        Ok(id) => id,
        Err(local @ IdCheckError::WrongPrefix { .. }) => {
            let named = match crm_prefixes(crm).await {
                Some(prefixes) => id::check(input, object, taker, &prefixes).err(),
                None => None,
            };
            return Err(named.unwrap_or(local).into());
        }
        Err(e) => return Err(e.into()),
    };
    confirm_in_crm(crm, names, kind, &id, taker).await?;
    Ok(id)
}

/// The key prefix of every object the CRM's integration user can see.
async fn crm_prefixes(crm: &CrmClient) -> Option<Prefixes> {
    let list = crm.describe_global().await.ok()?;
    let mut prefixes = Prefixes::standard();
    for o in list["sobjects"].as_array()? {
        if let (Some(name), Some(prefix)) = (o["name"].as_str(), o["keyPrefix"].as_str()) {
            prefixes.learn(prefix, name);
        }
    }
    Some(prefixes)
}

/// Asks the CRM whether it has the record `id` of `kind` (deleted ones in the recycle bin
/// count: a resync removes them from the mirror). When it has none, says which object the
/// Id's key prefix belongs to, or that the CRM has no such record.
pub async fn confirm_in_crm(
    crm: &CrmClient,
    names: &Names,
    kind: ObjectKind,
    id: &str,
    taker: &str,
) -> Result<(), CliError> {
    let object = names.object(kind);
    let page = crm
        .query(
            &format!("SELECT Id FROM {object} WHERE Id = {}", soql::quote(id)),
            true,
        )
        .await?;
    if !page.records.is_empty() {
        return Ok(());
    }
    let prefix = id::key_prefix(id).unwrap_or_default();
    if let Some(owner) = crm_prefixes(crm)
        .await
        .and_then(|p| p.object_of(prefix).map(str::to_string))
    {
        if !owner.eq_ignore_ascii_case(object) {
            return Err(IdCheckError::OtherObject {
                id: id.to_string(),
                prefix: prefix.to_string(),
                object: owner,
                expected: object.to_string(),
                taker: taker.to_string(),
            }
            .into());
        }
    }
    Err(CliError::Input(format!(
        "the CRM has no {object} with Id {id}, not even in its recycle bin; {taker} takes the Id \
         of an existing {object}"
    )))
}
