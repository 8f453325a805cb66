//! The deploy/ artifacts stay true to the code: the compose cluster's config and the
//! production example load and validate (the production one fails only on the TLS files
//! and secrets it expects on the real machine), and the container, systemd and Kubernetes
//! files keep the properties the README promises (non-root, sandboxed, a volume per node).

use lienthong::config::{self, Role, Transport};
use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_compose_cluster_config_is_complete() {
    let vars = vec![(
        "LIENTHONG_MAPPINGS__DIR".to_string(),
        "./mappings".to_string(),
    )];
    let cfg = config::load_str(
        &read("deploy/cluster.toml"),
        Path::new("deploy/cluster.toml"),
        vars,
    )
    .unwrap();
    assert_eq!(cfg.transport, Transport::Amqp);
    // Every node of the compose file's three-node broker, tried in turn; events
    // acknowledged once replicated.
    assert_eq!(cfg.amqp.urls.len(), 3);
    for (i, url) in cfg.amqp.urls.iter().enumerate() {
        assert!(url.contains(&format!("@rabbitmq-{}:5672", i + 1)), "{url}");
    }
    assert_eq!(
        cfg.amqp.acknowledge,
        lienthong::config::Acknowledge::Replicated
    );
    assert!(cfg.targets["portal"].url.starts_with("http://mocks:9090/"));
    config::validate(&cfg, |_| None).unwrap();
    lienthong::mappings::MappingSet::load(&cfg).unwrap();
}

#[test]
fn the_production_example_needs_only_its_secrets_and_certificates() {
    let text = read("deploy/production.toml");
    assert!(
        !text.contains("dev_key") && !text.contains("dev_token") && !text.contains("dev_password")
    );
    let cfg = config::load_str(&text, Path::new("deploy/production.toml"), vec![]).unwrap();
    assert_eq!(cfg.transport, Transport::Amqp);
    assert_eq!(cfg.role, Role::All);
    assert!(cfg.amqp.urls.iter().all(|u| u.starts_with("amqps://")));
    for (name, t) in &cfg.targets {
        if t.kind == lienthong::config::TargetKind::FileDrop {
            // A folder (the IP Office's import share), not a platform.
            assert!(t.url.starts_with("file:///"), "{name}: {}", t.url);
            continue;
        }
        assert!(t.url.starts_with("https://"), "{name}: {}", t.url);
        let tls = t
            .tls
            .as_ref()
            .unwrap_or_else(|| panic!("{name} without TLS"));
        assert!(
            tls.client_cert.is_some() && tls.client_key.is_some(),
            "{name}: mutual TLS"
        );
    }
    // With every secret in the environment, what is left are the certificate files that
    // live on the real machine.
    let problems =
        config::validate(&cfg, |var| Some(format!("secret-of-{var}-0123456789"))).unwrap_err();
    assert!(
        !problems.is_empty(),
        "the certificate files are not on this machine"
    );
    for p in &problems {
        assert!(
            p.path.contains("tls"),
            "only certificate files may be missing here, not: {} {}",
            p.path,
            p.message
        );
    }
}

#[test]
fn the_container_and_service_files_keep_their_promises() {
    let docker = read("deploy/Dockerfile");
    assert_eq!(
        docker.matches("\nFROM ").count() + usize::from(docker.starts_with("FROM ")),
        2,
        "multi-stage"
    );
    assert!(
        docker.contains("\nUSER 10001:10001"),
        "runs as a non-root user"
    );
    assert!(docker.contains("VOLUME [\"/var/lib/lienthong\"]"));
    // The image points nothing at the development keys (an ENV would override the
    // production config it runs by default).
    assert!(
        !docker.contains("DEV_KEYS_FILE"),
        "the image names the dev keys"
    );
    assert!(docker.contains("CMD [\"run\", \"--config\", \"/etc/lienthong/production.toml\"]"));

    let compose = read("deploy/docker-compose.yml");
    for service in [
        "rabbitmq-1:",
        "rabbitmq-2:",
        "rabbitmq-3:",
        "mocks:",
        "ingress:",
        "worker-1:",
        "worker-2:",
    ] {
        assert!(
            compose.contains(&format!("\n  {service}")),
            "compose service {service}"
        );
    }
    assert!(
        compose.contains("\"--role\", \"ingress\"") && compose.contains("\"--role\", \"worker\"")
    );
    // Three broker nodes in one cluster, each known to every lienthong node.
    let rabbit = read("deploy/rabbitmq/rabbitmq.conf");
    for n in 1..=3 {
        assert!(rabbit.contains(&format!("nodes.{n} = rabbit@rabbitmq-{n}")));
        assert!(compose.contains(&format!("hostname: rabbitmq-{n}")));
    }

    let unit = read("deploy/systemd/lienthong.service");
    for line in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
        "StateDirectory=lienthong",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "LimitCORE=0",
    ] {
        assert!(unit.lines().any(|l| l == line), "systemd unit lacks {line}");
    }

    let ingress = read("deploy/kubernetes/ingress.yaml");
    assert!(ingress.contains("kind: StatefulSet") && ingress.contains("volumeClaimTemplates:"));
    assert!(ingress.contains("mountPath: /var/lib/lienthong"));
    assert!(ingress.contains("runAsNonRoot: true"));
    let worker = read("deploy/kubernetes/worker.yaml");
    assert!(worker.contains("\"--role\", \"worker\""));
}
