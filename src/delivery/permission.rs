//! Waiting for the right to call a target: not paused by an operator, the circuit breaker
//! closed (or letting a probe through), the rate limit's next slot. Every wait gives up as
//! soon as `stop` is set, on either path, so a paused or failing target never holds up a
//! shutdown.

use super::TargetRuntime;
use super::breaker::Permit;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// Wait while an operator has the target paused. `false` if `stop` came first.
pub async fn wait_while_paused(target: &TargetRuntime, stop: &mut watch::Receiver<bool>) -> bool {
    while target.paused.load(Ordering::Relaxed) {
        let resumed = target.resumed.notified();
        tokio::select! {
            _ = resumed => {}
            // Checked again now and then: a resume between the load and the wait is not
            // missed for long.
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => return false,
        }
    }
    !*stop.borrow()
}

/// Wait for the breaker and the rate limit: on `true` the caller holds a permit and must
/// tell the breaker how the call went ([`super::judge`]) or that none was made
/// (`on_neutral`). `false` if `stop` came first (no permit held).
pub async fn wait_for_permission(target: &TargetRuntime, stop: &mut watch::Receiver<bool>) -> bool {
    loop {
        if *stop.borrow() {
            return false;
        }
        match target.breaker.acquire() {
            Permit::Go => break,
            Permit::Wait(d) => {
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = stop.changed() => return false,
                }
            }
        }
    }
    if let Some(limiter) = &target.limiter {
        tokio::select! {
            _ = limiter.until_ready() => {}
            _ = stop.changed() => {
                target.breaker.on_neutral();
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TargetConfig;
    use crate::connector::{BoxFuture, Connector, HttpStatusClassifier, RawOutcome};
    use crate::connector::{Outbound, RetryClassifier, Verdict};
    use crate::envelope::Envelope;

    struct Never;
    impl RetryClassifier for Never {
        fn classify(&self, o: &RawOutcome) -> Verdict {
            HttpStatusClassifier.classify(o)
        }
    }
    impl Connector for Never {
        fn send<'a>(&'a self, _: &'a Envelope, _: &'a Outbound) -> BoxFuture<'a, RawOutcome> {
            Box::pin(async { RawOutcome::Timeout })
        }
    }

    fn target() -> std::sync::Arc<TargetRuntime> {
        let cfg: TargetConfig = toml::from_str(
            "kind = \"http\"\nurl = \"http://127.0.0.1:9/\"\n\
             circuit_breaker = { failure_threshold = 1, cooldown = \"1h\" }",
        )
        .unwrap();
        std::sync::Arc::new(TargetRuntime::with_connector(
            "t",
            &cfg,
            std::sync::Arc::new(Never),
        ))
    }

    /// The cluster worker used to wait for an open breaker (and a pause) without looking
    /// at `stop`: a stopping worker hung for as long as the target failed.
    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_or_a_pause_gives_way_to_stop() {
        let t = target();
        assert!(matches!(t.breaker.acquire(), Permit::Go));
        t.breaker.on_failure("HTTP 503");
        let (tx, rx) = watch::channel(false);
        let waiting = tokio::spawn({
            let (t, mut rx) = (std::sync::Arc::clone(&t), rx.clone());
            async move { wait_for_permission(&t, &mut rx).await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiting.is_finished(), "the open breaker holds it back");
        tx.send(true).unwrap();
        assert!(
            !waiting.await.unwrap(),
            "stop ends the wait without a permit"
        );
        let mut rx = rx;
        t.pause();
        assert!(!wait_while_paused(&t, &mut rx).await);
    }
}
