//! Reading one object's cursor: its pages, each asked for as soon as the
//! one before it names it, decoded and mapped off the async workers, and
//! handed to the run in batches of at most the run's remaining cap.

use std::collections::VecDeque;

use fa_messages::{SObject, TenantId};
use fa_salesforce::{ApiUsage, RawPage};
use std::time::Instant;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::AbortOnDropHandle;

use super::{Settings, record::Prepared};
use crate::{
    mapping::Seen,
    org::{self, Failure, Org, PageRequest, describe_usage},
    query,
    run_error::RunErrorCode,
    watermark::{Fate, Resume, Watermark},
};

/// A page: its records prepared, where it goes on, the allowance it reported.
pub(super) struct Page {
    records: Vec<Prepared>,
    next_records_url: Option<String>,
    usage: Option<ApiUsage>,
}

/// Records to publish, in read order, and the allowance the page reported.
pub(super) struct Batch {
    pub(super) rows: Vec<(Prepared, Fate)>,
    pub(super) usage: Option<ApiUsage>,
    /// Read by the object's cursor, so the watermark moves past them; not
    /// so for removals a look for purged records found.
    pub(super) cursor: bool,
}

/// One object's read: the task that reads its pages, and what is decided
/// and not yet published.
pub(super) struct Reader {
    pub(super) resume: Resume,
    pub(super) ready: VecDeque<(Prepared, Fate)>,
    /// Pages in read order; `None` once the last one arrived.
    pub(super) pages: Option<mpsc::Receiver<Result<Page, Failure>>>,
    /// The allowance of pages not yet handed out in a batch.
    pub(super) usage: Option<ApiUsage>,
    /// When the cursor's query was sent: what it read is as of then, so the
    /// look for records purged unseen ([`purged`]) ends there.
    pub(super) queried_at: OffsetDateTime,
    /// Whether this cursor's look for records purged unseen is done.
    pub(super) looked: bool,
    /// Stops reading when the reader is dropped.
    pub(super) _reading: AbortOnDropHandle<()>,
}

/// Pages read but not yet taken by the run, beyond the one it publishes and
/// the one being read: what bounds the importer's memory.
pub(super) const PAGES_AHEAD: usize = 2;

impl Reader {
    /// Starts reading `object` after `watermark` (from the lookback
    /// without one); the first page is requested at once.
    pub(super) fn start(
        org: Org,
        tenant: &TenantId,
        object: SObject,
        watermark: Option<Watermark>,
        settings: &Settings,
    ) -> Self {
        let now = OffsetDateTime::now_utc();
        let from = match &watermark {
            Some(w) => w.modified_at - settings.overlap,
            None => now - settings.lookback,
        };
        let (pages, receiver) = mpsc::channel(PAGES_AHEAD);
        let reading = tokio::spawn(read(org, tenant.clone(), PageRequest::QueryAll(query::soql(object, from)), pages));
        Self {
            resume: Resume::new(watermark),
            ready: VecDeque::new(),
            pages: Some(receiver),
            usage: None,
            queried_at: now,
            looked: false,
            _reading: AbortOnDropHandle::new(reading),
        }
    }

    /// Up to `budget` new records (with any overlap before them), or `None`
    /// once the object is read to its end.
    pub(super) async fn next_batch(&mut self, budget: u64) -> Result<Option<Batch>, Failure> {
        while self.ready.is_empty() {
            let Some(pages) = &mut self.pages else { return Ok(None) };
            let page = match pages.recv().await {
                Some(page) => page?,
                None => return Err(Failure::Exhausted { message: "reading pages stopped unexpectedly".to_owned() }),
            };
            self.usage = page.usage.or(self.usage);
            let more = page.next_records_url.is_some();
            let resume = &mut self.resume;
            self.ready.extend(page.records.into_iter().filter_map(|row| resume.admit(&row).map(|fate| (row, fate))));
            if !more {
                self.pages = None;
            }
        }
        let mut rows = Vec::new();
        let mut new = 0u64;
        while let Some((_, fate)) = self.ready.front() {
            if *fate == Fate::New {
                if new == budget {
                    break;
                }
                new += 1;
            }
            if let Some(entry) = self.ready.pop_front() {
                rows.push(entry);
            }
        }
        Ok(Some(Batch { rows, usage: self.usage.take(), cursor: true }))
    }
}

/// Reads a cursor to its end into `pages`. Each page's successor is asked
/// for as soon as its `nextRecordsUrl` is known, before the page is mapped
/// and while it waits to be published: Salesforce's answer time, not the
/// importer's work, sets the pace. Stops at the first failure (sent on),
/// after a page that shows the org's allowance 90 % used (a pause is sent
/// on), or when the receiver is gone.
pub(super) async fn read(org: Org, tenant: TenantId, first: PageRequest, pages: mpsc::Sender<Result<Page, Failure>>) {
    let fetch = |request: PageRequest| {
        let org = org.clone();
        AbortOnDropHandle::new(tokio::spawn(async move {
            let asked = Instant::now();
            let page = org.page(&request).await;
            tracing::debug!(tenant_id = %org.tenant(), took_ms = asked.elapsed().as_secs_f64() * 1e3, "page read");
            page
        }))
    };
    let mut next = Some(fetch(first));
    while let Some(fetching) = next.take() {
        let read = fetching
            .await
            .unwrap_or_else(|e| Err(Failure::Exhausted { message: format!("reading a page failed: {e}") }));
        let page = match read {
            Ok(page) => page,
            Err(failure) => {
                let _ = pages.send(Err(failure)).await;
                return;
            }
        };
        // An org at 90 % of its allowance gets no further call: the run
        // publishes this page and pauses (docs/behaviour.md §5).
        let spent = org::spent(page.usage);
        let (found, mapped) = map(page, tenant.clone());
        // No answer: the page failed to decode, and says why below.
        if let Ok(Some(url)) = found.await
            && spent.is_none()
        {
            next = Some(fetch(PageRequest::More(url)));
        }
        let mapped =
            mapped.await.unwrap_or_else(|e| Err(Failure::Exhausted { message: format!("mapping a page failed: {e}") }));
        let page = match mapped {
            Ok(page) => page,
            Err(failure) => {
                let _ = pages.send(Err(failure)).await;
                return;
            }
        };
        let more = page.next_records_url.is_some();
        if pages.send(Ok(page)).await.is_err() {
            return;
        }
        if let Some(usage) = spent
            && more
        {
            let _ = pages.send(Err(Failure::Pause { reason: describe_usage(usage) })).await;
            return;
        }
    }
}

/// Decodes and maps a page (phone numbers above all: CPU work) off the
/// async workers, so the publishing goes on. The first receiver gets the
/// page's `nextRecordsUrl` as soon as the decoding reaches it, before its
/// rows, so the next page is asked for at once; it gets nothing when the
/// page fails to decode first.
fn map(
    page: RawPage,
    tenant: TenantId,
) -> (oneshot::Receiver<Option<String>>, tokio::task::JoinHandle<Result<Page, Failure>>) {
    let (next_url, found) = oneshot::channel();
    let mapped = tokio::task::spawn_blocking(move || {
        let mapping = Instant::now();
        let decoded = page.decode::<Seen>(|url| {
            let _ = next_url.send(url.map(str::to_owned));
        });
        let mapped = decoded.map(|decoded| Page {
            records: decoded.records.into_iter().map(|seen| Prepared::new(&tenant, seen)).collect(),
            next_records_url: decoded.next_records_url,
            usage: page.usage,
        });
        tracing::debug!(tenant_id = %tenant, mapped_ms = mapping.elapsed().as_secs_f64() * 1e3, "page mapped");
        // A row that is not a record fails the page.
        mapped.map_err(|error| Failure::Permanent {
            code: RunErrorCode::SalesforceRejected,
            message: error.to_string(),
            salesforce_error_code: None,
        })
    });
    (found, mapped)
}
