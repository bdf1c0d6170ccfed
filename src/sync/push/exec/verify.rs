//! Comparing a read-back with what was pushed.
//!
//! Owns: [`verify`] (which pushed fields a record shows), [`Updated`] and the message for
//! fields the server accepted but did not take. Must not: do I/O.

use crate::model::Subscriber;
use crate::sync::fields::{Field, Fields, fields_of};

/// A field that did not take the pushed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub field: Field,
    pub pushed: String,
    pub found: String,
}

/// What `subscriber.update` changed, by its read-back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    pub took: Fields,
    pub ignored: Vec<Ignored>,
}

impl Updated {
    /// The write is done (its entry too): every field took.
    pub fn is_done(&self) -> bool {
        self.ignored.is_empty()
    }
}

/// Splits `pushed` into fields the record shows and fields it does not.
pub fn verify(record: &Subscriber, pushed: &Fields) -> (Fields, Vec<Ignored>) {
    let now = fields_of(record);
    let mut took = Fields::new();
    let mut ignored = Vec::new();
    for (f, v) in pushed {
        let found = now.get(f).cloned().unwrap_or_default();
        if found == *v {
            took.insert(*f, v.clone());
        } else {
            ignored.push(Ignored {
                field: *f,
                pushed: v.clone(),
                found,
            });
        }
    }
    (took, ignored)
}

pub fn ignored_message(ignored: &[Ignored]) -> String {
    let list = ignored
        .iter()
        .map(|i| {
            format!(
                "{} (pushed {:?}, server has {:?})",
                i.field.name(),
                i.pushed,
                i.found
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "the server accepted the write but these fields did not take: {list}; it may know them by other names: map them in [api.profile.methods.\"subscriber.update\"] (docs/client.md)"
    )
}
