use crate::Servers;
use pushfleet_config::{CommonConfig, Secret};
use pushfleet_store::Store;
use sqlx::{Connection, Executor, PgConnection};
use std::net::SocketAddr;
use uuid::Uuid;

/// One test's private slice of the shared servers.
#[derive(Clone, Debug)]
pub struct TestEnv {
    pub database_url: String,
    pub amqp_url: String,
    pub redis_url: String,
    /// Prefix of this test's queues and Redis keys.
    pub namespace: String,
    pub store: Store,
    /// `DEAD_LETTER_MAX_LENGTH` of the services started on this environment.
    pub dead_letter_max_length: u32,
}

impl TestEnv {
    /// A fresh database with the schema applied, and a unique namespace, on the shared
    /// servers.
    pub async fn new() -> TestEnv {
        Self::with_servers(&Servers::shared()).await
    }

    /// The same on the given servers (some or all of them private to the test).
    pub async fn with_servers(servers: &Servers) -> TestEnv {
        init_test_logging();
        let server_url = &servers.postgres_url;
        let name = format!("pf_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(server_url)
            .await
            .expect("connect to Postgres: is infra/up.sh running?");
        if servers.private_postgres {
            // A test's own cluster holds one test database: no template to share.
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create the test database");
        } else {
            let template = ensure_template(server_url).await;
            create_from_template(&mut admin, &name, &template).await;
        }
        let _ = admin.close().await;
        let database_url = with_database(server_url, &name);
        let store = Store::connect(&database_url, 20)
            .await
            .expect("connect to the test database");
        if servers.private_postgres {
            store.migrate().await.expect("migrate the test database");
        }
        TestEnv {
            database_url,
            amqp_url: servers.amqp_url.clone(),
            redis_url: servers.redis_url.clone(),
            namespace: format!("t{}", &Uuid::new_v4().simple().to_string()[..12]),
            store,
            dead_letter_max_length: 1000,
        }
    }

    /// Service configuration pointing at this environment, admin port picked by the OS.
    pub fn common(&self) -> CommonConfig {
        CommonConfig {
            database_url: Secret::new(self.database_url.clone()),
            amqp_url: Secret::new(self.amqp_url.clone()),
            redis_url: Secret::new(self.redis_url.clone()),
            namespace: self.namespace.clone(),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            db_pool_size: 5,
            dead_letter_ttl: std::time::Duration::from_secs(3600),
            dead_letter_max_length: self.dead_letter_max_length,
        }
    }

    /// Environment variables that make a service binary use this environment.
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.database_url.clone()),
            ("AMQP_URL", self.amqp_url.clone()),
            ("REDIS_URL", self.redis_url.clone()),
            ("PUSHFLEET_NAMESPACE", self.namespace.clone()),
            ("ADMIN_ADDR", "127.0.0.1:0".to_owned()),
            ("DB_POOL_SIZE", "5".to_owned()),
            (
                "DEAD_LETTER_MAX_LENGTH",
                self.dead_letter_max_length.to_string(),
            ),
        ]
    }
}

fn init_test_logging() {
    // Quiet by default; `RUST_LOG=info cargo test` shows the services' logs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

fn with_database(server_url: &str, name: &str) -> String {
    match server_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => format!("{server_url}/{name}"),
    }
}

/// The migrated template database, named after the migrations so that a schema change gets
/// a new one. Created once, under an advisory lock, by whichever test gets there first.
async fn ensure_template(server_url: &str) -> String {
    let fingerprint: u64 = pushfleet_store::MIGRATOR
        .iter()
        .fold(0xcbf29ce484222325, |h, m| {
            m.checksum.iter().fold(h ^ m.version as u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
            })
        });
    let name = format!("pf_template_{:016x}", fingerprint);
    let mut admin = PgConnection::connect(server_url)
        .await
        .expect("connect to Postgres: is infra/up.sh running?");
    admin
        .execute("SELECT pg_advisory_lock(727274)")
        .await
        .expect("advisory lock");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .expect("look up the template");
    if !exists {
        let building = format!("{name}_building");
        admin
            .execute(format!("DROP DATABASE IF EXISTS {building}").as_str())
            .await
            .expect("drop a half-built template");
        admin
            .execute(format!("CREATE DATABASE {building}").as_str())
            .await
            .expect("create the template");
        {
            let store = Store::connect(&with_database(server_url, &building), 2)
                .await
                .expect("connect to the template");
            store.migrate().await.expect("migrate the template");
            store.pool().close().await;
        }
        // Renamed only once complete, so a crash mid-migration never leaves a bad template.
        admin
            .execute(format!("ALTER DATABASE {building} RENAME TO {name}").as_str())
            .await
            .expect("publish the template");
    }
    admin
        .execute("SELECT pg_advisory_unlock(727274)")
        .await
        .expect("advisory unlock");
    name
}

async fn create_from_template(admin: &mut PgConnection, name: &str, template: &str) {
    // Postgres refuses to copy a template someone else is copying at that instant; retry.
    let mut last = None;
    for _ in 0..50 {
        match admin
            .execute(format!("CREATE DATABASE {name} TEMPLATE {template}").as_str())
            .await
        {
            Ok(_) => return,
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    panic!("could not create test database {name}: {last:?}");
}
