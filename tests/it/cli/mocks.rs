//! `mocks`: the national services standalone, with fault rules and scenario files.

use super::*;

#[test]
fn mocks_serve_standalone_on_the_configured_address_and_seed() {
    let port = free_port();
    let child = lienthong()
        .args(["mocks", "--config", "config/lienthong.toml"])
        .env("LIENTHONG_MOCKS__LISTEN", format!("127.0.0.1:{port}"))
        .env("LIENTHONG_MOCKS__SEED", "42")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, "the mocks did not come up");
    // The register served is the one seed 42 generates.
    let registry = lienthong_mocks::business::Registry::generate(42, 5_000);
    let known = registry.all().next().unwrap().clone();
    let reply: serde_json::Value = http(|c| {
        c.get(format!(
            "http://127.0.0.1:{port}/business/TraCuuThongTinDoanhNghiep?MaSoDoanhNghiep={}",
            known.code
        ))
    })
    .json()
    .unwrap();
    assert_eq!(reply["ResultObject"]["NAME"], known.name);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "lienthong mocks on http://127.0.0.1:{port} (seed 42)"
        )),
        "{stdout}"
    );
}

#[test]
fn mocks_take_fault_rules_from_the_config_and_check_names_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = |faults: &str| {
        format!(
            "[mocks]\nlisten = \"127.0.0.1:{port}\"\n{faults}\n[units.ipo]\nkey_env = \"X_UNSET\"\ndev_key = \"dev-ipo-key-0000000\"\n"
        )
    };
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        config("[[mocks.faults]]\nservice = \"portl\"\nerror_rate = 1.5\n"),
    )
    .unwrap();
    let out = lienthong()
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mocks.faults[0].service: unknown mock `portl`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("mocks.faults[0].error_rate: must be between 0 and 1"),
        "{stderr}"
    );
    let out = lienthong()
        .args(["mocks", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "the mocks refuse a bad rule too"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("problem(s) in [mocks]"));

    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        config("[[mocks.faults]]\nservice = \"sink\"\nerror_rate = 1.0\n"),
    )
    .unwrap();
    let child = lienthong()
        .args(["mocks", "--config"])
        .arg(&good)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, "the mocks did not come up");
    let status = http(|c| {
        c.post(format!("http://127.0.0.1:{port}/sink/a"))
            .json(&serde_json::json!({}))
    })
    .status();
    assert_eq!(
        status, 503,
        "the configured rule is in force from the start"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
}

#[test]
fn mocks_load_a_scenario_file_and_refuse_a_bad_one() {
    let port = free_port();
    let child = lienthong()
        .args([
            "mocks",
            "--config",
            "config/lienthong.toml",
            "--scenario",
            "config/scenarios/flaky-national-platforms.toml",
        ])
        .env("LIENTHONG_MOCKS__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, "the mocks did not come up");
    let rules = http(|c| c.get(format!("http://127.0.0.1:{port}/_mock/faults")))
        .json()
        .unwrap();
    let rules = rules["rules"].as_array().unwrap().clone();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(rules.len(), 4, "{rules:?}");
    assert_eq!(rules[0]["reset_rate"], 0.02);
    assert_eq!(rules[3]["business_code"], "05");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(seed 7)"), "the scenario's seed: {stdout}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[faults]]\nservice = \"portal\"\nreset_rate = 1.5\n").unwrap();
    let out = lienthong()
        .args(["mocks", "--config", "config/lienthong.toml", "--scenario"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("mocks.faults[0].reset_rate: must be between 0 and 1"),
        "{stderr}"
    );
}
