//! How long parsing and writing a fixture take on their own (the floor under a mapping).
use std::path::PathBuf;
fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mappings");
    let input =
        std::fs::read(root.join("nafosted/tests/dossier_sync/01-new-dossier.input.json")).unwrap();
    let n = 200_000;
    let t = std::time::Instant::now();
    let mut k = 0;
    for _ in 0..n {
        let v: serde_json::Value = serde_json::from_slice(&input).unwrap();
        k += v.as_object().unwrap().len();
    }
    println!(
        "parse to Value: {:.0}/s ({k})",
        n as f64 / t.elapsed().as_secs_f64()
    );
    let v: serde_json::Value = serde_json::from_slice(&input).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..n {
        k += serde_json::to_vec(&v).unwrap().len();
    }
    println!(
        "write Value: {:.0}/s ({k})",
        n as f64 / t.elapsed().as_secs_f64()
    );
}
