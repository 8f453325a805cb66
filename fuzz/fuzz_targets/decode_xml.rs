//! Any bytes through the XML decoder (plain XML and SOAP): an error or a value, never a
//! panic, a hang or unbounded memory, and never more time than the cost budget allows for
//! the input's length; what decodes is written back as XML without panicking.
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
});
