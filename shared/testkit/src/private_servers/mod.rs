//! Servers of one test's own, for fault tests that stop, kill and restart them: doing that
//! to the shared servers would break every other test running at the same time. Each runs
//! on free loopback ports with its data in a scratch dir, so `stop` or `kill` then `start`
//! brings the same server back with its data; dropping one kills it and removes the dir.

mod free_port;
mod private_postgres;
mod private_rabbitmq;
mod private_redis;
mod scratch_dir;
mod server_process;

pub use private_postgres::PrivatePostgres;
pub use private_rabbitmq::PrivateRabbitMq;
pub use private_redis::PrivateRedis;
