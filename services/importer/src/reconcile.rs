//! When a run compares the ids Front Agent holds with the ids Salesforce
//! still has, to find records purged before any run saw them deleted
//! (docs/behaviour.md §3).
//!
//! Pure, like [`crate::watermark`]; the run asks the deleted list first and
//! hands what it saw to [`due`]. Why the rule is what it is:
//! - The deleted list (`/sobjects/<object>/deleted/`) is cheap (one call)
//!   and names every deletion since the last look, purged or not, as long
//!   as its log reaches back to where that look ended.
//! - When it no longer does (its `earliestDateAvailable` is later than the
//!   last look's end, or it refuses the window with
//!   `INVALID_REPLICATION_DATE`: the recycle bin was emptied, or the tenant
//!   was paused or disconnected for more than 15 days), deletions in the gap
//!   are lost to it, and only comparing ids finds them: in that run.
//! - Otherwise a comparison at most once a day, as a safety net for what no
//!   list reports (a log trimmed by Salesforce for size): it costs one call
//!   per 2,000 ids of the object, so never more often.
//! - A tenant's first look has nothing to compare: Front Agent holds
//!   nothing of it yet.

use time::{Duration, OffsetDateTime};

/// How often a comparison runs when the deleted list reaches back.
pub const SAFETY_NET_INTERVAL: Duration = Duration::DAY;

/// What the deleted list said this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListAnswer {
    /// It answered, reaching back to `earliest_available`.
    Answered {
        /// Its `earliestDateAvailable`.
        earliest_available: Option<OffsetDateTime>,
    },
    /// It refused the window (`INVALID_REPLICATION_DATE`).
    Refused,
}

/// Why a run compares ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The deleted list no longer reaches back to the last look's end.
    ListGap,
    /// No comparison for [`SAFETY_NET_INTERVAL`].
    SafetyNet,
}

impl Reason {
    /// The metric and log label.
    pub fn label(self) -> &'static str {
        match self {
            Self::ListGap => "list_gap",
            Self::SafetyNet => "safety_net",
        }
    }
}

/// Whether this run compares ids for an object, and why. `last_look_end`
/// is where the previous look at the deleted list ended (`None` before the
/// first), `last_compared` when ids were last compared.
pub fn due(
    answer: ListAnswer,
    last_look_end: Option<OffsetDateTime>,
    last_compared: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Option<Reason> {
    let last_look_end = last_look_end?;
    let gap = match answer {
        ListAnswer::Refused => true,
        ListAnswer::Answered { earliest_available } => earliest_available.is_some_and(|e| e > last_look_end),
    };
    if gap {
        return Some(Reason::ListGap);
    }
    match last_compared {
        Some(at) if now - at < SAFETY_NET_INTERVAL => None,
        _ => Some(Reason::SafetyNet),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-12-04 15:00 UTC);

    fn answered(earliest: OffsetDateTime) -> ListAnswer {
        ListAnswer::Answered { earliest_available: Some(earliest) }
    }

    #[test]
    fn ids_are_compared_when_the_list_cannot_tell_and_otherwise_once_a_day() {
        let look = Some(NOW - Duration::days(1));
        let recent = Some(NOW - Duration::hours(2));
        let cases = [
            (
                "a tenant's first look: nothing held, nothing to compare",
                answered(NOW - Duration::days(15)),
                None,
                None,
                None,
            ),
            ("the list reaches back, compared two hours ago", answered(NOW - Duration::days(15)), look, recent, None),
            ("the list reaches exactly back", answered(NOW - Duration::days(1)), look, recent, None),
            (
                "the bin was emptied after the last look",
                answered(NOW - Duration::hours(3)),
                look,
                recent,
                Some(Reason::ListGap),
            ),
            ("the window was refused", ListAnswer::Refused, look, recent, Some(Reason::ListGap)),
            (
                "paused for 20 days: the log no longer reaches back",
                answered(NOW - Duration::days(15)),
                Some(NOW - Duration::days(20)),
                recent,
                Some(Reason::ListGap),
            ),
            ("never compared", answered(NOW - Duration::days(15)), look, None, Some(Reason::SafetyNet)),
            (
                "compared a day ago",
                answered(NOW - Duration::days(15)),
                look,
                Some(NOW - Duration::DAY),
                Some(Reason::SafetyNet),
            ),
            (
                "an answer without earliestDateAvailable",
                ListAnswer::Answered { earliest_available: None },
                look,
                recent,
                None,
            ),
        ];
        for (what, answer, last_look_end, last_compared, expected) in cases {
            assert_eq!(due(answer, last_look_end, last_compared, NOW), expected, "{what}");
        }
    }
}
