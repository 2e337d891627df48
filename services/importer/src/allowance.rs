//! The org's API allowance as every replica reports it (docs/behaviour.md §5):
//! `fa_tenant_paused` and `fa_salesforce_api_usage_ratio`, one series per
//! tenant, from what PostgreSQL holds.
//!
//! Why from PostgreSQL: a pause and a usage reading are taken by whichever
//! replica ran the tenant, but Prometheus scrapes every replica and the
//! alerts take `max by (tenant)`. A gauge kept in the memory of the replica
//! that set it outlives the pause when the tenant's next run happens on
//! another replica, and `SfConnectorTenantPausedLong` fires for a tenant
//! that resumed long ago. So the pause (`import_schedule.paused_until`) and
//! the last reading ([`record`], `import_api_usage`) live in PostgreSQL, and
//! every replica sets both gauges from there every [`REFRESH_EVERY`], below
//! Prometheus's 15 s scrape interval. The replica that pauses a tenant or
//! takes a reading also sets its own gauge at once; the next refresh agrees.
//!
//! A pause ends when it is cleared, by a run that got through
//! ([`crate::schedule::finished`]) or a manual request
//! ([`crate::schedule::resume`]), not when `paused_until` passes: that is
//! when the next look is due, and a tenant whose allowance is still spent
//! is paused again by that look. A gauge that fell to 0 in between would
//! restart the alert's `for: 1h` at every look, and a tenant paused all day
//! would never be reported (as before, the gauge stays 1 until a run gets
//! through).
//!
//! [`Reported`] is the pure core: from the rows, the value of each series,
//! and 0 for a series this process reported whose tenant left the tables
//! (the metrics facade cannot remove a series; 0 ends the alert as well).

use std::{collections::BTreeSet, time::Duration};

use fa_messages::TenantId;
use fa_salesforce::ApiUsage;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::SERVICE;

/// How often each replica reads the pauses and readings again: a pause
/// that ends, or a newer reading taken by another replica, shows on this
/// replica's `/metrics` within this long (and the query, a few rows per
/// tenant, costs nothing worth a longer wait).
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// What PostgreSQL holds of one tenant's allowance.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// The tenant, as the `tenant` label says it.
    pub tenant: String,
    /// The tenant still has a connection: a removed one is neither paused
    /// nor using anything the connector should alert on.
    pub connected: bool,
    /// A pause is recorded in `import_schedule` and not yet cleared,
    /// whether or not its time has passed.
    pub paused: bool,
    /// The last reading of the org's usage, by any replica.
    pub usage: Option<ApiUsage>,
}

/// The two gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Gauge {
    /// `fa_tenant_paused`: 1 while paused, else 0.
    Paused,
    /// `fa_salesforce_api_usage_ratio`: the share of the daily allowance used.
    Usage,
}

impl Gauge {
    /// The metric's name (dashboards and alerts read it: never change it).
    pub fn name(self) -> &'static str {
        match self {
            Gauge::Paused => "fa_tenant_paused",
            Gauge::Usage => "fa_salesforce_api_usage_ratio",
        }
    }

    /// Sets this gauge of `tenant` in this process's registry.
    pub fn set(self, tenant: &str, value: f64) {
        metrics::gauge!(self.name(), "service" => SERVICE, "tenant" => tenant.to_owned()).set(value);
    }
}

/// The series this process reports, so that one whose tenant left the
/// tables is set to 0 once rather than kept at its last value.
#[derive(Debug, Default)]
pub struct Reported {
    series: BTreeSet<(Gauge, String)>,
}

impl Reported {
    /// The value of every series given `standings`, and 0 for each series
    /// reported before whose tenant is no longer among them.
    pub fn next(&mut self, standings: &[Standing]) -> Vec<(Gauge, String, f64)> {
        let mut values = Vec::new();
        for standing in standings {
            let paused = standing.connected && standing.paused;
            values.push((Gauge::Paused, standing.tenant.clone(), if paused { 1.0 } else { 0.0 }));
            if let Some(usage) = standing.usage {
                let ratio = if standing.connected { usage.ratio() } else { 0.0 };
                values.push((Gauge::Usage, standing.tenant.clone(), ratio));
            }
        }
        let now_reported: BTreeSet<(Gauge, String)> = values.iter().map(|(g, t, _)| (*g, t.clone())).collect();
        for (gauge, tenant) in self.series.difference(&now_reported) {
            values.push((*gauge, tenant.clone(), 0.0));
        }
        self.series = now_reported;
        values
    }
}

/// Stores a reading of the tenant's org, unless a newer one is stored.
pub async fn record(pool: &PgPool, tenant: &TenantId, usage: ApiUsage) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO import_api_usage (tenant_id, used, max) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE SET used = EXCLUDED.used, max = EXCLUDED.max, read_at = EXCLUDED.read_at
         WHERE import_api_usage.read_at <= EXCLUDED.read_at",
    )
    .bind(tenant.as_str())
    .bind(i64::try_from(usage.used).unwrap_or(i64::MAX))
    .bind(i64::try_from(usage.max).unwrap_or(i64::MAX))
    .execute(pool)
    .await
    .map(|_| ())
}

/// Every tenant with a schedule or a reading.
pub async fn standings(pool: &PgPool) -> Result<Vec<Standing>, sqlx::Error> {
    type Row = (String, bool, bool, Option<i64>, Option<i64>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT t.tenant_id, c.tenant_id IS NOT NULL, s.paused_until IS NOT NULL, u.used, u.max
         FROM (SELECT tenant_id FROM import_schedule UNION SELECT tenant_id FROM import_api_usage) t
         LEFT JOIN import_schedule s USING (tenant_id)
         LEFT JOIN import_api_usage u USING (tenant_id)
         LEFT JOIN connections c USING (tenant_id)
         ORDER BY t.tenant_id",
    )
    .fetch_all(pool)
    .await?;
    let standings = rows
        .into_iter()
        .map(|(tenant, connected, paused, used, max)| {
            let usage = match (used.and_then(|u| u64::try_from(u).ok()), max.and_then(|m| u64::try_from(m).ok())) {
                (Some(used), Some(max)) if max > 0 => Some(ApiUsage { used, max }),
                _ => None,
            };
            Standing { tenant, connected, paused, usage }
        })
        .collect();
    Ok(standings)
}

/// Reads the standings and sets the gauges.
pub async fn refresh(pool: &PgPool, reported: &mut Reported) -> Result<(), sqlx::Error> {
    let standings = standings(pool).await?;
    for (gauge, tenant, value) in reported.next(&standings) {
        gauge.set(&tenant, value);
    }
    Ok(())
}

/// Runs [`refresh`] every `every` until `stop`.
pub async fn run(pool: PgPool, every: Duration, stop: CancellationToken) {
    let mut reported = Reported::default();
    let mut beat = crate::schedule::Every::new(every, stop);
    while beat.next().await {
        if let Err(e) = refresh(&pool, &mut reported).await {
            tracing::warn!(error = %e, "the pauses and API usage could not be read for the metrics; trying again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(tenant: &str, connected: bool, paused: bool, usage: Option<(u64, u64)>) -> Standing {
        Standing {
            tenant: tenant.to_owned(),
            connected,
            paused,
            usage: usage.map(|(used, max)| ApiUsage { used, max }),
        }
    }

    /// Feeds `rounds` of standings to one [`Reported`], in order, and
    /// compares what the last round sets.
    fn check(rounds: &[&[Standing]], expected: &[(Gauge, &str, f64)]) {
        let mut reported = Reported::default();
        let mut got = Vec::new();
        for standings in rounds {
            got = reported.next(standings);
        }
        got.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let got: Vec<(Gauge, &str, f64)> = got.iter().map(|(g, t, v)| (*g, t.as_str(), *v)).collect();
        assert_eq!(got, expected, "{rounds:?}");
    }

    #[test]
    fn a_pause_shows_until_it_is_cleared_while_the_tenant_is_connected() {
        use Gauge::Paused;
        check(&[&[standing("a", true, true, None)]], &[(Paused, "a", 1.0)]);
        check(&[&[standing("a", true, false, None)]], &[(Paused, "a", 0.0)]);
        // The connection was removed while paused.
        check(&[&[standing("a", false, true, None)]], &[(Paused, "a", 0.0)]);
        // Cleared after being reported.
        check(&[&[standing("a", true, true, None)], &[standing("a", true, false, None)]], &[(Paused, "a", 0.0)]);
    }

    #[test]
    fn the_last_reading_is_reported_as_a_ratio_while_connected() {
        use Gauge::{Paused, Usage};
        check(&[&[standing("a", true, false, Some((9_000, 10_000)))]], &[(Paused, "a", 0.0), (Usage, "a", 0.9)]);
        check(&[&[standing("a", false, false, Some((9_000, 10_000)))]], &[(Paused, "a", 0.0), (Usage, "a", 0.0)]);
        // A newer reading replaces the older one.
        check(
            &[&[standing("a", true, true, Some((9_500, 10_000)))], &[standing("a", true, false, Some((12, 10_000)))]],
            &[(Paused, "a", 0.0), (Usage, "a", 0.0012)],
        );
    }

    #[test]
    fn a_tenant_that_left_the_tables_is_set_to_0_once() {
        use Gauge::{Paused, Usage};
        let both = [standing("a", true, true, Some((9_500, 10_000))), standing("b", true, false, None)];
        check(&[&both, &both[1..]], &[(Paused, "a", 0.0), (Paused, "b", 0.0), (Usage, "a", 0.0)]);
        // Zeroed once, then no longer this process's business.
        check(&[&both, &both[1..], &both[1..]], &[(Paused, "b", 0.0)]);
        // A reading that disappears alone takes only its own series.
        check(&[&both[..1], &[standing("a", true, true, None)]], &[(Paused, "a", 1.0), (Usage, "a", 0.0)]);
    }
}
