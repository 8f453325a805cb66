//! The decoders' cost property, shared by the decode targets: decoding takes at most a
//! small constant plus a bounded time per byte of input. A quadratic step (the CSV
//! duplicate-column check once was one: 300,000 columns took 52 s) breaks it long before
//! libFuzzer's own timeout would notice. Time is the thread's CPU time, so other work on
//! the machine does not count against the decoder.

use std::time::Duration;

/// Fixed allowance per input (allocator warm-up, page faults).
const BASE: Duration = Duration::from_millis(10);
/// Allowance per byte: some fifty times what the instrumented decoders take.
const PER_BYTE: Duration = Duration::from_micros(5);

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write to; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Run `decode` over `data` and panic (a finding) when it takes longer than the budget.
///
/// A run over budget is measured once more before it counts: a decoder that is slow on an
/// input is slow on it every time, while a lone spike (the machine reclaiming memory, the
/// fuzzer's own bookkeeping on this thread) is not. CI once failed on a 1 KiB XML input
/// that decodes in well under a millisecond.
pub fn bounded<T>(what: &str, data: &[u8], decode: impl Fn() -> T) -> T {
    let budget = BASE + PER_BYTE * data.len() as u32;
    let timed = || {
        let started = thread_cpu_time();
        let out = decode();
        (out, thread_cpu_time().saturating_sub(started))
    };
    let (out, spent) = timed();
    if spent > budget {
        let (_, again) = timed();
        assert!(
            again <= budget,
            "{what}: {} bytes took {spent:?}, then {again:?} of CPU, more than the budget of {budget:?}",
            data.len()
        );
    }
    out
}
