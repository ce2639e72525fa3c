//! The server's own view of a run: `webchat_append_duration_seconds` read from its
//! `GET /metrics` before and after a workload.
//!
//! A delivery waits for its message's append (queue and commit). The load generator sees
//! the whole delay; the server's histogram says how much of it was the store's answer, so a
//! delivery tail reads as "the commit was slow" (the disk, PostgreSQL) or "the fan-out was".

use crate::util::Env;
use serde_json::{Value, json};

/// The histogram the server records each send's wait for the store in.
pub const APPEND: &str = "webchat_append_duration_seconds";

/// A Prometheus histogram: `(upper bound in seconds, cumulative count)`, by bound, the last
/// bound `+Inf`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(Vec<(f64, f64)>);

impl Buckets {
    /// The `name` histogram in a Prometheus text page; empty when the page has none (the
    /// server records nothing before its first append).
    pub fn parse(page: &str, name: &str) -> Self {
        let prefix = format!("{name}_bucket{{");
        let mut buckets: Vec<(f64, f64)> = page
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(&prefix)?;
                let (labels, count) = rest.split_once("} ")?;
                let le = labels.split(',').find_map(|l| l.trim().strip_prefix("le=\""))?.strip_suffix('"')?;
                let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                Some((le, count.trim().parse().ok()?))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self(buckets)
    }

    /// What was recorded between `before` and `self` (counters only grow).
    #[must_use]
    pub fn since(&self, before: &Self) -> Self {
        Self(
            self.0
                .iter()
                .map(|&(le, n)| {
                    let was = before.0.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
                    (le, (n - was).max(0.0))
                })
                .collect(),
        )
    }

    /// How many observations.
    pub fn count(&self) -> f64 {
        self.0.last().map_or(0.0, |b| b.1)
    }

    /// The `q` quantile in seconds, interpolated linearly inside its bucket as Prometheus'
    /// `histogram_quantile` does; in the `+Inf` bucket, the largest finite bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, n) in &self.0 {
            if n >= rank {
                if le.is_infinite() {
                    return Some(lower.0);
                }
                let within = n - lower.1;
                let share = if within > 0.0 { (rank - lower.1) / within } else { 1.0 };
                return Some(lower.0 + (le - lower.0) * share);
            }
            lower = (le, n);
        }
        Some(lower.0)
    }

    /// `{"n", "p50_ms", "p99_ms"}` for a result line.
    pub fn summary(&self) -> Value {
        let ms = |q| self.quantile(q).map(|s| (s * 1000.0 * 100.0).round() / 100.0);
        json!({"n": self.count(), "p50_ms": ms(0.5), "p99_ms": ms(0.99)})
    }
}

/// The server's `name` histogram now; `None` when `/metrics` does not answer.
pub async fn scrape(env: &Env, name: &str) -> Option<Buckets> {
    let page = env.http.get(format!("{}/metrics", env.http_base)).send().await.ok()?;
    let page = page.error_for_status().ok()?.text().await.ok()?;
    Some(Buckets::parse(&page, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# TYPE webchat_append_duration_seconds histogram\n\
        webchat_append_duration_seconds_bucket{le=\"0.001\"} 10\n\
        webchat_append_duration_seconds_bucket{le=\"0.0025\"} 90\n\
        webchat_append_duration_seconds_bucket{le=\"0.005\"} 99\n\
        webchat_append_duration_seconds_bucket{le=\"+Inf\"} 100\n\
        webchat_append_duration_seconds_sum 0.2\n\
        webchat_append_duration_seconds_count 100\n\
        webchat_delivery_latency_seconds_bucket{le=\"0.001\"} 7\n";

    #[test]
    fn a_histogram_is_read_from_the_servers_page_and_no_other() {
        let b = Buckets::parse(PAGE, APPEND);
        assert_eq!(b.0, vec![(0.001, 10.0), (0.0025, 90.0), (0.005, 99.0), (f64::INFINITY, 100.0)]);
        assert_eq!(Buckets::parse("", APPEND).quantile(0.99), None, "nothing appended yet");
    }

    #[test]
    fn a_quantile_is_interpolated_inside_its_bucket() {
        let b = Buckets::parse(PAGE, APPEND);
        // The 50th of 100 falls in (1 ms, 2.5 ms], 40 of its 80.
        let p50 = b.quantile(0.5).expect("a p50");
        assert!((p50 - 0.00175).abs() < 1e-9, "{p50}");
        // The 99th is the last of (2.5 ms, 5 ms].
        let p99 = b.quantile(0.99).expect("a p99");
        assert!((p99 - 0.005).abs() < 1e-9, "{p99}");
        // Past every finite bound: the largest one, as Prometheus answers.
        assert_eq!(b.quantile(1.0), Some(0.005));
    }

    #[test]
    fn only_what_the_run_added_counts() {
        let before = Buckets::parse(PAGE, APPEND);
        let after = Buckets::parse(
            &PAGE.replace("} 99\n", "} 199\n").replace("\"+Inf\"} 100", "\"+Inf\"} 200"),
            APPEND,
        );
        let run = after.since(&before);
        assert_eq!(run.count(), 100.0);
        // All hundred new ones in (2.5 ms, 5 ms]: the run's p50 is there, not the earlier 1.75 ms.
        let p50 = run.quantile(0.5).expect("a p50");
        assert!((p50 - 0.00375).abs() < 1e-9, "{p50}");
        assert_eq!(run.summary()["n"], 100.0);
    }
}
