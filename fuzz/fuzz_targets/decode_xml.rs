//! Any bytes through the XML decoder (plain XML and SOAP): an error or a value, never a
//! panic, a hang or unbounded memory, and never more time than the cost budget allows for
//! the input's length; what decodes is written back as XML without panicking. The fast
//! scanner and quick-xml must agree: `decode_val` (scanner first) gives exactly what
//! quick-xml alone gives, value or error.
#![no_main]

#[path = "cost.rs"]
mod cost;

use libfuzzer_sys::fuzz_target;
use lienthong_mapping::codec::xml::{self, XmlLimits, XmlWriteOptions};
use lienthong_mapping::codec::KeyOrder;

fuzz_target!(|data: &[u8]| {
    let limits = XmlLimits { max_depth: 32, max_bytes: 64 * 1024 };
    if let Ok(value) = cost::bounded("xml decode", data, || xml::decode(data, limits)) {
        let _ = xml::encode(&value, &XmlWriteOptions::default(), &KeyOrder::default());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let fast = xml::decode_val(data, limits);
        let reference = xml::decode_with_quick_xml(text, limits);
        assert_eq!(format!("{fast:?}"), format!("{reference:?}"));
    }
});
