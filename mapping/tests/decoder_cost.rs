//! The decoders' cost property: for every hostile shape we know of, decoding sixteen times
//! the input takes about sixteen times as long, not 256 times (a quadratic step) or worse.
//! A unit or the internet controls these bytes before any mapping runs, so the time a
//! body can cost must grow with its length and no faster.
//!
//! Measured in the thread's CPU time, as a ratio of the best of several runs at two
//! sizes, so neither the machine's speed nor other work on it matters; the bound (48× for 16× the input) leaves room for cache effects and
//! a busy machine, and is far below the 256× of a quadratic step. `scripts/fuzz` holds the same
//! property per input (a time budget per byte) on what the fuzzer generates.

use lienthong_mapping::codec::csv::{self, CsvOptions, TextEncoding};
use lienthong_mapping::codec::json;
use lienthong_mapping::codec::xml::{self, XmlLimits};
use std::time::Duration;

const SMALL: usize = 32 * 1024;
const GROWTH: usize = 16;
const MAX_RATIO: f64 = 48.0;

/// CPU time of the calling thread: what the decoder itself spent, not the time other
/// processes on a busy machine took from it.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn best_of(runs: usize, input: &[u8], decode: &dyn Fn(&[u8])) -> Duration {
    (0..runs)
        .map(|_| {
            let started = thread_cpu_time();
            decode(input);
            thread_cpu_time().saturating_sub(started)
        })
        .min()
        .expect("at least one run")
}

/// `make(n)` builds an input of about `n` bytes; its decoding must scale linearly.
fn assert_linear(shape: &str, make: impl Fn(usize) -> Vec<u8>, decode: impl Fn(&[u8])) {
    // One measurement at a time: tests of this file would otherwise share the cores.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let small = make(SMALL);
    let large = make(SMALL * GROWTH);
    // Warm up allocator and caches on the small input first.
    decode(&small);
    let t_small = best_of(5, &small, &decode).max(Duration::from_micros(50));
    let t_large = best_of(3, &large, &decode);
    let ratio = t_large.as_secs_f64() / t_small.as_secs_f64();
    let growth = large.len() as f64 / small.len() as f64;
    println!(
        "{shape}: {} B in {t_small:?}, {} B in {t_large:?} ({ratio:.1}× for {growth:.1}× the input)",
        small.len(),
        large.len()
    );
    assert!(
        ratio <= MAX_RATIO,
        "{shape}: {growth:.1}× the input took {ratio:.1}× the time ({t_small:?} → {t_large:?}): \
         the decoder's cost grows faster than the input"
    );
}

fn csv_opts() -> CsvOptions {
    CsvOptions {
        encoding: TextEncoding::Utf8,
        delimiter: b',',
        max_bytes: 64 << 20,
    }
}

fn xml_limits() -> XmlLimits {
    XmlLimits {
        max_depth: 64,
        max_bytes: 64 << 20,
    }
}

#[test]
fn csv_headers_of_many_columns_cost_in_proportion() {
    // The shape that once took 52 s for 300,000 columns (a quadratic duplicate check).
    assert_linear(
        "csv wide header",
        |n| {
            let mut s = String::new();
            let mut i = 0;
            while s.len() < n {
                s.push_str(&format!("c{i},"));
                i += 1;
            }
            s.push_str("last\n");
            s.into_bytes()
        },
        |b| {
            let _ = csv::decode(b, &csv_opts());
        },
    );
}

#[test]
fn csv_rows_and_quoted_fields_cost_in_proportion() {
    assert_linear(
        "csv many rows",
        |n| {
            let mut s = String::from("MaHoSo,TenThuTuc,GhiChu\n");
            let mut i = 0;
            while s.len() < n {
                s.push_str(&format!(
                    "HS-{i},\"Cấp giấy phép, \"\"đặc biệt\"\"\",ghi chú {i}\n"
                ));
                i += 1;
            }
            s.into_bytes()
        },
        |b| {
            let _ = csv::decode(b, &csv_opts());
        },
    );
}

#[test]
fn xml_siblings_attributes_and_entities_cost_in_proportion() {
    assert_linear(
        "xml many siblings",
        |n| {
            let mut s = String::from("<HoSo>");
            while s.len() < n {
                s.push_str("<GiayTo loai=\"1\">Bản sao &amp; bản chính</GiayTo>");
            }
            s.push_str("</HoSo>");
            s.into_bytes()
        },
        |b| {
            let _ = xml::decode(b, xml_limits());
        },
    );
    assert_linear(
        "xml many attributes",
        |n| {
            let mut s = String::from("<HoSo");
            let mut i = 0;
            while s.len() < n {
                s.push_str(&format!(" a{i}=\"v\""));
                i += 1;
            }
            s.push_str("/>");
            s.into_bytes()
        },
        |b| {
            let _ = xml::decode(b, xml_limits());
        },
    );
    assert_linear(
        "xml nested to the limit, repeated",
        |n| {
            let one = format!("{}x{}", "<a>".repeat(60), "</a>".repeat(60));
            let mut s = String::from("<r>");
            while s.len() < n {
                s.push_str(&one);
            }
            s.push_str("</r>");
            s.into_bytes()
        },
        |b| {
            let _ = xml::decode(b, xml_limits());
        },
    );
}

#[test]
fn json_bodies_cost_in_proportion() {
    assert_linear(
        "json batch of events",
        |n| {
            let mut s = String::from("[");
            while s.len() < n {
                s.push_str(r#"{"MaHoSo":"HS-1","TrangThai":"2","GhiChu":"a\"b\\c\u00e1"},"#);
            }
            s.push_str("{}]");
            s.into_bytes()
        },
        |b| {
            let _ = json::split_events(b, 64);
        },
    );
    assert_linear(
        "json nested to the limit, repeated",
        |n| {
            let one = format!("{}1{}", "[".repeat(60), "]".repeat(60));
            let mut s = String::from("[{\"a\":[");
            while s.len() < n {
                s.push_str(&one);
                s.push(',');
            }
            s.push_str("0]}]");
            s.into_bytes()
        },
        |b| {
            let _ = json::split_events(b, 64);
        },
    );
}
