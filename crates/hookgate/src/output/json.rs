//! JSON output: pretty documents for one-shot commands, compact lines for
//! streams, so that `jq` reads either.

use serde_json::Value;

/// Prints `value` as an indented document.
pub fn print(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("a JSON value serialises")
    );
}

/// Prints `value` on one line (JSON Lines).
pub fn line(value: &Value) {
    println!("{value}");
}
