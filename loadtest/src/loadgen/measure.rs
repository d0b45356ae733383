//! What a run measured: the audit (Postgres outcomes against the simulator's receipts), the
//! due-to-receipt latency, and deliveries per second over time.

use std::collections::HashMap;

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

use crate::simulator::Receipt;

/// One delivery row as the fleet recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: i64,
    pub channel: String,
    pub state: String,
    /// The delivery's due time, microseconds since the epoch: its `due_at` when it has one
    /// (a spread campaign), else its `created_at` (the start of the evaluation transaction
    /// that wrote it; the row became publishable when that transaction committed).
    pub due_us: i64,
}

/// Every delivery row of a campaign.
pub async fn delivery_rows(db: &PgPool, campaign: Uuid) -> anyhow::Result<Vec<DeliveryRow>> {
    let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT id, channel, state,
                (extract(epoch FROM coalesce(due_at, created_at)) * 1000000)::int8
           FROM deliveries WHERE campaign_id = $1",
    )
    .bind(campaign)
    .fetch_all(db)
    .await
    .context("reading the campaign's deliveries")?;
    Ok(rows
        .into_iter()
        .map(|(id, channel, state, due_us)| DeliveryRow {
            id,
            channel,
            state,
            due_us,
        })
        .collect())
}

/// Every receipt the simulator recorded (`GET /_sim/receipts`).
pub async fn receipts(http: &reqwest::Client, sim_url: &str) -> anyhow::Result<Vec<Receipt>> {
    let r = http
        .get(format!("{sim_url}/_sim/receipts"))
        .send()
        .await
        .context("GET /_sim/receipts")?
        .error_for_status()?;
    Ok(r.json().await?)
}

/// Outcomes recorded in Postgres checked against what the providers received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Audit {
    /// Recipients x channels.
    pub expected: u64,
    /// Recorded `sent` and received by the provider.
    pub delivered: u64,
    /// Recorded `failed` or `dead`.
    pub failed: u64,
    /// Provider calls beyond the first for one delivery.
    pub duplicates: u64,
    /// Expected and neither delivered nor failed: no row, a row left pending or retrying,
    /// or recorded `sent` without the provider having it.
    pub missing: u64,
    /// Received by the provider but not recorded `sent`.
    pub unrecorded: u64,
}

impl Audit {
    pub fn is_clean(&self) -> bool {
        self.duplicates == 0
            && self.missing == 0
            && self.unrecorded == 0
            && self.delivered + self.failed == self.expected
    }
}

/// Due-to-receipt latency, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencyStats {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    pub audit: Audit,
    pub latency: LatencyStats,
    /// First and last receipt, microseconds since the epoch.
    pub first_receipt_us: i64,
    pub last_receipt_us: i64,
    /// Deliveries per second between the 5th and the 95th percentile of receipt times.
    pub sustained_per_s: f64,
    /// Deliveries per whole second since `t0`: `(second, count)`.
    pub per_second: Vec<(u64, u64)>,
}

/// The delivery id in an idempotency key `pf-{campaign}-{id}` (e-mail wraps it as a
/// Message-ID, `<pf-...-{id}@host>`), when the key belongs to `campaign`.
fn delivery_id(key: &str, campaign_prefix: &str) -> Option<i64> {
    let at = key.find(campaign_prefix)? + campaign_prefix.len();
    let digits: String = key[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Audits and times one campaign. `expected` is recipients x channels; `t0_us` is when the
/// campaign was created (the origin of the per-second series).
pub fn analyse(
    campaign: Uuid,
    expected: u64,
    rows: &[DeliveryRow],
    receipts: &[Receipt],
    t0_us: i64,
) -> Analysis {
    let prefix = format!("pf-{}-", campaign.simple());
    // delivery id -> receipt times, in arrival order
    let mut received: HashMap<i64, Vec<i64>> = HashMap::new();
    for r in receipts {
        if let Some(id) = r
            .idempotency_key
            .as_deref()
            .and_then(|k| delivery_id(k, &prefix))
        {
            received.entry(id).or_default().push(r.received_at_us);
        }
    }

    let mut audit = Audit {
        expected,
        ..Audit::default()
    };
    let mut latencies: Vec<i64> = Vec::with_capacity(rows.len());
    let mut firsts: Vec<i64> = Vec::with_capacity(rows.len());
    for row in rows {
        let times = received.remove(&row.id);
        let first = times.as_ref().and_then(|t| t.iter().min().copied());
        if let Some(t) = &times {
            audit.duplicates += t.len().saturating_sub(1) as u64;
        }
        match (row.state.as_str(), first) {
            ("sent", Some(at)) => {
                audit.delivered += 1;
                latencies.push(at - row.due_us);
                firsts.push(at);
            }
            ("failed" | "dead", got) => {
                audit.failed += 1;
                if got.is_some() {
                    audit.unrecorded += 1;
                }
            }
            (_, Some(_)) => audit.unrecorded += 1,
            _ => {}
        }
    }
    // Receipts of this campaign whose row does not exist.
    for times in received.values() {
        audit.unrecorded += 1;
        audit.duplicates += times.len().saturating_sub(1) as u64;
    }
    audit.missing = expected.saturating_sub(audit.delivered + audit.failed);

    latencies.sort_unstable();
    firsts.sort_unstable();
    let pct = |v: &[i64], p: f64| -> i64 {
        if v.is_empty() {
            return 0;
        }
        let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    };
    let ms = |us: i64| us as f64 / 1000.0;
    let latency = LatencyStats {
        p50_ms: ms(pct(&latencies, 0.50)),
        p95_ms: ms(pct(&latencies, 0.95)),
        p99_ms: ms(pct(&latencies, 0.99)),
        max_ms: ms(latencies.last().copied().unwrap_or(0)),
    };

    let (first, last) = (
        firsts.first().copied().unwrap_or(0),
        firsts.last().copied().unwrap_or(0),
    );
    let sustained_per_s = if firsts.len() >= 20 {
        let lo = (firsts.len() as f64 * 0.05) as usize;
        let hi = ((firsts.len() as f64 * 0.95) as usize).min(firsts.len() - 1);
        let span_s = (firsts[hi] - firsts[lo]) as f64 / 1e6;
        if span_s > 0.0 {
            (hi - lo) as f64 / span_s
        } else {
            0.0
        }
    } else {
        0.0
    };
    let mut per_second: Vec<(u64, u64)> = Vec::new();
    if let Some(&last_t) = firsts.last() {
        let secs = ((last_t - t0_us).max(0) / 1_000_000) as usize + 1;
        let mut counts = vec![0u64; secs];
        for t in &firsts {
            let s = ((t - t0_us).max(0) / 1_000_000) as usize;
            counts[s.min(secs - 1)] += 1;
        }
        per_second = counts
            .into_iter()
            .enumerate()
            .map(|(s, n)| (s as u64, n))
            .collect();
    }
    Analysis {
        audit,
        latency,
        first_receipt_us: first,
        last_receipt_us: last,
        sustained_per_s,
        per_second,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::Channel;

    fn receipt(key: &str, at: i64, duplicate: bool) -> Receipt {
        Receipt {
            channel: Channel::Email,
            idempotency_key: Some(key.to_owned()),
            received_at_us: at,
            duplicate,
        }
    }

    fn row(id: i64, state: &str, due: i64) -> DeliveryRow {
        DeliveryRow {
            id,
            channel: "email".into(),
            state: state.into(),
            due_us: due,
        }
    }

    #[test]
    fn audit_counts_every_kind_of_outcome() {
        let c = Uuid::new_v4();
        let k = |id: i64| format!("pf-{}-{id}", c.simple());
        let other = Uuid::new_v4();
        let rows = vec![
            row(1, "sent", 0),
            row(2, "sent", 0),
            row(3, "failed", 0),
            row(4, "pending", 0),
            row(5, "sent", 0),
        ];
        let receipts = vec![
            receipt(&k(1), 1_000, false),
            receipt(&format!("<{}@pushfleet.local>", k(2)), 2_000_000, false),
            receipt(&k(2), 2_500_000, true),
            receipt(&format!("pf-{}-1", other.simple()), 5, false),
        ];
        let a = analyse(c, 6, &rows, &receipts, 0);
        assert_eq!(
            a.audit,
            Audit {
                expected: 6,
                delivered: 2,
                failed: 1,
                duplicates: 1,
                missing: 3,
                unrecorded: 0,
            }
        );
        assert!(!a.audit.is_clean());
        assert_eq!(a.latency.p50_ms, 1.0);
        assert_eq!(a.latency.max_ms, 2000.0);
        assert_eq!(a.per_second, vec![(0, 1), (1, 0), (2, 1)]);
    }

    #[test]
    fn sustained_rate_ignores_ramp_and_tail() {
        let c = Uuid::new_v4();
        // 1,000 deliveries one per millisecond, then a straggler ten seconds later.
        let mut rows = Vec::new();
        let mut receipts = Vec::new();
        for i in 0..1_000i64 {
            rows.push(row(i, "sent", 0));
            receipts.push(receipt(&format!("pf-{}-{i}", c.simple()), i * 1_000, false));
        }
        rows.push(row(5_000, "sent", 0));
        receipts.push(receipt(
            &format!("pf-{}-5000", c.simple()),
            11_000_000,
            false,
        ));
        let a = analyse(c, 1_001, &rows, &receipts, 0);
        assert!(a.audit.is_clean(), "{:?}", a.audit);
        assert!(
            (a.sustained_per_s - 1_000.0).abs() < 10.0,
            "{}",
            a.sustained_per_s
        );
    }
}
