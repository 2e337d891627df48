//! The org's daily API allowance as Salesforce reports it on every REST
//! answer, in the `Sforce-Limit-Info` header (docs/salesforce-facts.md §3).
//!
//! The client reads it into every [`QueryPage`](crate::QueryPage) and every
//! [`ApiError`](crate::ApiError); callers decide what to do with it (set the
//! `fa_salesforce_api_usage_ratio` gauge under their tenant label policy,
//! slow down before the allowance is spent).

/// The name of the header Salesforce reports the allowance in.
pub const HEADER: &str = "sforce-limit-info";

/// API calls spent in the rolling 24 hours, and the org's allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    /// Calls spent so far.
    pub used: u64,
    /// The allowance; never 0 (a header saying so is refused as garbage).
    pub max: u64,
}

impl ApiUsage {
    /// Reads the `api-usage=used/max` entry of a `Sforce-Limit-Info` value.
    ///
    /// Lenient as the header is loosely specified: entries are split on `;`
    /// and read as `key=used/max`, other entries (`api-bursts=1/750`,
    /// `per-app-api-usage=17/250(appName=x)`) are skipped.
    ///
    /// # Returns
    /// `None` when there is no readable `api-usage` entry or its `max` is 0.
    pub fn from_header(value: &str) -> Option<Self> {
        value.split(';').find_map(|entry| {
            let (key, counts) = entry.split_once('=')?;
            if !key.trim().eq_ignore_ascii_case("api-usage") {
                return None;
            }
            let (used, max) = counts.split_once('/')?;
            let used = used.trim().parse().ok()?;
            let max = max.trim().parse().ok().filter(|max: &u64| *max > 0)?;
            Some(Self { used, max })
        })
    }

    /// The share of the allowance spent: 0.0 when fresh, 1.0 (or a little
    /// more, Salesforce lets an org run over briefly) when spent.
    pub fn ratio(&self) -> f64 {
        self.used as f64 / self.max as f64
    }

    /// Calls left before Salesforce answers `REQUEST_LIMIT_EXCEEDED`.
    pub fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_leniently() {
        fn check(header: &str, expected: Option<(u64, u64)>) {
            let got = ApiUsage::from_header(header).map(|u| (u.used, u.max));
            assert_eq!(got, expected, "{header:?}");
        }
        check("api-usage=46/101000", Some((46, 101000)));
        check("api-usage=10018/100000; api-bursts=1/750", Some((10018, 100000)));
        check("api-bursts=1/750; api-usage=7/15000", Some((7, 15000)));
        check("api-usage=18/5000; per-app-api-usage=17/250(appName=sample-connected-app)", Some((18, 5000)));
        check(" API-Usage = 3 / 3 ", Some((3, 3)));
        check("api-usage=101/100", Some((101, 100)));
        check("per-app-api-usage=17/250(appName=x)", None);
        check("api-usage=46", None);
        check("api-usage=a/b", None);
        check("api-usage=-1/100", None);
        check("api-usage=1/0", None);
        check("api-usage=/", None);
        check("", None);
        check(";;;", None);
        check("garbage", None);
    }

    #[test]
    fn ratio_and_remaining() {
        fn check(used: u64, max: u64, ratio: f64, remaining: u64) {
            let usage = ApiUsage { used, max };
            assert!((usage.ratio() - ratio).abs() < 1e-9, "{used}/{max}");
            assert_eq!(usage.remaining(), remaining, "{used}/{max}");
        }
        check(0, 15000, 0.0, 15000);
        check(46, 101000, 46.0 / 101000.0, 100954);
        check(3, 3, 1.0, 0);
        check(110, 100, 1.1, 0);
    }
}
