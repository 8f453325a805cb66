//! Runs one shipped mapping over its first fixture many times (for a profiler).
//! `cargo run --release -p lienthong-mapping --example profile -- stameq dossier_sync 01-new-import-inspection.input.xml 20000`
use lienthong_mapping::Mapping;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (unit, name, case, n) = (
        &args[1],
        &args[2],
        &args[3],
        args[4].parse::<usize>().unwrap(),
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mappings");
    let m = Mapping::load(&root.join(unit).join(format!("{name}.toml")), &root).unwrap();
    let input = std::fs::read(root.join(unit).join("tests").join(name).join(case)).unwrap();
    let start = std::time::Instant::now();
    let mut bytes = 0;
    for _ in 0..n {
        let mut r = m.decode(&input).unwrap();
        bytes += m.render(&r.swap_remove(0)).unwrap().len();
    }
    let el = start.elapsed();
    println!(
        "{n} records, {bytes} bytes out, {:.0} records/s",
        n as f64 / el.as_secs_f64()
    );
}
