//! Several `FleetLimiter`s on one Redis key behave as one limiter: the replicas of a sender
//! share the quota and a 429's pause. Timing is only ever asserted as a lower bound (a slow
//! machine can make things later, never earlier).

use pushfleet_ratelimit::{FleetLimiter, Quota, RateLimiter};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn replicas(n: usize, quota: Quota) -> Vec<Arc<FleetLimiter>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:56379/".into());
    let namespace = format!("t{}", uuid::Uuid::new_v4().simple());
    let mut out = Vec::new();
    for _ in 0..n {
        let redis = RateLimiter::new(&url, &namespace).expect("a valid Redis URL");
        out.push(Arc::new(FleetLimiter::new(redis, "acct", quota, 0.25)));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_share_one_quota() {
    // 40/s with a burst of 4: 100 slots cannot all be taken in less than (100 - 4) / 40 s.
    let quota = Quota::new(40.0, 4).expect("quota");
    let limiters = replicas(3, quota).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, limiter) in limiters.iter().enumerate() {
        let limiter = limiter.clone();
        // Uneven shares: replicas do not need to agree on who sends how much.
        let n = [50, 30, 20][i];
        tasks.push(tokio::spawn(async move {
            for _ in 0..n {
                limiter.acquire(1).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    let min = Duration::from_secs_f64((100.0 - 4.0) / 40.0);
    assert!(
        started.elapsed() >= min,
        "{:?} < {min:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pause_on_one_replica_holds_back_the_others() {
    let quota = Quota::new(1000.0, 10).expect("quota");
    let limiters = replicas(2, quota).await;
    // Replica 0 got a 429 with Retry-After: 0.6 s.
    let paused_at = Instant::now();
    limiters[0].pause(Duration::from_millis(600)).await;
    // Replica 1 never saw the 429, yet waits for the pause to end.
    limiters[1].acquire(1).await;
    assert!(
        paused_at.elapsed() >= Duration::from_millis(550),
        "acquired {:?} after the pause",
        paused_at.elapsed()
    );
    // And so does the replica that saw it.
    limiters[0].acquire(1).await;
    assert!(paused_at.elapsed() >= Duration::from_millis(550));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn costs_take_several_slots() {
    // 20/s, burst 1: five 4-segment SMS need at least (20 - 1) / 20 s.
    let quota = Quota::new(20.0, 1).expect("quota");
    let limiters = replicas(1, quota).await;
    let started = Instant::now();
    for _ in 0..5 {
        limiters[0].acquire(4).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}
