//! What sfsim remembers: orgs with their apps, users, records, sessions,
//! API allowance, switched-on faults and call counts. Several orgs live in
//! one server; a session of one org never sees another's data.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use time::{OffsetDateTime, UtcOffset};

use crate::{
    ids::IdGenerator,
    recycle_bin::RecycleBin,
    schema::{self, ObjectSchema},
    soql,
    value::{Record, Value},
};

/// Locks poisoned by a panicking request are still usable: sfsim's data is
/// never left half-written (each write builds the record, then inserts it).
pub(crate) fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}
pub(crate) fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
pub(crate) fn lock<T>(lock: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How the whole simulator behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// A session expires after this long without a call (Salesforce's default
    /// org session timeout is 2 hours).
    pub session_timeout: Duration,
    /// The daily API allowance of a new org (Developer Edition: 15,000).
    pub default_daily_limit: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self { session_timeout: Duration::from_secs(2 * 3600), default_daily_limit: 15_000 }
    }
}

/// The locale Salesforce composes person names in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Locale {
    /// 姓 名: `LastName FirstName`.
    #[serde(rename = "ja_JP")]
    JaJp,
    /// `FirstName LastName`.
    #[serde(rename = "en_US")]
    EnUs,
}

/// A connected app registered in an org.
#[derive(Debug, Clone)]
pub struct App {
    /// The org it belongs to.
    pub org_id: String,
    /// The certificate uploaded under 「デジタル署名を使用」.
    pub certificate_pem: String,
    /// Users pre-authorised for it (admin-approved policy + profile).
    pub approved_user_ids: HashSet<String>,
}

/// An access token's session.
#[derive(Debug)]
pub struct Session {
    /// Its org.
    pub org_id: String,
    /// Its user.
    pub user_id: String,
    last_used: Mutex<Instant>,
    revoked: AtomicBool,
}

/// The org's rolling daily API allowance.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Calls allowed per 24 hours.
    pub max: u64,
    /// Calls made in the current window.
    pub used: u64,
    window_start: Instant,
}

/// Faults a test switches on for one org.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added to every API call, in milliseconds.
    pub latency_ms: u64,
    /// Share of API calls answered 503 `SERVER_UNAVAILABLE` (0 to 1).
    pub unavailable_rate: f64,
    /// Share of writes answered `UNABLE_TO_LOCK_ROW` (0 to 1).
    pub lock_rate: f64,
    /// The next N API calls answer 503 `SERVER_UNAVAILABLE`.
    pub unavailable_next: u32,
    /// The next N writes answer `UNABLE_TO_LOCK_ROW`.
    pub lock_next: u32,
    /// The next N writes are committed but never answered.
    pub timeout_after_commit_next: u32,
    /// Records created this recently are not yet found by SOSL (the search
    /// index lags), in seconds.
    pub search_lag_secs: u64,
    /// Objects the API user may no longer read (an admin took the
    /// permission away): queries on them answer `INVALID_TYPE`.
    pub unreadable_objects: Vec<String>,
}

/// A query's result set, paged through `nextRecordsUrl`.
#[derive(Debug)]
pub struct Cursor {
    /// The parsed query, for rendering rows.
    pub query: Arc<soql::Query>,
    /// The ids of every matching record, in order.
    pub ids: Vec<String>,
    /// Rows per page.
    pub batch: usize,
    /// The API version the query was made with.
    pub api_version: String,
    /// The offset the one valid locator points at.
    pub next: usize,
    /// When the cursor stops being valid.
    pub expires: Instant,
}

/// An org's records.
#[derive(Debug, Default)]
pub struct OrgData {
    /// Every record by id, users included.
    pub records: HashMap<String, Record>,
    /// Ids per object, in creation order.
    pub by_object: HashMap<&'static str, Vec<String>>,
    /// Deleted records awaiting purge, and the delete log.
    pub recycle_bin: RecycleBin,
}

impl soql::Lookup for OrgData {
    fn record(&self, id: &str) -> Option<&Record> {
        self.records.get(id)
    }
}

impl OrgData {
    /// The records of one object, in creation order.
    pub fn of<'a>(&'a self, object: &ObjectSchema) -> impl Iterator<Item = &'a Record> + 'a {
        self.by_object.get(object.name).into_iter().flatten().filter_map(|id| self.records.get(id))
    }

    /// Inserts a new record.
    pub fn insert(&mut self, record: Record) {
        let id = record.id().to_owned();
        self.by_object.entry(record.object.name).or_default().push(id.clone());
        self.records.insert(id, record);
    }

    /// Removes a record for good (a purge from the recycle bin).
    pub(crate) fn remove(&mut self, id: &str) -> Option<Record> {
        let record = self.records.remove(id)?;
        if let Some(ids) = self.by_object.get_mut(record.object.name) {
            ids.retain(|i| i != id);
        }
        Some(record)
    }
}

/// One Salesforce org.
#[derive(Debug)]
pub struct Org {
    /// `00D...`.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// Name composition.
    pub locale: Locale,
    /// Sandboxes accept the audience `https://test.salesforce.com`, others
    /// `https://login.salesforce.com`.
    pub sandbox: bool,
    /// The integration user's time zone, for `TODAY` and `LAST_N_DAYS`.
    pub user_offset: UtcOffset,
    /// Its records.
    pub data: RwLock<OrgData>,
    /// Its API allowance.
    pub limits: Mutex<Limits>,
    /// Its switched-on faults.
    pub faults: Mutex<Faults>,
    /// API calls per route (`GET query`, `POST sobjects/Task`...).
    pub calls: Mutex<BTreeMap<String, u64>>,
    /// Open query cursors by id.
    pub cursors: Mutex<HashMap<String, Cursor>>,
    /// Objects whose duplicate rules block a create.
    pub duplicate_rules: Mutex<HashSet<&'static str>>,
    /// How far the org's clock runs ahead of the real one (moved forward by
    /// the control API, to see 15 days pass without waiting for them).
    clock_ahead: Mutex<time::Duration>,
}

impl Org {
    /// Counts an API call and spends one unit of the allowance; `Err` when
    /// the allowance is spent (the call is refused and not counted).
    pub fn spend_call(&self, route: &str) -> Result<(u64, u64), (u64, u64)> {
        let mut limits = lock(&self.limits);
        if limits.window_start.elapsed() >= Duration::from_secs(24 * 3600) {
            limits.used = 0;
            limits.window_start = Instant::now();
        }
        if limits.used >= limits.max {
            return Err((limits.used, limits.max));
        }
        limits.used += 1;
        *lock(&self.calls).entry(route.to_owned()).or_default() += 1;
        Ok((limits.used, limits.max))
    }

    /// Sets the allowance (`used` of `max`).
    pub fn set_limits(&self, used: Option<u64>, max: Option<u64>) {
        let mut limits = lock(&self.limits);
        if let Some(max) = max {
            limits.max = max;
        }
        if let Some(used) = used {
            limits.used = used;
        }
    }

    /// API calls so far, by route (`GET /query`, `POST /sobjects/{object}`).
    pub fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.calls).clone()
    }

    /// The current allowance as `(used, max)`.
    pub fn usage(&self) -> (u64, u64) {
        let limits = lock(&self.limits);
        (limits.used, limits.max)
    }

    /// The context SOQL date literals resolve in.
    pub fn eval_context(&self) -> soql::EvalContext {
        soql::EvalContext { now: self.now(), user_offset: self.user_offset }
    }

    /// The org's current instant: what `SystemModstamp`, deletion dates,
    /// the recycle bin and the delete log go by. Sessions, cursors and the
    /// daily allowance keep to the real clock.
    pub fn now(&self) -> OffsetDateTime {
        let real = OffsetDateTime::now_utc();
        real.checked_add(*lock(&self.clock_ahead)).unwrap_or(real)
    }

    /// How far the org's clock runs ahead of the real one.
    pub fn clock_ahead(&self) -> time::Duration {
        *lock(&self.clock_ahead)
    }

    /// Moves the org's clock forward by `by`, then purges what the recycle
    /// bin no longer keeps at the new time. Time never runs backwards.
    pub fn advance_clock(&self, by: time::Duration) {
        if by.is_positive() {
            let mut ahead = lock(&self.clock_ahead);
            *ahead = ahead.checked_add(by).unwrap_or(*ahead);
        }
        self.expire_recycle_bin();
    }

    /// Purges records deleted more than 15 days ago (Salesforce empties its
    /// recycle bin on its own after that long). Cheap when nothing is due,
    /// so every API call runs it.
    pub fn expire_recycle_bin(&self) {
        let now = self.now();
        if read(&self.data).recycle_bin.expiry_due(now) {
            crate::recycle_bin::expire(&mut write(&self.data), now);
        }
    }
}

/// The simulator's state, shared by every request. Cheap to clone.
#[derive(Clone, Default)]
pub struct Sim {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    config: SimConfig,
    ids: IdGenerator,
    orgs: RwLock<HashMap<String, Arc<Org>>>,
    apps: RwLock<HashMap<String, App>>,
    usernames: RwLock<HashMap<String, (String, String)>>,
    sessions: RwLock<HashMap<String, Arc<Session>>>,
    instance_url: RwLock<String>,
}

/// A new user of an org.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct NewUser {
    /// Globally unique, e-mail shaped.
    pub username: String,
    /// Given name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: String,
    /// Where mail goes.
    #[serde(default)]
    pub email: Option<String>,
    /// Can log in and own records.
    #[serde(default = "yes")]
    pub active: bool,
    /// `Standard` for people; `AutomatedProcess` and others are not.
    #[serde(default = "standard")]
    pub user_type: String,
}

fn yes() -> bool {
    true
}
fn standard() -> String {
    "Standard".to_owned()
}

impl Sim {
    /// An empty simulator.
    pub fn new(config: SimConfig) -> Self {
        Self { inner: Arc::new(Inner { config, ..Default::default() }) }
    }

    /// The URL API calls go to (`instance_url`); set when the server binds.
    pub fn instance_url(&self) -> String {
        read(&self.inner.instance_url).clone()
    }

    pub(crate) fn set_instance_url(&self, url: String) {
        *write(&self.inner.instance_url) = url;
    }

    /// Sets the instance URL of a simulator served by the caller's own
    /// server (the benchmark wraps the routes in a timing layer).
    pub fn set_instance_url_for_bench(&self, url: String) {
        self.set_instance_url(url);
    }

    /// The id generator.
    pub fn ids(&self) -> &IdGenerator {
        &self.inner.ids
    }

    /// Creates an org.
    pub fn create_org(&self, name: &str, locale: Locale, sandbox: bool, daily_limit: Option<u64>) -> Arc<Org> {
        let id = self.inner.ids.next("00D");
        let org = Arc::new(Org {
            id: id.clone(),
            name: name.to_owned(),
            locale,
            sandbox,
            user_offset: match locale {
                Locale::JaJp => UtcOffset::from_hms(9, 0, 0).unwrap_or(UtcOffset::UTC),
                Locale::EnUs => UtcOffset::UTC,
            },
            data: RwLock::default(),
            limits: Mutex::new(Limits {
                max: daily_limit.unwrap_or(self.inner.config.default_daily_limit),
                used: 0,
                window_start: Instant::now(),
            }),
            faults: Mutex::default(),
            calls: Mutex::default(),
            cursors: Mutex::default(),
            duplicate_rules: Mutex::default(),
            clock_ahead: Mutex::default(),
        });
        write(&self.inner.orgs).insert(id, org.clone());
        org
    }

    /// An org by id.
    pub fn org(&self, id: &str) -> Option<Arc<Org>> {
        read(&self.inner.orgs).get(id).cloned()
    }

    /// Every org's id.
    pub fn org_ids(&self) -> Vec<String> {
        read(&self.inner.orgs).keys().cloned().collect()
    }

    /// Registers a connected app; returns its consumer key.
    pub fn create_app(&self, org: &Org, consumer_key: Option<String>, certificate_pem: String) -> String {
        let key = consumer_key.unwrap_or_else(|| format!("3MVG9{}", self.inner.ids.next("app").to_lowercase()));
        write(&self.inner.apps)
            .insert(key.clone(), App { org_id: org.id.clone(), certificate_pem, approved_user_ids: HashSet::new() });
        key
    }

    /// Pre-authorises (or stops pre-authorising) a user for an app.
    pub fn approve(&self, consumer_key: &str, user_id: &str, approved: bool) -> bool {
        match write(&self.inner.apps).get_mut(consumer_key) {
            Some(app) => {
                if approved {
                    app.approved_user_ids.insert(user_id.to_owned());
                } else {
                    app.approved_user_ids.remove(user_id);
                }
                true
            }
            None => false,
        }
    }

    /// An app by consumer key.
    pub fn app(&self, consumer_key: &str) -> Option<App> {
        read(&self.inner.apps).get(consumer_key).cloned()
    }

    /// Creates a user; `Err` when the username is taken (usernames are
    /// global across orgs, as in Salesforce).
    pub fn create_user(&self, org: &Org, user: &NewUser) -> Result<String, String> {
        let key = user.username.to_lowercase();
        if read(&self.inner.usernames).contains_key(&key) {
            return Err(format!("the username {} is taken", user.username));
        }
        let id = self.inner.ids.next("005");
        let schema = schema::object("User").ok_or("no User object")?;
        let now = org.now();
        let name = crate::write::compose_name(org.locale, user.first_name.as_deref(), Some(&user.last_name));
        let mut fields = BTreeMap::new();
        for (k, v) in [
            ("Id", Value::Text(id.clone())),
            ("Username", Value::Text(user.username.clone())),
            ("LastName", Value::Text(user.last_name.clone())),
            ("Name", Value::Text(name)),
            ("Email", Value::Text(user.email.clone().unwrap_or_else(|| user.username.clone()))),
            ("IsActive", Value::Bool(user.active)),
            ("UserType", Value::Text(user.user_type.clone())),
            ("IsDeleted", Value::Bool(false)),
            ("CreatedDate", Value::DateTime(now)),
            ("LastModifiedDate", Value::DateTime(now)),
            ("SystemModstamp", Value::DateTime(now)),
        ] {
            fields.insert(k, v);
        }
        if let Some(first) = &user.first_name {
            fields.insert("FirstName", Value::Text(first.clone()));
        }
        write(&org.data).insert(Record { object: schema, fields });
        write(&self.inner.usernames).insert(key, (org.id.clone(), id.clone()));
        Ok(id)
    }

    /// Activates or deactivates a user.
    pub fn set_user_active(&self, org: &Org, user_id: &str, active: bool) -> bool {
        let mut data = write(&org.data);
        match data.records.get_mut(user_id) {
            Some(user) if user.object.name == "User" => {
                let now = org.now();
                user.fields.insert("IsActive", Value::Bool(active));
                user.fields.insert("SystemModstamp", Value::DateTime(now));
                user.fields.insert("LastModifiedDate", Value::DateTime(now));
                true
            }
            _ => false,
        }
    }

    /// `(org id, user id, active)` of a username.
    pub fn user_by_username(&self, username: &str) -> Option<(String, String, bool)> {
        let (org_id, user_id) = read(&self.inner.usernames).get(&username.to_lowercase()).cloned()?;
        let org = self.org(&org_id)?;
        let active =
            matches!(read(&org.data).records.get(&user_id).map(|u| u.get("IsActive").clone()), Some(Value::Bool(true)));
        Some((org_id, user_id, active))
    }

    /// Opens a session for a user; returns the access token.
    pub fn open_session(&self, org_id: &str, user_id: &str) -> String {
        // Salesforce tokens start with the org id and an exclamation mark.
        let secret: String = (0..4).map(|_| self.inner.ids.next("tok")).collect::<Vec<_>>().join("");
        let token = format!("{}!{}", &org_id[..15.min(org_id.len())], secret.replace("tok5j000", ""));
        let session = Session {
            org_id: org_id.to_owned(),
            user_id: user_id.to_owned(),
            last_used: Mutex::new(Instant::now()),
            revoked: AtomicBool::new(false),
        };
        write(&self.inner.sessions).insert(token.clone(), Arc::new(session));
        token
    }

    /// The session of a token when it is valid, touching it (every call
    /// resets the inactivity timer).
    pub fn session(&self, token: &str) -> Option<Arc<Session>> {
        let session = read(&self.inner.sessions).get(token).cloned()?;
        if session.revoked.load(Ordering::Relaxed) {
            return None;
        }
        let mut last = lock(&session.last_used);
        if last.elapsed() > self.inner.config.session_timeout {
            return None;
        }
        *last = Instant::now();
        drop(last);
        Some(session)
    }

    /// How many sessions were opened for an org: one per successful token
    /// exchange (logins are rate-limited, so connectors must cache tokens).
    pub fn logins(&self, org_id: &str) -> usize {
        read(&self.inner.sessions).values().filter(|s| s.org_id == org_id).count()
    }

    /// Revokes every session of an org; returns how many.
    pub fn revoke_sessions(&self, org_id: &str) -> usize {
        let sessions = read(&self.inner.sessions);
        let mut n = 0;
        for session in sessions.values().filter(|s| s.org_id == org_id) {
            if !session.revoked.swap(true, Ordering::Relaxed) {
                n += 1;
            }
        }
        n
    }

    /// Ends the session of one access token (`/services/oauth2/revoke`);
    /// false when there was no live session with that token.
    pub fn revoke_session(&self, token: &str) -> bool {
        read(&self.inner.sessions).get(token).is_some_and(|s| !s.revoked.swap(true, Ordering::Relaxed))
    }

    /// Ages every session of an org by `by` (to test the inactivity timeout
    /// without waiting two hours).
    pub fn age_sessions(&self, org_id: &str, by: Duration) {
        for session in read(&self.inner.sessions).values().filter(|s| s.org_id == org_id) {
            let mut last = lock(&session.last_used);
            *last = last.checked_sub(by).unwrap_or(*last);
        }
    }
}

impl crate::oauth::Directory for Sim {
    fn app(&self, consumer_key: &str) -> Option<crate::oauth::AppInfo> {
        let app = Sim::app(self, consumer_key)?;
        Some(crate::oauth::AppInfo {
            org_id: app.org_id,
            certificate_pem: app.certificate_pem,
            approved_user_ids: app.approved_user_ids.into_iter().collect(),
        })
    }

    fn user(&self, username: &str) -> Option<crate::oauth::UserInfo> {
        let (org_id, id, active) = self.user_by_username(username)?;
        Some(crate::oauth::UserInfo { id, org_id, active })
    }
}
