//! The dialect-free half of the stores' list queries: which rows a list or
//! search wants ([`Filter`]), how a page is bounded by its cursor
//! ([`Window`]), and how fetched rows become a page ([`finish_page`]). Each
//! store renders a [`Filter`] in its own SQL and binds its values its own
//! way; what the filters mean is written once, here. So is the choice of
//! which due rows a claim takes ([`choose_claimable`]).

use std::collections::{HashMap, HashSet};

use super::{
    CallbackMessageQuery, CallbackSearch, Claim, Cursor, DeliveryKind, DeliveryState, EventQuery,
    EventSearch, PageRequest,
};

/// A value bound into a [`Filter`].
#[derive(Clone, Debug, PartialEq)]
pub enum Bind {
    /// A text value.
    Text(String),
    /// An integer value.
    Int(i64),
}

impl From<String> for Bind {
    fn from(text: String) -> Self {
        Bind::Text(text)
    }
}

impl From<i64> for Bind {
    fn from(number: i64) -> Self {
        Bind::Int(number)
    }
}

/// One condition of a [`Filter`].
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// SQL text whose `?` marks take `binds` in order.
    Clause(String, Vec<Bind>),
    /// `column` equals one of `values` (`IN (...)` or `= ANY(...)`).
    AnyOf(String, Vec<String>),
}

/// A WHERE clause: its parts joined with AND.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    /// The conditions.
    pub parts: Vec<Part>,
}

impl Filter {
    /// A filter of one condition with one value.
    pub fn new(clause: &str, value: impl Into<Bind>) -> Self {
        Self {
            parts: vec![Part::Clause(clause.into(), vec![value.into()])],
        }
    }

    /// Adds a condition with one value.
    pub fn and(&mut self, clause: &str, value: impl Into<Bind>) {
        self.parts
            .push(Part::Clause(clause.into(), vec![value.into()]));
    }

    /// Adds a condition with any number of values.
    pub fn and_all(&mut self, clause: &str, values: Vec<Bind>) {
        self.parts.push(Part::Clause(clause.into(), values));
    }

    /// Adds `column` equals one of `values`, when there are values.
    pub fn any_of(&mut self, column: &str, values: Vec<String>) {
        if !values.is_empty() {
            self.parts.push(Part::AnyOf(column.into(), values));
        }
    }

    /// Adds a creation-time range, each end when given (from inclusive,
    /// until exclusive).
    pub fn created_between(&mut self, from: Option<i64>, until: Option<i64>) {
        if let Some(from) = from {
            self.and("created_ts >= ?", from);
        }
        if let Some(until) = until {
            self.and("created_ts < ?", until);
        }
    }
}

/// The kinds of delivery that the event lists show (callback deliveries are
/// shown through their messages).
pub const EVENT_KINDS: [DeliveryKind; 2] = [DeliveryKind::Webhook, DeliveryKind::Waas1Notification];

fn kinds_of_events() -> Vec<String> {
    EVENT_KINDS.iter().map(|k| k.as_str().to_owned()).collect()
}

/// The API's event list of an organisation (or of one endpoint).
pub fn event_list(query: EventQuery) -> Filter {
    let mut filter = Filter::new("org_id = ?", query.org_id);
    filter.any_of("kind", kinds_of_events());
    if let Some(endpoint_id) = query.endpoint_id {
        filter.and("target_id = ?", endpoint_id);
    }
    let states = query.states.iter().map(|s| s.as_str().to_owned()).collect();
    filter.any_of("state", states);
    if let Some(event_type) = query.event_type {
        filter.and("event_type = ?", event_type);
    }
    filter.created_between(query.created_from, query.created_until);
    filter
}

/// The API's callback message list (each id list: any of its values).
pub fn message_list(query: CallbackMessageQuery) -> Filter {
    let mut filter = Filter::new("org_id = ?", query.org_id);
    filter.any_of("message_id", query.message_ids);
    filter.any_of("request_id", query.request_ids);
    filter.any_of("transaction_id", query.transaction_ids);
    filter.any_of("wallet_id", query.wallet_ids);
    filter.any_of("status", query.statuses);
    filter
}

/// The portal's event search as one filter per (kind, state) pair: each is
/// an equality on the leading columns of an index ordered by creation, so
/// every branch stops after one page however many rows match.
pub fn event_search_branches(search: &EventSearch) -> Vec<Filter> {
    let states: Vec<Option<DeliveryState>> = if search.states.is_empty() {
        vec![None]
    } else {
        search.states.iter().copied().map(Some).collect()
    };
    let mut branches = Vec::new();
    for kind in EVENT_KINDS {
        for state in &states {
            let mut filter = Filter::new("org_id = ?", search.org_id.clone());
            filter.and("kind = ?", kind.as_str().to_owned());
            if let Some(state) = state {
                filter.and("state = ?", state.as_str().to_owned());
            }
            if let Some(event_type) = &search.event_type {
                filter.and("event_type = ?", event_type.clone());
            }
            if let Some(event_id) = &search.event_id {
                filter.and("delivery_id = ?", event_id.clone());
            }
            if let Some(text) = &search.url_contains {
                filter.and_all(
                    "target_id IN (SELECT endpoint_id FROM endpoints
                         WHERE org_id = ? AND url LIKE ? ESCAPE '\\')",
                    vec![search.org_id.clone().into(), like_pattern(text).into()],
                );
            }
            filter.created_between(search.created_from, search.created_until);
            branches.push(filter);
        }
    }
    branches
}

/// The portal's callback message search, one branch per status.
pub fn callback_search_branches(search: &CallbackSearch) -> Vec<Filter> {
    let statuses: Vec<Option<&String>> = if search.statuses.is_empty() {
        vec![None]
    } else {
        search.statuses.iter().map(Some).collect()
    };
    statuses
        .into_iter()
        .map(|status| {
            let mut filter = Filter::new("org_id = ?", search.org_id.clone());
            if let Some(status) = status {
                filter.and("status = ?", status.clone());
            }
            let ids = [
                ("message_id = ?", &search.message_id),
                ("transaction_id = ?", &search.transaction_id),
                ("request_id = ?", &search.request_id),
                ("wallet_id = ?", &search.wallet_id),
            ];
            for (clause, value) in ids {
                if let Some(value) = value {
                    filter.and(clause, value.clone());
                }
            }
            filter.created_between(search.created_from, search.created_until);
            filter
        })
        .collect()
}

/// A `LIKE` pattern matching `text` anywhere, its wildcards taken literally
/// (with `ESCAPE '\'`).
pub fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// How one page is read: newest first (or, for the page before a cursor,
/// oldest first and reversed afterwards), one row more than the page to
/// know whether another page follows.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Rows on the page.
    pub limit: usize,
    /// Whether the rows are read oldest first (the page before a cursor).
    pub backwards: bool,
    /// `ASC` or `DESC`.
    pub order: &'static str,
    /// `(created_ts, row_id) <op> cursor`, when paging from a cursor.
    pub bound: Option<(&'static str, Cursor)>,
}

impl Window {
    /// The window a page request asks for.
    pub fn of(request: &PageRequest) -> Self {
        let backwards = request.before.is_some() && request.after.is_none();
        let bound = match (request.after, request.before) {
            (Some(cursor), _) => Some(("<", cursor)),
            (None, Some(cursor)) => Some((">", cursor)),
            (None, None) => None,
        };
        Self {
            limit: request.limit.clamp(1, 50),
            backwards,
            order: if backwards { "ASC" } else { "DESC" },
            bound,
        }
    }

    /// Rows to fetch: the page and one more.
    pub fn fetch(&self) -> i64 {
        self.limit as i64 + 1
    }
}

/// Puts rows fetched by several branches in page order.
pub fn merge_branches<T>(items: &mut [(Cursor, T)], window: &Window) {
    let key = |c: &Cursor| (c.created, c.row);
    if window.backwards {
        items.sort_by_key(|(c, _)| key(c));
    } else {
        items.sort_by_key(|(c, _)| std::cmp::Reverse(key(c)));
    }
}

/// A page's rows and the cursors of the newer and older pages.
pub type Finished<T> = (Vec<T>, Option<Cursor>, Option<Cursor>);

/// Orders, trims and labels fetched rows as the page the request asked for.
pub fn finish_page<T>(
    mut items: Vec<(Cursor, T)>,
    request: &PageRequest,
    window: &Window,
) -> Finished<T> {
    let more = items.len() > window.limit;
    items.truncate(window.limit);
    if window.backwards {
        items.reverse();
    }
    let (has_newer, has_older) = if window.backwards {
        (more, true)
    } else {
        (request.after.is_some(), more)
    };
    let before = items.first().filter(|_| has_newer).map(|(c, _)| *c);
    let after = items.last().filter(|_| has_older).map(|(c, _)| *c);
    (items.into_iter().map(|(_, i)| i).collect(), before, after)
}

/// Of due rows read in due order, as (row key, endpoint), those a claim
/// takes: none of an endpoint whose slots are full, at most
/// `claim.per_target` of any one endpoint (so that a dead endpoint with a
/// deep retry backlog cannot crowd out the others), at most `claim.limit`
/// in all, earliest due first.
///
/// The stores read a bounded number of due rows. SQLite leaves saturated
/// endpoints out while it reads, within a window sixteen times longer that
/// moves on from claim to claim until it has swept every due row; PostgreSQL
/// after reading (limitation: there, when every row read belongs to a
/// saturated endpoint, due rows of others behind them wait until those are
/// attempted).
pub fn choose_claimable<K>(due: Vec<(K, String)>, claim: &Claim) -> Vec<K> {
    let skip: HashSet<&str> = claim.skip_targets.iter().map(String::as_str).collect();
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut chosen = Vec::new();
    for (key, target) in due {
        if chosen.len() == claim.limit {
            break;
        }
        if skip.contains(target.as_str()) {
            continue;
        }
        let count = taken.entry(target).or_default();
        if *count < claim.per_target {
            *count += 1;
            chosen.push(key);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(n: i64) -> Cursor {
        Cursor { created: n, row: n }
    }

    #[test]
    fn first_page_points_only_to_older() {
        let request = PageRequest {
            limit: 2,
            ..PageRequest::default()
        };
        let window = Window::of(&request);
        let rows = vec![(cursor(3), 3), (cursor(2), 2), (cursor(1), 1)];
        let (items, before, after) = finish_page(rows, &request, &window);
        assert_eq!(items, vec![3, 2]);
        assert_eq!((before, after), (None, Some(cursor(2))));
    }

    #[test]
    fn page_before_a_cursor_is_read_backwards_and_reversed() {
        let request = PageRequest {
            limit: 2,
            before: Some(cursor(1)),
            ..PageRequest::default()
        };
        let window = Window::of(&request);
        assert_eq!(
            (window.order, window.bound),
            ("ASC", Some((">", cursor(1))))
        );
        let rows = vec![(cursor(2), 2), (cursor(3), 3), (cursor(4), 4)];
        let (items, before, after) = finish_page(rows, &request, &window);
        assert_eq!(items, vec![3, 2]);
        assert_eq!((before, after), (Some(cursor(3)), Some(cursor(2))));
    }

    #[test]
    fn branches_merge_newest_first() {
        let window = Window::of(&PageRequest {
            limit: 5,
            ..PageRequest::default()
        });
        let mut rows = vec![(cursor(1), 'a'), (cursor(3), 'b'), (cursor(2), 'c')];
        merge_branches(&mut rows, &window);
        assert_eq!(rows.iter().map(|(_, v)| *v).collect::<String>(), "bca");
    }

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }

    #[test]
    fn empty_lists_add_no_condition() {
        let mut filter = Filter::new("org_id = ?", "o".to_owned());
        filter.any_of("status", Vec::new());
        assert_eq!(filter.parts.len(), 1);
    }

    #[test]
    fn a_claim_skips_saturated_endpoints_and_caps_each_one() {
        let claim = Claim {
            owner: "n".into(),
            now: 0,
            lease_until: 1,
            limit: 4,
            per_target: 2,
            skip_targets: vec!["dead".into()],
        };
        let due = [
            (1, "dead"),
            (2, "a"),
            (3, "a"),
            (4, "a"),
            (5, "dead"),
            (6, "b"),
            (7, "c"),
            (8, "c"),
        ];
        let due = due.iter().map(|(k, t)| (*k, t.to_string())).collect();
        assert_eq!(choose_claimable(due, &claim), vec![2, 3, 6, 7]);
    }
}
