//! The throughput scenarios: the single node end to end (with its latency at half that
//! rate) and the cluster (one ingress and N workers through RabbitMQ, with its ratio to
//! the single node).

use super::*;

/// Scale-out: one ingress process and `workers` worker processes sharing the work through
/// RabbitMQ; events/s from the first request to the last delivery at the sink.
/// One cluster run: 1 ingress and `workers` worker processes, the ingress answering in
/// the `acknowledge` mode (`local` or `replicated`); its rate, ingest → delivered.
pub(super) async fn cluster(
    dir: &Path,
    args: &BenchArgs,
    pad: &str,
    workers: usize,
    acknowledge: &str,
) -> Result<f64, String> {
    let (sink, sink_addr) = receiver(dir).await?;
    let prefix = format!(
        "lienthong-bench-{}-{workers}-{acknowledge}",
        std::process::id()
    );
    let amqp = crate::config::AmqpConfig {
        urls: vec![args.amqp_url.clone()],
        prefix: prefix.clone(),
        partitions: 16,
        ..Default::default()
    };
    let tail = format!(
        "[amqp]\nurls = [\"{}\"]\nprefix = \"{prefix}\"\npartitions = 16\nprefetch = 64\nacknowledge = \"{acknowledge}\"\n",
        args.amqp_url
    );
    // One keyring for every node: bodies on the broker are sealed with it.
    let _ = std::fs::create_dir_all(dir);
    let sealing = encryption_section(dir, args);
    let node = |name: &str, port: u16| {
        let d = dir.join(name);
        let _ = std::fs::create_dir_all(&d);
        write_config_with(
            &d,
            "node.toml",
            port,
            sink_addr,
            "concurrency = 16",
            "transport = \"amqp\"",
            &format!("{tail}node = \"{name}\"\n{sealing}"),
        )
    };
    let port = free_port();
    let (ingress, _) = BusProcess::start_as(&node("ingress", port), port, "ingress")?;
    let mut nodes = vec![ingress];
    for w in 0..workers {
        let p = free_port();
        let (worker, _) = BusProcess::start_as(&node(&format!("worker-{w}"), p), p, "worker")?;
        nodes.push(worker);
    }
    // Let the workers subscribe (and share the partitions) before the traffic starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("cluster, {workers} worker process(es), acknowledge = {acknowledge}:");
    let started = Instant::now();
    load(port, args.events, 100, args.concurrency, pad, "cluster").await?;
    let mut last_report = Instant::now();
    while sink.delivered_count() < args.events {
        if started.elapsed() > Duration::from_secs(900) {
            return Err(format!(
                "only {} of {} delivered after 15 minutes",
                sink.delivered_count(),
                args.events
            ));
        }
        if last_report.elapsed() > Duration::from_secs(2) {
            eprintln!("  delivered {} of {}", sink.delivered_count(), args.events);
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    println!(
        "cluster (acknowledge = {acknowledge}), 1 ingress + {workers} worker process(es), ingest → delivered: {} events in {:.2}s = {:.0} events/s",
        args.events,
        took.as_secs_f64(),
        args.events as f64 / took.as_secs_f64()
    );
    for n in nodes {
        n.stop();
    }
    let broker = crate::transport::broker::Broker::new(&amqp);
    broker
        .delete_topology(
            &["sink".to_string()],
            &std::iter::once("ingress".to_string())
                .chain((0..workers).map(|w| format!("worker-{w}")))
                .collect::<Vec<_>>(),
        )
        .await
        .map_err(|e| format!("cannot remove the bench's queues: {e}"))?;
    Ok(args.events as f64 / took.as_secs_f64())
}

/// The single node's delivery rate at full speed (ingest → delivered), with the bus it
/// ran on (still running) and its port.
pub(super) async fn full_speed(
    dir: &Path,
    args: &BenchArgs,
    pad: &str,
) -> Result<(f64, BusProcess, u16, Sink), String> {
    let (sink, sink_addr) = receiver(dir).await?;
    let port = free_port();
    let config = write_config(dir, port, sink_addr, "concurrency = 16", args);
    let (bus, _) = BusProcess::start(&config, port)?;
    eprintln!("end to end at full speed:");
    let started = Instant::now();
    load(port, args.events, 100, args.concurrency, pad, "e2e").await?;
    while sink.delivered_count() < args.events {
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "only {} of {} delivered after 10 minutes",
                sink.delivered_count(),
                args.events
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    let rate = args.events as f64 / took.as_secs_f64();
    println!(
        "end to end, ingest → delivered: {} events in {:.2}s = {rate:.0} events/s",
        args.events,
        took.as_secs_f64()
    );
    Ok((rate, bus, port, sink))
}

pub(super) async fn end_to_end(dir: &Path, args: &BenchArgs, pad: &str) -> Result<(), String> {
    let (rate, bus, port, sink) = full_speed(dir, args, pad).await?;
    // Latency at half that rate: batches of 10 on a fixed schedule for 10 seconds.
    let target_rate = (rate / 2.0).max(100.0);
    let batches = (target_rate * 10.0 / 10.0) as usize;
    let interval = Duration::from_secs_f64(10.0 / target_rate);
    eprintln!("latency at {target_rate:.0} events/s for 10 s:");
    let client = crate::tls_provider::http_client()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("http://127.0.0.1:{port}/api/v1/units/bench/events");
    let base = 10_000_000usize;
    let sent_at = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let mut ticker = tokio::time::interval(interval);
    let mut inflight = Vec::new();
    let before = sink.delivered_count();
    for b in 0..batches {
        ticker.tick().await;
        let seqs: Vec<usize> = (0..10).map(|i| base + b * 10 + i).collect();
        let body = serde_json::to_vec(&seqs.iter().map(|s| event(*s, pad)).collect::<Vec<_>>())
            .expect("json");
        let (client, url, sent_at) = (client.clone(), url.clone(), sent_at.clone());
        inflight.push(tokio::spawn(async move {
            let now = Instant::now();
            {
                let mut g = sent_at.lock().unwrap();
                for s in &seqs {
                    g.insert(*s, now);
                }
            }
            let _ = client
                .post(&url)
                .bearer_auth(UNIT_KEY)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
        }));
    }
    for t in inflight {
        let _ = t.await;
    }
    let expected = before + batches * 10;
    let deadline = Instant::now() + Duration::from_secs(120);
    while sink.delivered_count() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent_at = sent_at.lock().unwrap();
    let mut latencies: Vec<Duration> = sink
        .delivered()
        .iter()
        .filter_map(|r| {
            let seq = r.json()["seq"].as_u64()? as usize;
            sent_at.get(&seq).map(|s| r.at.duration_since(*s))
        })
        .collect();
    latencies.sort();
    if latencies.is_empty() {
        return Err("no latency samples".into());
    }
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "end-to-end latency at {target_rate:.0} events/s ({} samples): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        latencies.last().unwrap().as_secs_f64() * 1000.0
    );
    bus.stop();
    Ok(())
}

/// Rounds of each mode in the `evidence` scenario: a round takes a few seconds and a busy
/// 2-core machine drifts by more than the 5 % measured, so the mean is of several.
const EVIDENCE_ROUNDS: usize = 3;

/// End to end with the message log off and on (`metadata`), alternating, a few rounds
/// each in the same run: what the log costs.
pub(super) async fn evidence_cost(root: &Path, args: &BenchArgs, pad: &str) -> Result<(), String> {
    let mut rates: Vec<(&str, f64)> = Vec::new();
    for round in 0..EVIDENCE_ROUNDS {
        for mode in ["off", "metadata"] {
            let args = BenchArgs {
                evidence: mode.to_string(),
                ..args.clone()
            };
            eprintln!("message log {mode}, round {}:", round + 1);
            let dir = root.join(format!("evidence-{mode}-{round}"));
            let (rate, bus, _, _) = full_speed(&dir, &args, pad).await?;
            bus.stop();
            rates.push((mode, rate));
        }
    }
    let mean = |m: &str| {
        let r: Vec<f64> = rates
            .iter()
            .filter(|(x, _)| *x == m)
            .map(|(_, r)| *r)
            .collect();
        r.iter().sum::<f64>() / r.len() as f64
    };
    let (off, on) = (mean("off"), mean("metadata"));
    println!(
        "message log, end to end: off {off:.0} events/s, metadata {on:.0} events/s (mean of {EVIDENCE_ROUNDS} rounds each, alternating) = {:.3} ({:+.1} %)",
        on / off,
        (on / off - 1.0) * 100.0
    );
    Ok(())
}
