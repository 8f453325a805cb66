//! Prints a few seeded records of the mock registers (for writing fixtures by hand).
use lienthong_mocks::business::Registry;
use lienthong_mocks::population::Population;
fn main() {
    let p = Population::generate(lienthong_mocks::DEFAULT_SEED, 10_000);
    for c in p.all().take(3) {
        println!(
            "citizen {} | {} | {}",
            c.so_dinh_danh,
            c.ho_va_ten(),
            c.ngay_sinh
        );
    }
    let r = Registry::generate(lienthong_mocks::DEFAULT_SEED, 5_000);
    for e in r.all().take(3) {
        println!("enterprise {} | {} | {}", e.code, e.name, e.status);
    }
}
