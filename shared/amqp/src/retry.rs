//! When a passing failure is tried again.
//!
//! A failed delivery is parked on one of a fixed set of delay queues
//! (`<queue>.retry.<delay>`, quorum queues whose TTL dead-letters back to
//! the queue), so waiting costs the consumer nothing and other messages flow
//! past it. The delay grows with each attempt; past the policy's limit the message is
//! dead-lettered as `retries_exhausted`.

use std::time::Duration;

/// The delay queues every consumed queue has, shortest first.
pub const TIERS: [Duration; 6] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(1800),
];

/// How long, and how often, passing failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Give up once the first attempt is this old.
    pub give_up_after: Duration,
    /// Give up after this many attempts, if set.
    pub max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    /// Up to 24 hours, the writer's promise for passing failures.
    fn default() -> Self {
        Self { give_up_after: Duration::from_secs(24 * 3600), max_attempts: None }
    }
}

/// What to do after attempt `attempt` failed for a passing reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Park the message on the delay queue of this tier.
    Delay(Duration),
    /// The policy's limit is reached.
    GiveUp,
}

impl RetryPolicy {
    /// Plans the next try after `attempt` (1 for the first) failed, `age`
    /// after the first attempt; `hint` is a delay the handler asked for
    /// (e.g. until an API allowance recovers).
    pub fn plan(&self, attempt: u32, age: Duration, hint: Option<Duration>) -> Plan {
        if self.max_attempts.is_some_and(|max| attempt >= max) {
            return Plan::GiveUp;
        }
        let wanted = hint.unwrap_or_else(|| {
            let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX).min(TIERS.len() - 1);
            TIERS[index]
        });
        let tier = tier_for(wanted);
        if age + tier > self.give_up_after {
            return Plan::GiveUp;
        }
        Plan::Delay(tier)
    }
}

/// The shortest tier that waits at least `wanted` (the longest tier when
/// none does).
pub fn tier_for(wanted: Duration) -> Duration {
    TIERS.iter().copied().find(|t| *t >= wanted).unwrap_or(TIERS[TIERS.len() - 1])
}

/// The suffix naming a tier's queue: `1s`, `30s`, `2m`, `30m`.
pub fn tier_label(tier: Duration) -> String {
    let secs = tier.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) { format!("{}m", secs / 60) } else { format!("{secs}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn delays_grow_with_attempts_and_stop_at_the_limit() {
        fn check(policy: RetryPolicy, attempt: u32, age: u64, hint: Option<u64>, expected: Plan) {
            assert_eq!(policy.plan(attempt, secs(age), hint.map(secs)), expected, "attempt {attempt}, age {age}s");
        }
        let day = RetryPolicy::default();
        check(day, 1, 0, None, Plan::Delay(secs(1)));
        check(day, 2, 1, None, Plan::Delay(secs(5)));
        check(day, 3, 6, None, Plan::Delay(secs(30)));
        check(day, 4, 40, None, Plan::Delay(secs(120)));
        check(day, 6, 900, None, Plan::Delay(secs(1800)));
        check(day, 60, 20 * 3600, None, Plan::Delay(secs(1800)));
        check(day, 61, 24 * 3600 - 60, None, Plan::GiveUp);
        // A hint picks the shortest tier that waits at least that long.
        check(day, 1, 0, Some(3), Plan::Delay(secs(5)));
        check(day, 1, 0, Some(7200), Plan::Delay(secs(1800)));
        let three = RetryPolicy { give_up_after: secs(3600), max_attempts: Some(3) };
        check(three, 2, 10, None, Plan::Delay(secs(5)));
        check(three, 3, 10, None, Plan::GiveUp);
    }

    #[test]
    fn tier_labels_are_short() {
        let labels: Vec<_> = TIERS.iter().map(|t| tier_label(*t)).collect();
        assert_eq!(labels, ["1s", "5s", "30s", "2m", "10m", "30m"]);
    }
}
