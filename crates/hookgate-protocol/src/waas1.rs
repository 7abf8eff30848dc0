//! WaaS 1.0 bodies as Cobo serialised them.
//!
//! Cobo's 1.0 servers wrote JSON the way Python's `json.dumps` does by
//! default: `", "` between items, `": "` after keys, and every non-ASCII
//! character escaped as `\uXXXX`. When the producer hands the server a 1.0
//! body as a JSON object, the server writes it once in that form; when it
//! hands over a string, those bytes are sent as they are.

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};
use serde_json::Value;

/// Writes JSON like Python's `json.dumps(value)` with default arguments.
pub fn to_python_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let mut serializer = Serializer::with_formatter(&mut out, PythonFormatter);
    value
        .serialize(&mut serializer)
        .expect("writing JSON to memory cannot fail");
    out
}

struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        let text: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => return write!(w, "\\u{byte:04x}"),
        };
        w.write_all(text)
    }
}

/// The Cobo transaction id a 1.0 body carries: `id` in the custodial form,
/// `cobo_id` in the MPC form. Empty for a withdrawal confirmation, which is
/// asked before Cobo assigns one.
pub fn cobo_transaction_id(body: &Value) -> &str {
    body.get("cobo_id")
        .or_else(|| body.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::vectors;

    #[test]
    fn reproduces_the_bytes_cobo_signed() {
        for v in vectors::load().cobo_v1_secp256k1 {
            let Some(body) = v.body else { continue };
            let parsed: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                String::from_utf8(to_python_json(&parsed)).unwrap(),
                body,
                "{}",
                v.name
            );
        }
    }

    #[test]
    fn escapes_like_python() {
        let value = serde_json::json!({"a": ["Zoë", "😊"], "b": "x\ny\u{1}", "c": null, "d": 1.5});
        assert_eq!(
            String::from_utf8(to_python_json(&value)).unwrap(),
            r#"{"a": ["Zo\u00eb", "\ud83d\ude0a"], "b": "x\ny\u0001", "c": null, "d": 1.5}"#
        );
    }

    #[test]
    fn finds_the_transaction_id_in_both_forms() {
        let custodial = serde_json::json!({"id": "2025", "coin": "BTC"});
        let mpc = serde_json::json!({"cobo_id": "2026", "request_id": "r"});
        assert_eq!(cobo_transaction_id(&custodial), "2025");
        assert_eq!(cobo_transaction_id(&mpc), "2026");
        assert_eq!(cobo_transaction_id(&serde_json::json!({})), "");
    }
}
