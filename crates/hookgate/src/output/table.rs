//! Table output: aligned columns with a heading row, and `field: value`
//! lines for one record. Long cells are cut with an ellipsis so a row stays
//! on one line; `--output json` shows everything.

use serde_json::Value;

use super::Column;

/// Longest cell shown.
const MAX_CELL: usize = 60;

/// The text of a field for a cell: strings bare, lists joined by commas,
/// missing fields empty, anything else as JSON.
pub fn cell(item: &Value, field: &str) -> String {
    let value = field
        .split('.')
        .try_fold(item, |value, key| value.get(key))
        .unwrap_or(&Value::Null);
    let text = match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    shorten(&text.replace(['\n', '\r', '\t'], " "))
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_CELL {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_CELL - 1).collect();
    cut.push('…');
    cut
}

/// Renders `items` under `columns`; says so when there are none.
pub fn render(items: &[Value], columns: &[Column]) -> String {
    if items.is_empty() {
        return "(none)\n".to_owned();
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| columns.iter().map(|c| cell(item, c.field)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .chain([c.heading.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();

    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, text) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(text);
            } else {
                let pad = widths[i] - text.chars().count();
                out.push_str(text);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(columns.iter().map(|c| c.heading.to_owned()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// Renders one object as `field: value` lines, nested objects as JSON.
pub fn render_record(item: &Value) -> String {
    let Some(object) = item.as_object() else {
        return format!("{item}\n");
    };
    let width = object.keys().map(String::len).max().unwrap_or(0);
    object
        .iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            format!("{key:width$}  {text}\n")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::column;
    use serde_json::json;

    #[test]
    fn columns_align_and_lists_join() {
        let items = [
            json!({"id": "a", "events": ["x", "y"]}),
            json!({"id": "longer-id", "events": []}),
        ];
        let text = render(&items, &[column("ID", "id"), column("EVENTS", "events")]);
        assert_eq!(text, "ID         EVENTS\na          x,y\nlonger-id\n");
    }

    #[test]
    fn long_cells_are_cut_and_nested_fields_reached() {
        let item = json!({"a": {"b": "z".repeat(100)}});
        let text = cell(&item, "a.b");
        assert_eq!(text.chars().count(), MAX_CELL);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn an_empty_list_says_none() {
        assert_eq!(render(&[], &[column("ID", "id")]), "(none)\n");
    }
}
