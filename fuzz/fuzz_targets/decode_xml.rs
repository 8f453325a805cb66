//! Any bytes through the XML decoder (plain XML and SOAP): an error or a value, never a
//! panic, a hang or unbounded memory; what decodes is written back as XML without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_mapping::codec::xml::{self, XmlLimits, XmlWriteOptions};
use lienthong_mapping::codec::KeyOrder;

fuzz_target!(|data: &[u8]| {
    let limits = XmlLimits { max_depth: 32, max_bytes: 64 * 1024 };
    if let Ok(value) = xml::decode(data, limits) {
        let _ = xml::encode(&value, &XmlWriteOptions::default(), &KeyOrder::default());
    }
});
