//! The bus's background tasks as one set: the sweeper, the KPI refresh, the mapping
//! reloader, the drop-folder watcher, the cluster's consumers, the bundled mocks. Shutdown
//! stops them together and waits until each has ended, so none outlives the bus.

use std::future::Future;
use tokio::task::JoinSet;

#[derive(Default)]
pub struct Background {
    tasks: JoinSet<()>,
}

impl Background {
    /// Run `task` until shutdown (or until it ends by itself).
    pub fn spawn<F>(&mut self, task: F)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(async move {
            task.await;
        });
    }

    /// Stop every task and wait until all have ended.
    pub async fn shutdown(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn shutdown_ends_every_task_and_waits_for_them() {
        let mut bg = Background::default();
        let dropped = Arc::new(AtomicBool::new(false));
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let flag = Flag(Arc::clone(&dropped));
        bg.spawn(async move {
            let _held = flag;
            std::future::pending::<()>().await;
        });
        bg.spawn(async { 42 });
        bg.shutdown().await;
        assert!(
            dropped.load(Ordering::SeqCst),
            "the endless task was stopped"
        );
    }
}
