//! Any bytes through the CSV decoder in each input encoding: an error or rows, never a
//! panic, and never more time than the cost budget allows for the input's length.
#![no_main]

#[path = "cost.rs"]
mod cost;

use libfuzzer_sys::fuzz_target;
use lienthong_mapping::codec::KeyOrder;
use lienthong_mapping::codec::csv::{self, CsvOptions, TextEncoding};

fuzz_target!(|data: &[u8]| {
    for encoding in [TextEncoding::Utf8, TextEncoding::Latin1, TextEncoding::Tcvn3] {
        let opts = CsvOptions { encoding, delimiter: b';', max_bytes: 64 * 1024 };
        if let Ok(rows) = cost::bounded("csv decode", data, || csv::decode(data, &opts)) {
            let _ = csv::encode(&serde_json::Value::Array(rows), b',', &KeyOrder::default());
        }
    }
});
