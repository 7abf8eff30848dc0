//! The WaaS 2.0 event catalogue: every event type an endpoint may subscribe
//! to, the data type its payload carries, and a description.
//!
//! The list is compiled in from `data/event-types.json`. Types marked `core`
//! carry typed data (`Transaction`, `TSSRequest`) and have sample payloads
//! for test triggers; every other type carries its data through unchanged.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

const CATALOGUE_JSON: &str = include_str!("../data/event-types.json");

/// One entry of the catalogue.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventType {
    /// Dotted name, such as `wallets.transaction.succeeded`.
    pub event_type: String,
    /// The `data_type` discriminator of the payload, when published.
    pub data_type: Option<String>,
    /// Whether the payload is typed and has a sample for test triggers.
    pub core: bool,
    /// What the event means.
    pub description: String,
}

#[derive(Deserialize)]
struct CatalogueFile {
    event_types: Vec<EventType>,
}

/// Every event type, in catalogue order.
pub fn all() -> &'static [EventType] {
    static CATALOGUE: OnceLock<Vec<EventType>> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        let file: CatalogueFile =
            serde_json::from_str(CATALOGUE_JSON).expect("the compiled-in catalogue is valid JSON");
        file.event_types
    })
}

/// The entry for `name`, if the catalogue has it.
pub fn find(name: &str) -> Option<&'static EventType> {
    all().iter().find(|t| t.event_type == name)
}

/// Up to `limit` catalogue names closest to `name`, nearest first: what a
/// user most likely meant when `name` is not in the catalogue.
pub fn closest(name: &str, limit: usize) -> Vec<&'static str> {
    let mut scored: Vec<(usize, &'static str)> = all()
        .iter()
        .map(|t| (edit_distance(name, &t.event_type), t.event_type.as_str()))
        .collect();
    scored.sort();
    scored.into_iter().take(limit).map(|(_, n)| n).collect()
}

/// Levenshtein distance over chars; the names are short, so the plain
/// two-row algorithm is enough.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];

    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }

    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_the_sixty_types_with_unique_names() {
        let names: std::collections::HashSet<_> = all().iter().map(|t| &t.event_type).collect();
        assert_eq!(all().len(), 60);
        assert_eq!(names.len(), 60);
    }

    #[test]
    fn core_types_are_transactions_and_tss_requests() {
        let tx = find("wallets.transaction.succeeded").unwrap();
        assert!(tx.core);
        assert_eq!(tx.data_type.as_deref(), Some("Transaction"));
        assert_eq!(
            find("wallets.mpc.tss_request.failed")
                .unwrap()
                .data_type
                .as_deref(),
            Some("TSSRequest")
        );
        assert!(find("wallets.transaction.exploded").is_none());
    }

    #[test]
    fn closest_suggests_the_typo_fix_first() {
        assert_eq!(
            closest("wallets.transaction.suceeded", 3)[0],
            "wallets.transaction.succeeded"
        );
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
