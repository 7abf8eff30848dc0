//! How commands print what they got: a readable table (the default) or
//! JSON (`--output json`), one file per format.
//!
//! Commands describe a list by its columns ([`Column`]) and let the chosen
//! format decide; streams (`webhook listen`) print one line per item, and
//! one JSON document per line in JSON mode.

pub mod json;
pub mod table;

use serde_json::Value;

/// The output formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON for scripts (one document per line for streams).
    Json,
}

/// One column of a table: its heading and the field it shows.
pub struct Column {
    /// Heading, in capitals.
    pub heading: &'static str,
    /// Field name in each item (a dotted path reaches into objects).
    pub field: &'static str,
}

/// Shorthand for a [`Column`].
pub const fn column(heading: &'static str, field: &'static str) -> Column {
    Column { heading, field }
}

/// Prints a list of items.
pub fn list(format: Format, items: &[Value], columns: &[Column]) {
    match format {
        Format::Table => print!("{}", table::render(items, columns)),
        Format::Json => json::print(&Value::Array(items.to_vec())),
    }
}

/// Prints one item: every field in table mode, or the document.
pub fn record(format: Format, item: &Value) {
    match format {
        Format::Table => print!("{}", table::render_record(item)),
        Format::Json => json::print(item),
    }
}

/// Prints a short confirmation in table mode, or the server's answer.
pub fn done(format: Format, message: &str, answer: &Value) {
    match format {
        Format::Table => println!("{message}"),
        Format::Json => json::print(answer),
    }
}
