//! The store and the compute leave the async workers to the other tasks: on a runtime with
//! one worker, a tick every 10 ms (standing in for the watchdog pinger and `/healthz`) goes on
//! while a step of the cycle blocks for 400 ms, where it stalls without `off_worker`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::off_worker;

/// Ticks counted while `blocking` runs in a task on the runtime's worker.
async fn ticks_during(blocking: impl FnOnce() + Send + 'static) -> u64 {
    let ticks = Arc::new(AtomicU64::new(0));
    let counter = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = ticks.load(Ordering::SeqCst);
    tokio::spawn(async move { blocking() }).await.unwrap();
    let during = ticks.load(Ordering::SeqCst) - before;
    ticker.abort();
    during
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn blocking_work_leaves_the_only_worker_to_the_other_tasks() {
    let stalled = ticks_during(|| std::thread::sleep(Duration::from_millis(400))).await;
    assert!(
        stalled <= 2,
        "on the worker itself it stalls the ticks: {stalled}"
    );
    let free = ticks_during(|| off_worker(|| std::thread::sleep(Duration::from_millis(400)))).await;
    assert!(free >= 10, "off the worker the ticks go on: {free}");
}

#[tokio::test]
async fn on_a_current_thread_runtime_it_just_runs() {
    assert_eq!(off_worker(|| 7), 7);
}
