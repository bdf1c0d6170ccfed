//! Settling an unknown outcome: did the write we may have sent take effect?
//!
//! Owns: finding a subscriber we may have created (by the natural key, else by name in the
//! target department among subscribers the mirror has never seen), and checking whether a
//! number is on a subscriber. Must not: write anything; "certainly absent" is said only
//! after a look-up that succeeded.

use std::collections::BTreeSet;

use super::remote::{PushRemote, WriteResult};
use crate::model::Subscriber;
use crate::sync::fields::{Field, Fields, fields_of};
use crate::sync::plan::DesiredDn;

/// What a look-up found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Present(i64),
    Absent,
}

/// Looks for the subscriber a create with `fields` would have made. `known` are ids that
/// existed before (the mirror) or are linked to other rows: they are never adopted by name.
pub async fn find_created<R: PushRemote>(
    remote: &R,
    fields: &Fields,
    natural_key: Option<Field>,
    known: &BTreeSet<i64>,
) -> WriteResult<Found> {
    let key_value = natural_key.and_then(|f| fields.get(&f).map(|v| (f, v.trim().to_lowercase())));
    let key_value = key_value.filter(|(_, v)| !v.is_empty());
    if let Some((Field::Email, email)) = &key_value {
        return Ok(match remote.find_by_email(email).await? {
            Some(s) => Found::Present(s.id),
            None => Found::Absent,
        });
    }
    let Some(department) = fields
        .get(&Field::DepartmentId)
        .and_then(|d| d.parse::<i64>().ok())
    else {
        return Ok(Found::Absent);
    };
    let name = fields.get(&Field::Fullname).cloned().unwrap_or_default();
    let listed = remote.list_department(department).await?;
    let mut matches = Vec::new();
    for s in listed
        .iter()
        .filter(|s| s.fullname.as_deref() == Some(name.as_str()))
    {
        // Lists may carry partial records: read the whole record before comparing keys.
        let full = match &key_value {
            Some(_) => remote.get(s.id).await?.unwrap_or_else(|| s.clone()),
            None => s.clone(),
        };
        if matches_key(&full, key_value.as_ref())
            && (key_value.is_some() || !known.contains(&full.id))
        {
            matches.push(full.id);
        }
    }
    matches.sort_unstable();
    Ok(match matches.first() {
        Some(id) => Found::Present(*id),
        None => Found::Absent,
    })
}

fn matches_key(s: &Subscriber, key: Option<&(Field, String)>) -> bool {
    match key {
        None => true,
        Some((field, want)) => fields_of(s)
            .get(field)
            .is_some_and(|v| v.trim().to_lowercase() == *want),
    }
}

/// Whether subscriber `id` holds `dn` now.
pub async fn has_dn<R: PushRemote>(
    remote: &R,
    id: i64,
    dn: &DesiredDn,
) -> WriteResult<Option<bool>> {
    let Some(s) = remote.get(id).await? else {
        return Ok(Some(false));
    };
    // `None`: the server does not list numbers in the record, so we cannot tell.
    Ok(s.dns.map(|dns| {
        dns.iter()
            .any(|d| d.dn == dn.dn && d.pbx_id.is_none_or(|p| p == dn.pbx_id))
    }))
}
