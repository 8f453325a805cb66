//! Any bytes through the JSON decoders of ingress: the event splitter a unit's JSON body
//! goes through (depth bound, object or batch) and the JSON reading of mapped input. An
//! error or events, never a panic, and never more time than the cost budget allows for the
//! input's length. The fast JSON reader of the compiled engine must read what serde's reads,
//! value for value, whenever it does not give up.
#![no_main]

#[path = "cost.rs"]
mod cost;

use libfuzzer_sys::fuzz_target;
use lienthong_mapping::codec::json;
use lienthong_mapping::codec::{DecodeOptions, Format, decode_records};
use lienthong_mapping::plan::{scan, want};

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = cost::bounded("json events", data, || json::split_events(data, 64)) {
        assert!(!body.events.is_empty());
        for event in &body.events {
            assert!(event.get().starts_with('{'));
        }
    }
    let opts = DecodeOptions { format: Format::Json, ..DecodeOptions::default() };
    let _ = cost::bounded("json records", data, || decode_records(data, &opts));
    // Keeping everything, and keeping no field at all (every object skipped).
    let nothing = want::Want::default();
    for w in [None, Some(&nothing)] {
        if let Some(fast) = scan::read(data, w) {
            let reference = want::read_json_with_serde(data, w, usize::MAX)
                .expect("the fast reader took input serde_json refuses");
            assert_eq!(format!("{fast:?}"), format!("{reference:?}"));
        }
    }
});
