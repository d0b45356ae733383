//! The real `pushfleet-teams-sender` binary killed with SIGKILL mid-campaign.

use pushfleet_domain::Channel;
use pushfleet_testkit::faults::kill_9_sender_mid_campaign;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_campaign_loses_nothing_and_repeats_at_most_the_jobs_in_flight() {
    kill_9_sender_mid_campaign(Channel::Teams, env!("CARGO_BIN_EXE_pushfleet-teams-sender")).await;
}
