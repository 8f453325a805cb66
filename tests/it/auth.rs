//! Target credentials as the receiving side sees them: a static API key header, the LGSP
//! gateway's base64 JSON key, an OAuth 2.0 client-credentials token (fetched once, cached),
//! and TLS with a custom CA and a client certificate (mutual TLS) against a real rustls
//! server.

use crate::support;

use base64::Engine;
use lienthong_mocks::MockSettings;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::wait_until;

#[tokio::test]
async fn api_key_lgsp_and_oauth2_credentials_reach_the_target() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mocks = listener.local_addr().unwrap();
    tokio::spawn(lienthong_mocks::serve(listener, MockSettings::default()));
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        r#"
[targets.k]
kind = "http"
url = "http://{mocks}/sink/k"
auth = {{ kind = "api_key", key_env = "TEST_UNSET_K", dev_key = "key-0123456789" }}
[targets.l]
kind = "http"
url = "http://{mocks}/sink/l"
auth = {{ kind = "lgsp", access_key = "ak-1", secret_key_env = "TEST_UNSET_L", dev_secret_key = "sk-1", app_name = "lienthong", partner_code = "BKHCN", partner_code_cus = "000.00.01.H22" }}
[targets.o]
kind = "http"
url = "http://{mocks}/sink/o"
auth = {{ kind = "oauth2", token_url = "http://{mocks}/oauth/token", client_id = "lienthong", client_secret_env = "TEST_UNSET_O", dev_client_secret = "mock-oauth-secret" }}
[[routes]]
unit = "nafosted"
flow = "secured"
targets = ["k", "l", "o"]
ordering = "none"
"#
    );
    let (cfg, keys) = support::parse_config(&support::config_text(dir.path(), mocks, &extra));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bus = lienthong::app::Bus::start(cfg, keys, listener)
        .await
        .unwrap();
    let c = support::client();
    for n in 0..2 {
        let r = c
            .post(format!(
                "http://{}/api/v1/units/nafosted/events?flow=secured",
                bus.addr
            ))
            .bearer_auth(support::NAFOSTED_KEY)
            .json(&json!({"n": n}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let requests = || async {
        let v: Value = c
            .get(format!("http://{mocks}/_mock/sink/requests"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["requests"].as_array().unwrap().clone()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let seen = requests().await;
        if seen.len() >= 6 {
            break seen;
        }
        assert!(std::time::Instant::now() < deadline, "{seen:?}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    };
    let headers = |path: &str| -> Vec<Value> {
        seen.iter()
            .filter(|r| r["path"] == path)
            .map(|r| r["headers"].clone())
            .collect()
    };
    assert!(
        headers("/sink/k")
            .iter()
            .all(|h| h["x-api-key"] == "key-0123456789")
    );
    for h in headers("/sink/l") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(h["lgspaccesstoken"].as_str().unwrap())
            .unwrap();
        let token: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(token["AccessKey"], "ak-1");
        assert_eq!(token["SecretKey"], "sk-1");
    }
    assert!(
        headers("/sink/o")
            .iter()
            .all(|h| h["authorization"] == "Bearer mock-token-000001"),
        "one token, reused"
    );
    let tokens: Value = c
        .get(format!("http://{mocks}/_mock/oauth/tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["issued"], 1);
    bus.shutdown().await.unwrap();
}

/// A one-route HTTPS server that requires a client certificate signed by `ca` and answers
/// 200 to any request; sends the client certificate's DER length on `seen` per request.
async fn mtls_server(
    server_cert: rcgen::CertifiedKey<rcgen::KeyPair>,
    ca: &rcgen::Certificate,
    seen: tokio::sync::mpsc::UnboundedSender<usize>,
) -> std::net::SocketAddr {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der().to_vec())).unwrap();
    let provider = lienthong::tls_provider::provider();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(server_cert.cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                server_cert.signing_key.serialize_der(),
            )),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let client_cert = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c[0].len())
                    .unwrap_or(0);
                let mut buf = vec![0u8; 65536];
                let mut got = Vec::new();
                // Read one request: headers, then the body by content-length.
                loop {
                    let Ok(n) = tls.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if got.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = seen.send(client_cert);
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn mutual_tls_with_a_custom_ca() {
    // A private CA, a server certificate for 127.0.0.1 and a client certificate from it.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Test CA of the ministry");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params.clone(), ca_key);
    let leaf = |names: Vec<String>| {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(names).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        rcgen::CertifiedKey {
            cert,
            signing_key: key,
        }
    };
    let server = leaf(vec!["127.0.0.1".into()]);
    let client = leaf(vec!["lienthong.bus".into()]);

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let addr = mtls_server(server, &ca, tx).await;
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(files.path().join("client.pem"), client.cert.pem()).unwrap();
    std::fs::write(
        files.path().join("client.key"),
        client.signing_key.serialize_pem(),
    )
    .unwrap();

    let sink = lienthong_mocks::Sink::new(lienthong_mocks::Faults::default());
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = |n: &str| files.path().join(n).display().to_string();
    let extra = format!(
        r#"
[targets.secure]
kind = "http"
url = "https://127.0.0.1:{port}/receive"
tls = {{ ca_file = "{ca}", client_cert = "{cert}", client_key = "{key}" }}
retry = {{ max_attempts = 3, max_age = "1h", base_delay = "10ms", max_delay = "50ms" }}
[[routes]]
unit = "nafosted"
flow = "secure"
targets = ["secure"]
ordering = "none"
"#,
        port = addr.port(),
        ca = f("ca.pem"),
        cert = f("client.pem"),
        key = f("client.key"),
    );
    let (cfg, keys) = support::parse_config(&support::config_text(dir.path(), sink_addr, &extra));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bus = lienthong::app::Bus::start(cfg, keys, listener)
        .await
        .unwrap();
    let r = support::client()
        .post(format!(
            "http://{}/api/v1/units/nafosted/events?flow=secure",
            bus.addr
        ))
        .bearer_auth(support::NAFOSTED_KEY)
        .json(&json!({"hello": "tls"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let cert_len = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(cert_len > 0, "the server saw our client certificate");
    wait_until(Duration::from_secs(10), "the delivery recorded", || {
        bus.outbox.stats().pending == 0
    })
    .await;
    assert_eq!(bus.outbox.stats().dead, 0);
    bus.shutdown().await.unwrap();
}
