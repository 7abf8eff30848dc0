//! Reading headers from whatever a web framework hands over.
//!
//! [`HeaderSource`] is implemented for `http::HeaderMap` (axum, hyper,
//! reqwest, ...) and for plain lists and maps of name/value pairs, so a
//! receiver on any framework can pass its headers as they are. Names are
//! compared ignoring ASCII case.

use std::collections::{BTreeMap, HashMap};

use crate::error::{ReceiverError, Result};

/// Something headers can be looked up in, by name, ignoring ASCII case.
pub trait HeaderSource {
    /// The raw value of the first header named `name`, ignoring ASCII case.
    fn header_bytes(&self, name: &str) -> Option<&[u8]>;
}

impl HeaderSource for http::HeaderMap {
    fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(key, _)| key.as_str().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_bytes())
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> HeaderSource for [(K, V)] {
    fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(key, _)| key.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>, const N: usize> HeaderSource for [(K, V); N] {
    fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.as_slice().header_bytes(name)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> HeaderSource for Vec<(K, V)> {
    fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.as_slice().header_bytes(name)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>, S> HeaderSource for HashMap<K, V, S> {
    fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(key, _)| key.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> HeaderSource for BTreeMap<K, V> {
    fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(key, _)| key.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<T: HeaderSource + ?Sized> HeaderSource for &T {
    fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        (**self).header_bytes(name)
    }
}

/// The text of the first of `names` present; the first name is the one
/// reported when none is.
pub(crate) fn require<'a, H: HeaderSource + ?Sized>(
    headers: &'a H,
    names: &[&'static str],
) -> Result<&'a str> {
    for &name in names {
        if let Some(bytes) = headers.header_bytes(name) {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| ReceiverError::HeaderNotText { name: names[0] })?;
            return Ok(text.trim());
        }
    }
    Err(ReceiverError::MissingHeader {
        name: names[0],
        also: names.get(1).copied(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case_in_every_source() {
        let pairs = [("biz-timestamp", "1"), ("BIZ_RESP_SIGNATURE", "ab")];
        assert_eq!(require(&pairs, &["Biz-Timestamp"]).unwrap(), "1");
        assert_eq!(
            require(&pairs, &["Biz-Resp-Signature", "biz_resp_signature"]).unwrap(),
            "ab"
        );

        let mut map = http::HeaderMap::new();
        map.insert("biz_timestamp", http::HeaderValue::from_static("7"));
        assert_eq!(
            require(&map, &["Biz-Timestamp", "BIZ_TIMESTAMP"]).unwrap(),
            "7"
        );

        let hash: HashMap<String, String> = [("Webhook-Id".into(), "m".into())].into();
        assert_eq!(require(&hash, &["webhook-id"]).unwrap(), "m");
    }

    #[test]
    fn absent_and_binary_headers_are_named() {
        let pairs: Vec<(&str, &[u8])> = vec![("biz-timestamp", b"\xff")];
        assert!(matches!(
            require(&pairs, &["Biz-Resp-Signature", "BIZ_RESP_SIGNATURE"]),
            Err(ReceiverError::MissingHeader {
                name: "Biz-Resp-Signature",
                ..
            })
        ));
        assert!(matches!(
            require(&pairs, &["Biz-Timestamp"]),
            Err(ReceiverError::HeaderNotText {
                name: "Biz-Timestamp"
            })
        ));
    }
}
