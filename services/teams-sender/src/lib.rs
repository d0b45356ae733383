//! The Teams sender: the shared sender loop with a Bot Framework Connector client, and beside
//! it the bot's replies to button presses (`bot-replies`), on the same client and token.

mod bot_replies;
mod bot_token;
mod config;
mod connector_post;
mod connector_provider;
mod connector_reply;

pub use bot_replies::{BotReplies, ReplyOutcome, GIVE_UP_AFTER};
pub use bot_token::BotTokenSource;
pub use config::TeamsConfig;
pub use connector_provider::ConnectorProvider;
pub use connector_reply::ConnectorReplier;

use pushfleet_queue::connected_check;
use pushfleet_sender::run_sender_with_checks;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub async fn run(cfg: TeamsConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let provider = ConnectorProvider::new(&cfg)?;
    let replies = BotReplies::connect(&cfg, provider.replier()).await?;
    let replies_connected = Arc::new(AtomicBool::new(false));
    let checks = {
        let connected = replies_connected.clone();
        move |r: pushfleet_telemetry::Readiness| {
            r.with_check("rabbitmq-bot-replies", connected_check(connected))
        }
    };
    // The replies stop with the sender, also when it stops on an error.
    let replies_shutdown = shutdown.child_token();
    let sender = async {
        let sent = run_sender_with_checks(cfg.sender.clone(), provider, shutdown, checks).await;
        replies_shutdown.cancel();
        sent
    };
    let (sent, ()) = tokio::join!(
        sender,
        replies.run(&cfg, replies_shutdown.clone(), replies_connected),
    );
    sent
}
