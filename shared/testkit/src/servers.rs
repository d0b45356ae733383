use crate::{PrivatePostgres, PrivateRabbitMq, PrivateRedis};
use pushfleet_config::CommonConfig;

/// Which Postgres, RabbitMQ and Redis a test's fleet uses: the shared servers that
/// `infra/up.sh` started (`DATABASE_URL`, `AMQP_URL`, `REDIS_URL`), or private ones the test
/// may restart, e.g. `Servers::shared().with_rabbitmq(&rabbit)`.
#[derive(Debug, Clone)]
pub struct Servers {
    /// A superuser URL on the Postgres server; test databases are created beside it.
    pub postgres_url: String,
    /// A private, empty cluster: the test database is migrated directly instead of cloned
    /// from the shared template.
    pub private_postgres: bool,
    pub amqp_url: String,
    pub redis_url: String,
}

impl Servers {
    pub fn shared() -> Self {
        let var = |name: &str, default: &str| std::env::var(name).unwrap_or(default.to_owned());
        Self {
            postgres_url: var("DATABASE_URL", CommonConfig::DEFAULT_DATABASE_URL),
            private_postgres: false,
            amqp_url: var("AMQP_URL", CommonConfig::DEFAULT_AMQP_URL),
            redis_url: var("REDIS_URL", CommonConfig::DEFAULT_REDIS_URL),
        }
    }

    pub fn with_postgres(self, pg: &PrivatePostgres) -> Self {
        Self {
            postgres_url: pg.url("postgres"),
            private_postgres: true,
            ..self
        }
    }

    pub fn with_rabbitmq(self, rabbit: &PrivateRabbitMq) -> Self {
        Self {
            amqp_url: rabbit.url(),
            ..self
        }
    }

    pub fn with_redis(self, redis: &PrivateRedis) -> Self {
        Self {
            redis_url: redis.url(),
            ..self
        }
    }
}
