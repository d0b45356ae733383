use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("unknown people: {0:?}")]
    UnknownPeople(Vec<Uuid>),
    #[error("conflict: {0}")]
    Conflict(String),
    /// A field the operation needs was not given (a draft sent without its message).
    #[error("{0} is required")]
    Missing(&'static str),
    /// A field's value does not fit the rest of the request (the caller's fault: a 422).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Maps a unique-constraint violation to `Conflict`, everything else unchanged.
    pub(crate) fn from_unique(e: sqlx::Error, what: &str) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return StoreError::Conflict(what.to_owned());
            }
        }
        StoreError::Database(e)
    }
}

impl StoreError {
    /// Whether trying again later may succeed: the server is unreachable, restarting, out of
    /// resources, or the transaction lost a race. Anything else (a constraint, bad data, a
    /// corrupt row) fails the same way every time: retrying it would loop forever.
    pub fn is_transient(&self) -> bool {
        let StoreError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                // 08: connection exception; 40: serialization failure, deadlock;
                // 53: insufficient resources; 57P0x: shutdown, restart, cannot connect now;
                // 58: system error (I/O).
                code.starts_with("08")
                    || code.starts_with("40")
                    || code.starts_with("53")
                    || code.starts_with("57P0")
                    || code.starts_with("58")
            }),
            _ => false,
        }
    }
}
