//! Test support shared by every crate's tests.
//!
//! Tests talk to the real PostgreSQL and RabbitMQ. Each test gets its own
//! database ([`TestDatabase`]) and its own RabbitMQ vhost ([`TestVhost`]),
//! both named with a UUID and removed when dropped, so tests run in parallel
//! and a failed run leaves nothing that breaks the next (`make test` also
//! sweeps leftovers of killed runs). [`eventually`] waits for an observable
//! effect with a deadline instead of sleeping.

use std::{future::Future, process::Command, time::Duration};

use anyhow::{Context as _, bail};
use sqlx::{Connection as _, Executor as _, PgConnection, PgPool};

pub mod process;
pub mod service;

/// The server-level PostgreSQL URL used to create and drop test databases.
pub fn admin_database_url() -> String {
    std::env::var("FA_SF_TEST_ADMIN_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of its own for one test, dropped with the value.
pub struct TestDatabase {
    /// The database's name, `fa_test_<uuid>`.
    pub name: String,
    /// A URL that reaches it.
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database (no migrations applied).
    pub async fn create() -> anyhow::Result<Self> {
        let admin = admin_database_url();
        let name = format!("fa_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .with_context(|| format!("tests need PostgreSQL at {admin} (run `make deps`)"))?;
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await?;
        conn.close().await.ok();
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => bail!("cannot derive a database URL from {admin}"),
        };
        Ok(Self { name, url })
    }

    /// A small pool on the database.
    pub async fn pool(&self) -> anyhow::Result<PgPool> {
        Ok(sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(&self.url).await?)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run inside a runtime; a thread of its own can block.
        let joined = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin_database_url()).await?;
                conn.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await?;
                anyhow::Ok(())
            })
        })
        .join();
        if let Ok(Err(e)) = joined {
            eprintln!("warning: test database {} not dropped: {e}", self.name);
        }
    }
}

/// A RabbitMQ vhost of its own for one test, deleted with the value, and
/// the users [`TestVhost::service_url`] made for it.
///
/// Uses `rabbitmqctl`, so tests run where the broker runs (as `make test`
/// and CI do).
pub struct TestVhost {
    /// The vhost's name, `fa-test-<uuid>`.
    pub name: String,
    /// An AMQP URL that reaches it as `guest`, with every right on it.
    pub url: String,
    /// The users made for it, with their URLs.
    users: std::sync::Mutex<Vec<(String, String)>>,
}

/// `deploy/rabbitmq/permissions`: each service's configure, write and read
/// patterns, the ones `make deps` and the SREs give its user.
const SERVICE_PERMISSIONS: &str = include_str!("../../../deploy/rabbitmq/permissions");

/// The configure, write and read patterns of `service` in
/// `deploy/rabbitmq/permissions`.
pub fn service_permissions(service: &str) -> anyhow::Result<[&'static str; 3]> {
    SERVICE_PERMISSIONS
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [user, configure, write, read] if *user == service => Some([*configure, *write, *read]),
                _ => None,
            }
        })
        .with_context(|| format!("deploy/rabbitmq/permissions has no line for {service}"))
}

impl TestVhost {
    /// Creates the vhost and lets `guest` use it.
    pub fn create() -> anyhow::Result<Self> {
        let vhost = Self::planned();
        vhost.add()?;
        Ok(vhost)
    }

    /// A name and URL whose vhost does not exist yet: connecting fails, as
    /// with an unreachable broker, until [`TestVhost::add`].
    pub fn planned() -> Self {
        let name = format!("fa-test-{}", uuid::Uuid::new_v4().simple());
        let host =
            std::env::var("FA_SF_TEST_AMQP_AUTHORITY").unwrap_or_else(|_| "guest:guest@127.0.0.1:5672".to_owned());
        let url = format!("amqp://{host}/{name}");
        Self { name, url, users: std::sync::Mutex::new(Vec::new()) }
    }

    /// The user of [`TestVhost::url`] (`guest` unless
    /// `FA_SF_TEST_AMQP_AUTHORITY` names another).
    pub fn user(&self) -> &str {
        let authority = self.url.trim_start_matches("amqp://");
        let credentials = authority.split_once('@').map_or("guest", |(credentials, _)| credentials);
        credentials.split_once(':').map_or(credentials, |(user, _)| user)
    }

    /// A URL that reaches the vhost as a new user of this test's own, named
    /// `<vhost>-<service>` and holding only the permissions
    /// `deploy/rabbitmq/permissions` gives `service`: the service then runs
    /// with exactly the rights it has in production. The user is deleted
    /// with the vhost.
    pub fn service_url(&self, service: &str) -> anyhow::Result<String> {
        let [configure, write, read] = service_permissions(service)?;
        self.user_url(service, [configure, write, read])
    }

    /// The user name [`TestVhost::service_url`] gives `service`.
    pub fn service_user(&self, service: &str) -> String {
        format!("{}-{service}", self.name)
    }

    /// A URL that reaches the vhost as the user named `<vhost>-<name>`,
    /// made on the first call with the given configure, write and read
    /// patterns (later calls return the same URL).
    pub fn user_url(&self, name: &str, [configure, write, read]: [&str; 3]) -> anyhow::Result<String> {
        let user = self.service_user(name);
        let mut users = self.users.lock().map_err(|_| anyhow::anyhow!("a test panicked while making a user"))?;
        if let Some((_, url)) = users.iter().find(|(made, _)| *made == user) {
            return Ok(url.clone());
        }
        let password = uuid::Uuid::new_v4().simple().to_string();
        rabbitmqctl(&["add_user", &user, &password])?;
        let host = self.url.trim_start_matches("amqp://");
        let host = host.split_once('@').map_or(host, |(_, host)| host);
        let url = format!("amqp://{user}:{password}@{host}");
        users.push((user.clone(), url.clone()));
        rabbitmqctl(&["set_permissions", "-p", &self.name, &user, configure, write, read])?;
        Ok(url)
    }

    /// Creates the planned vhost on the broker.
    pub fn add(&self) -> anyhow::Result<()> {
        rabbitmqctl(&["add_vhost", &self.name])?;
        rabbitmqctl(&["set_permissions", "-p", &self.name, "guest", ".*", ".*", ".*"])
    }

    /// Closes every client connection of this vhost, as an SRE's
    /// `rabbitmqctl close_all_connections` or a broker restart would.
    pub fn close_all_connections(&self) -> anyhow::Result<()> {
        rabbitmqctl(&["close_all_connections", "-p", &self.name, "closed by a test"])
    }

    /// The vhost's queues with their message counts and arguments, as
    /// `rabbitmqctl list_queues` prints them (tab-separated).
    pub fn list_queues(&self) -> anyhow::Result<String> {
        rabbitmqctl_output(&["list_queues", "-q", "-p", &self.name, "name", "messages", "arguments", "type", "durable"])
    }

    /// The vhost's connections, one process id per line: a connection
    /// dropped and made again shows as another id.
    ///
    /// `rabbitmqctl list_connections` takes no vhost (`-p` is ignored: it
    /// lists the whole node's, every other test's too), so the vhost is
    /// listed beside each pid and the lines of others are dropped here.
    pub fn list_connections(&self) -> anyhow::Result<String> {
        let all = rabbitmqctl_output(&["list_connections", "-q", "--no-table-headers", "vhost", "pid"])?;
        Ok(all
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .filter(|(vhost, _)| *vhost == self.name)
            .map(|(_, pid)| format!("{pid}\n"))
            .collect())
    }
}

impl Drop for TestVhost {
    fn drop(&mut self) {
        if let Err(e) = rabbitmqctl(&["delete_vhost", &self.name]) {
            eprintln!("warning: test vhost {} not deleted: {e}", self.name);
        }
        let users = self.users.lock().map(|users| users.clone()).unwrap_or_else(|e| e.into_inner().clone());
        for (user, _) in users {
            if let Err(e) = rabbitmqctl(&["delete_user", &user]) {
                eprintln!("warning: test user {user} not deleted: {e}");
            }
        }
    }
}

fn rabbitmqctl(args: &[&str]) -> anyhow::Result<()> {
    rabbitmqctl_output(args).map(|_| ())
}

fn rabbitmqctl_output(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .context("tests need rabbitmqctl on PATH and a running RabbitMQ (run `make deps`)")?;
    if !out.status.success() {
        bail!("rabbitmqctl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `probe` until it yields `Some`, failing the test after `deadline`
/// with `what` in the message.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
