//! A small version of the load test: the load generator's campaign run, audit, RabbitMQ
//! ceiling and report against the fleet in-process. No timing is asserted, only that the
//! audit is exact and the report has its shape.

use std::time::Duration;

use pushfleet_domain::Channel;
use pushfleet_loadtest::loadgen::ceiling::{measure, sample_send_message};
use pushfleet_loadtest::loadgen::report::machine_summary;
use pushfleet_loadtest::loadgen::{
    run_campaign, ApiClient, CampaignSpec, CeilingSpec, Report, Target,
};
use pushfleet_testkit::{TestApp, SEND_JOBS_PER_MESSAGE};

const RECIPIENTS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_small_load_test_audits_clean_and_reports_every_figure() {
    let app = TestApp::spawn().await;
    let api = ApiClient::new(app.api_url.clone(), &app.api_key).expect("api client");
    let sim_url = app.sim.base_url();
    let people = api
        .create_people(RECIPIENTS, "suite", &sim_url, |_| {})
        .await
        .expect("create people");
    let db = sqlx::PgPool::connect(&app.env.database_url)
        .await
        .expect("connect to the test database");
    let target = Target {
        api: api.clone(),
        sim_url,
        db,
        processes: vec![(
            "in-process fleet".to_owned(),
            "fleet".to_owned(),
            std::process::id(),
        )],
        template_id: api.create_template().await.expect("template"),
        stall_timeout: Duration::from_secs(60),
    };
    let spec = CampaignSpec {
        label: "small".to_owned(),
        person_ids: people,
        channels: Channel::ALL.to_vec(),
        replicas: 1,
        spread: None,
    };
    let run = run_campaign(&target, &spec).await.expect("campaign run");

    let audit = run.analysis.audit;
    assert_eq!(audit.expected, 3 * RECIPIENTS as u64);
    assert_eq!(audit.delivered, audit.expected, "{audit:?}");
    assert_eq!(
        (
            audit.failed,
            audit.duplicates,
            audit.missing,
            audit.unrecorded
        ),
        (0, 0, 0, 0),
        "{audit:?}"
    );
    assert!(audit.is_clean());
    let received: u64 = run.analysis.per_second.iter().map(|(_, n)| n).sum();
    assert_eq!(
        received, audit.delivered,
        "every delivery is in the time series"
    );
    let l = run.analysis.latency;
    assert!(
        l.p50_ms <= l.p95_ms && l.p95_ms <= l.p99_ms && l.p99_ms <= l.max_ms,
        "{l:?}"
    );
    assert_eq!(run.processes.len(), 1);
    assert!(run.processes[0].peak_rss_mib > 0.0);

    let ceiling = measure(&CeilingSpec {
        amqp_url: app.env.amqp_url.clone(),
        namespace: app.env.namespace.clone(),
        queues: 3,
        // The run's 3,000 jobs, in the messages the in-process fleet publishes.
        messages: 3_000 / SEND_JOBS_PER_MESSAGE,
        payload: sample_send_message(SEND_JOBS_PER_MESSAGE).expect("sample message"),
        jobs_per_message: SEND_JOBS_PER_MESSAGE,
        confirm_window: 256,
        prefetch: 64,
    })
    .await
    .expect("ceiling");
    assert_eq!(ceiling.messages, 300);
    assert_eq!(ceiling.jobs_per_second(), ceiling.per_second * 10.0);
    assert!(ceiling.per_second > 0.0);

    let report = Report {
        command: "cargo test -p pushfleet-testkit --test loadgen".to_owned(),
        machine: machine_summary(),
        settings: vec!["in-process fleet".to_owned()],
        ceiling: Some(ceiling),
        main: run.clone(),
        paced: None,
        scaling: vec![run],
        plot_file: Some("loadtest-rate.svg".to_owned()),
    };
    assert!(report.is_clean());
    let md = report.to_markdown();
    for needle in [
        "## Load test",
        "### Full rate: 1,000 recipients x email, teams, sms (3,000 deliveries)",
        "| wall time, campaign created to completed |",
        "| deliveries/s, sustained |",
        "| RabbitMQ ceiling: 300 messages of ",
        " bytes (10 send job(s) each) over 3 queue(s), persistent, confirms, manual acks | ",
        "| fleet / ceiling (deliveries/s / jobs/s) |",
        "| due to receipt, p50 / p95 / p99 / max |",
        "| audit | expected 3,000, delivered 3,000, failed 0, duplicates 0, missing 0 |",
        "| in-process fleet |",
        "Servers' CPU over the same time (all their processes",
        "### Scaling: 1,000 recipients",
        "![deliveries per second over time](loadtest-rate.svg)",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    let svg = report.plot_svg();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    app.shutdown().await;
}
