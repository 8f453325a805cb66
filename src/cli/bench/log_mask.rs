//! `lienthong bench --scenario log-mask`: what masking personal data costs per log line.

use super::pad;
use std::time::{Duration, Instant};

/// What masking personal data costs per log line ([`crate::redact::mask`] runs on every
/// line written): a routine info line, a debug line carrying a JSON dossier, and one
/// carrying a SOAP request, each masked for about a second.
pub(super) fn log_mask() {
    let info = "2026-11-28T10:00:00.123456Z  INFO lienthong::relay: delivered \
                target_system=portal id=01a22362-703b-7751-9fa4-e9e353e6ece8 attempts=1 \
                latency_ms=42";
    let json = format!(
        "2026-11-28T10:00:00.123456Z DEBUG lienthong::relay: body {{\"MaHoSo\":\"000.00.12.H26-241128-0001\",\
         \"HoTen\":\"Nguyễn Văn An\",\"SoDinhDanh\":\"001089012345\",\"SoDienThoai\":\"0912345678\",\
         \"Email\":\"an.nguyen@example.vn\",\"DiaChi\":\"12 Ngõ Huế, Hai Bà Trưng, Hà Nội\",\
         \"TrichYeu\":\"{}\",\"NgayTiepNhan\":\"20241128100000\"}}",
        pad(600)
    );
    let soap = format!(
        "2026-11-28T10:00:00.123456Z DEBUG lienthong::ingress::soap: request <soap:Envelope \
         xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><NopHoSo>\
         <MaHoSo>STAMEQ-2024-0001</MaHoSo><HoTen>Trần Thị Bình</HoTen><SoCCCD>079190001234</SoCCCD>\
         <DiaChi>45 Lê Lợi, Quận 1</DiaChi><NoiDung>{}</NoiDung></NopHoSo></soap:Body></soap:Envelope>",
        pad(600)
    );
    println!("log-mask (each line masked repeatedly for about 1 s, one core):");
    for (what, line) in [
        ("info line, no personal data", info.to_string()),
        ("debug line, JSON dossier", json),
        ("debug line, SOAP request", soap),
    ] {
        let started = Instant::now();
        let mut n = 0u64;
        while started.elapsed() < Duration::from_secs(1) {
            for _ in 0..100 {
                std::hint::black_box(crate::redact::mask(std::hint::black_box(&line)));
            }
            n += 100;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  {what:<30} {:>5} bytes: {:>9.0} lines/s, {:>6.1} µs/line",
            line.len(),
            n as f64 / secs,
            secs * 1e6 / n as f64,
        );
    }
}
