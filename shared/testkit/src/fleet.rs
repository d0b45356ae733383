use crate::{Servers, TestEnv};
use pushfleet_api::identity::{OidcConfig, Role};
use pushfleet_api::{ApiConfig, BotAuthConfig};
use pushfleet_config::Secret;
use pushfleet_domain::{Channel, PhoneNumber};
use pushfleet_email_sender::EmailConfig;
use pushfleet_evaluator::EvaluatorConfig;
use pushfleet_loadtest::simulator::{self, identity_provider, SimConfig, SimHandle};
use pushfleet_ratelimit::Quota;
use pushfleet_scheduler::SchedulerConfig;
use pushfleet_sender::{LinkTracking, RetryPolicy, SenderConfig};
use pushfleet_sms_sender::SmsConfig;
use pushfleet_teams_sender::TeamsConfig;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The Twilio auth token shared by the simulator (its default), the sms-sender and the api.
pub const TWILIO_AUTH_TOKEN: &str = "sim-token";
pub const TWILIO_STATUS_PATH: &str = "/v1/webhooks/twilio/status";
/// Signs e-mail unsubscribe links (email-sender) and verifies them (api).
pub const UNSUBSCRIBE_SECRET: &str = "test-unsubscribe-secret";
/// Seals tracked links and open pixels (senders) and opens them (api).
pub const TRACKING_SECRET: &str = "test-tracking-secret";
/// The bot's app id: the audience of the Bot Framework tokens the simulator signs.
pub const TEAMS_APP_ID: &str = "test-app";
/// Segment uploads larger than this are refused by the test api (413).
pub const SEGMENT_UPLOAD_MAX_BYTES: usize = 256 * 1024;
/// Send jobs per message in tests: small, so that campaigns of tens of recipients already
/// travel as several batches and a partial last one.
pub const SEND_JOBS_PER_MESSAGE: usize = 10;

/// The six services of the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Api,
    Scheduler,
    Evaluator,
    EmailSender,
    TeamsSender,
    SmsSender,
}

impl Service {
    pub const ALL: [Service; 6] = [
        Service::Api,
        Service::Scheduler,
        Service::Evaluator,
        Service::EmailSender,
        Service::TeamsSender,
        Service::SmsSender,
    ];

    pub fn sender(channel: Channel) -> Service {
        match channel {
            Channel::Email => Service::EmailSender,
            Channel::Teams => Service::TeamsSender,
            Channel::Sms => Service::SmsSender,
        }
    }
}

/// What tests may change about the senders they start.
#[derive(Debug, Clone)]
pub struct SenderTuning {
    pub quota: Option<Quota>,
    /// `RATE_LIMIT_FALLBACK_SHARE`: the part of the quota used while Redis is down.
    pub fallback_share: f64,
    pub retry: RetryPolicy,
    pub concurrency: usize,
    /// `SENDER_PROVIDER_CONCURRENCY`.
    pub provider_concurrency: usize,
}

impl Default for SenderTuning {
    fn default() -> Self {
        Self {
            quota: None,
            fallback_share: 0.25,
            retry: RetryPolicy {
                max_attempts: 3,
                base_backoff: Duration::from_millis(500),
            },
            concurrency: 16,
            provider_concurrency: 16,
        }
    }
}

struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

/// The whole fleet in one test process, on this test's private environment, with the
/// provider simulator in front of it.
pub struct TestApp {
    pub env: TestEnv,
    pub sim: SimHandle,
    pub api_url: String,
    /// Sends an admin API key with every request (`api_key`); `anonymous()` sends none.
    pub http: reqwest::Client,
    /// The admin key `http` sends, for requests a test builds by hand.
    pub api_key: String,
    /// The api's public listener (webhooks and links alone).
    pub public_api_url: String,
    /// Applied to every sender started after it is changed.
    pub sender_tuning: SenderTuning,
    /// `PEOPLE_IMPORT_MAX_BYTES` of the api, applied when it (re)starts.
    pub import_max_bytes: u64,
    /// `IMPORT_CONCURRENCY` of the api, applied when it (re)starts.
    pub import_concurrency: usize,
    /// `API_BODY_READ_TIMEOUT_MS` of the api, applied when it (re)starts.
    pub body_read_timeout: Duration,
    /// `SEND_JOBS_PER_MESSAGE` of the evaluator and the scheduler started after it is changed.
    pub send_jobs_per_message: usize,
    sim_shutdown: CancellationToken,
    /// Running services by (service, replica index).
    running: HashMap<(Service, usize), Running>,
}

impl TestApp {
    /// Every service running.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&Service::ALL).await
    }

    /// Only the given services running (the API always is); start others with `start`.
    pub async fn spawn_with(services: &[Service]) -> TestApp {
        Self::spawn_with_sim(services, SimConfig::ephemeral()).await
    }

    pub async fn spawn_with_sim(services: &[Service], sim_config: SimConfig) -> TestApp {
        Self::spawn_on(&Servers::shared(), services, sim_config).await
    }

    /// The fleet on the given servers, e.g. private ones that the test restarts.
    pub async fn spawn_on(
        servers: &Servers,
        services: &[Service],
        sim_config: SimConfig,
    ) -> TestApp {
        let env = TestEnv::with_servers(servers).await;
        Self::spawn_in(env, services, sim_config).await
    }

    /// The fleet on an environment the test prepared first (e.g. a broker with queues of
    /// an earlier release in its namespace).
    pub async fn spawn_in(env: TestEnv, services: &[Service], sim_config: SimConfig) -> TestApp {
        let sim_shutdown = CancellationToken::new();
        let sim = simulator::start(sim_config, sim_shutdown.clone())
            .await
            .expect("start the provider simulator");
        let api_key = api_key_for(&env, Role::Admin, "test admin", None).await;
        let mut app = TestApp {
            env,
            sim,
            api_url: String::new(),
            http: client_with_key(&api_key),
            api_key,
            public_api_url: String::new(),
            sender_tuning: SenderTuning::default(),
            import_max_bytes: 64 * 1024 * 1024,
            import_concurrency: 2,
            body_read_timeout: Duration::from_secs(30),
            send_jobs_per_message: SEND_JOBS_PER_MESSAGE,
            sim_shutdown,
            running: HashMap::new(),
        };
        app.start_api().await;
        for s in services {
            if *s != Service::Api {
                app.start(*s).await;
            }
        }
        app
    }

    async fn start_api(&mut self) {
        // Bound first: the public URL (what webhook signatures cover) is the port we got.
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind the api port");
        let addr = listener.local_addr().expect("api address");
        self.api_url = format!("http://{addr}");
        let cfg = ApiConfig {
            common: self.env.common(),
            http_addr: addr,
            public_http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_body_bytes: 1024 * 1024,
            public_url: self.api_url.clone(),
            twilio_auth_token: Secret::new(TWILIO_AUTH_TOKEN.into()),
            segment_upload_max_bytes: SEGMENT_UPLOAD_MAX_BYTES,
            unsubscribe_secret: Secret::new(UNSUBSCRIBE_SECRET.into()),
            tracking_secret: Secret::new(TRACKING_SECRET.into()),
            bot_auth: BotAuthConfig {
                app_id: TEAMS_APP_ID.into(),
                openid_metadata_url: self.sim.bot_openid_metadata_url(),
                issuer: BotAuthConfig::DEFAULT_ISSUER.into(),
            },
            oidc: Some(OidcConfig {
                issuer: self.sim.oidc_issuer(),
                audience: identity_provider::IDP_AUDIENCE.into(),
                jwks_url: None,
                roles_claim: "roles".into(),
                labels_claim: "pushfleet_labels".into(),
                role_values: pushfleet_api::identity::oidc::role_values("")
                    .expect("the default role values"),
            }),
            import_max_bytes: self.import_max_bytes,
            import_concurrency: self.import_concurrency,
            body_read_timeout: self.body_read_timeout,
        };
        let shutdown = CancellationToken::new();
        let running = pushfleet_api::serve_on(listener, cfg, shutdown.clone())
            .await
            .expect("start the api");
        self.public_api_url = format!("http://{}", running.public_addr);
        let api_task = running.task;
        let task = tokio::spawn(async move {
            api_task.await?;
            Ok(())
        });
        self.running
            .insert((Service::Api, 0), Running { shutdown, task });
    }

    /// Sender settings for tests: small batches, quick retries, and `sender_tuning`.
    pub fn sender_config(&self, channel: Channel) -> SenderConfig {
        SenderConfig {
            common: self.env.common(),
            prefetch: 50,
            concurrency: self.sender_tuning.concurrency,
            provider_concurrency: self.sender_tuning.provider_concurrency,
            quota: self.sender_tuning.quota,
            rate_limit_key: format!("{channel}:test"),
            fallback_share: self.sender_tuning.fallback_share,
            retry: self.sender_tuning.retry,
            outcome_batch: 100,
            outcome_flush: Duration::from_millis(10),
            opt_out_horizon: Duration::from_secs(168 * 3600),
            // Recipients follow links to the public listener, as behind an Ingress.
            tracking: Some(LinkTracking::new(&self.public_api_url, TRACKING_SECRET)),
        }
    }

    pub fn email_config(&self) -> EmailConfig {
        EmailConfig {
            smtp_host: "127.0.0.1".into(),
            smtp_port: self.sim.smtp_addr.port(),
            smtp_pool_size: 4,
            from: "Pushfleet <noreply@pushfleet.test>".into(),
            unsubscribe_base_url: self.api_url.clone(),
            unsubscribe_secret: Some(Secret::new(UNSUBSCRIBE_SECRET.into())),
            ..EmailConfig::defaults(self.sender_config(Channel::Email))
        }
    }

    pub fn teams_config(&self) -> TeamsConfig {
        TeamsConfig {
            sender: self.sender_config(Channel::Teams),
            app_id: TEAMS_APP_ID.into(),
            app_password: Secret::new("test-secret".into()),
            token_url: format!("{}/botframework.com/oauth2/v2.0/token", self.sim.base_url()),
            scope: "https://api.botframework.com/.default".into(),
            graph_base: self.sim.base_url(),
            graph_token_url: format!("{}/botframework.com/oauth2/v2.0/token", self.sim.base_url()),
            graph_scope: "https://graph.microsoft.com/.default".into(),
        }
    }

    pub fn sms_config(&self) -> SmsConfig {
        SmsConfig {
            sender: self.sender_config(Channel::Sms),
            api_base: self.sim.base_url(),
            account_sid: "ACsim".into(),
            auth_token: Secret::new(TWILIO_AUTH_TOKEN.into()),
            from: PhoneNumber::parse("+15005550006").ok(),
            messaging_service_sid: None,
            status_callback: Some(self.twilio_status_url()),
        }
    }

    /// Where Twilio (the simulator) posts status callbacks: this test's api.
    pub fn twilio_status_url(&self) -> String {
        format!("{}{TWILIO_STATUS_PATH}", self.api_url)
    }

    /// A new API key with `role`.
    pub async fn api_key_with(&self, role: Role) -> String {
        api_key_for(&self.env, role, role.as_str(), None).await
    }

    /// A new API key with `role`, limited to `labels`.
    pub async fn api_key_limited(&self, role: Role, labels: &[&str]) -> String {
        let labels: Vec<String> = labels.iter().map(|l| (*l).to_owned()).collect();
        api_key_for(&self.env, role, role.as_str(), Some(&labels)).await
    }

    /// A token from the simulated identity provider for operator `subject` with these
    /// roles (claim values) and, when given, permission labels; valid for an hour.
    pub fn operator_token(&self, subject: &str, roles: &[&str], labels: Option<&[&str]>) -> String {
        let claims = identity_provider::operator_claims(
            &self.sim.oidc_issuer(),
            subject,
            roles,
            labels,
            3600,
        );
        identity_provider::sign_operator_token(&claims).expect("sign an operator token")
    }

    /// A client that sends `key` with every request (`None`: no credential).
    pub fn client(key: Option<&str>) -> reqwest::Client {
        match key {
            Some(k) => client_with_key(k),
            None => reqwest::Client::new(),
        }
    }

    /// Restarts the API with the current settings (e.g. a changed `import_max_bytes`).
    pub async fn restart_api(&mut self) {
        self.stop(Service::Api).await;
        self.start_api().await;
    }

    /// Starts one service (not the API) in this process.
    pub async fn start(&mut self, service: Service) {
        self.start_replica(service, 0).await
    }

    /// Starts replica `index` of a service; replicas share the environment, as pods do.
    pub async fn start_replica(&mut self, service: Service, index: usize) {
        assert!(
            !self.running.contains_key(&(service, index)),
            "{service:?} #{index} already runs"
        );
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let common = self.env.common();
        let task = match service {
            Service::Api => panic!("the api starts with the app"),
            Service::Scheduler => {
                let cfg = SchedulerConfig {
                    common,
                    tick: Duration::from_millis(50),
                    batch: 100,
                    send_jobs_per_message: self.send_jobs_per_message,
                };
                tokio::spawn(pushfleet_scheduler::run(cfg, token))
            }
            Service::Evaluator => {
                let cfg = EvaluatorConfig {
                    common,
                    concurrency: 2,
                    publish_batch: 500,
                    confirm_window: 128,
                    send_jobs_per_message: self.send_jobs_per_message,
                    max_attempts: 3,
                    retry_pause: Duration::from_millis(100),
                };
                tokio::spawn(pushfleet_evaluator::run(cfg, token))
            }
            Service::EmailSender => {
                tokio::spawn(pushfleet_email_sender::run(self.email_config(), token))
            }
            Service::TeamsSender => {
                tokio::spawn(pushfleet_teams_sender::run(self.teams_config(), token))
            }
            Service::SmsSender => tokio::spawn(pushfleet_sms_sender::run(self.sms_config(), token)),
        };
        self.running
            .insert((service, index), Running { shutdown, task });
    }

    /// Stops one service the way SIGTERM does, and waits until it has finished.
    pub async fn stop(&mut self, service: Service) {
        self.stop_replica(service, 0).await
    }

    pub async fn stop_replica(&mut self, service: Service, index: usize) {
        if let Some(r) = self.running.remove(&(service, index)) {
            r.shutdown.cancel();
            match r.task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("{service:?} stopped with an error: {e:#}"),
                Err(e) => panic!("{service:?} panicked: {e}"),
            }
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.api_url))
            .json(body)
            .send()
            .await
            .expect("POST to the api");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .patch(format!("{}{path}", self.api_url))
            .json(body)
            .send()
            .await
            .expect("PATCH to the api");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.api_url))
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("POST to the api");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.api_url))
            .send()
            .await
            .expect("GET from the api");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `n` people reachable on every channel: person{i}@example.org, +1555{i:07}, and a
    /// Teams conversation on the simulator.
    pub fn demo_people(&self, n: usize) -> Value {
        let people: Vec<Value> = (0..n)
            .map(|i| {
                json!({
                    "email": format!("person{i}@example.org"),
                    "first_name": format!("First{i}"),
                    "last_name": format!("Last{i}"),
                    "phone": format!("+1555{i:07}"),
                    "teams": {
                        "service_url": format!("{}/", self.sim.base_url()),
                        "conversation_id": format!("a:conv-{i}"),
                        "user_id": format!("user-{i}"),
                    },
                })
            })
            .collect();
        json!({ "people": people })
    }

    /// People, an audience of them, a personalised template and a campaign starting now,
    /// all through the API. Returns the campaign id.
    pub async fn create_campaign(&self, n: usize, channels: &[Channel]) -> Uuid {
        let (audience, template) = self.create_audience_and_template(n).await;
        self.create_campaign_from(audience, template, channels)
            .await
    }

    /// `n` demo people in an audience, and a personalised template.
    pub async fn create_audience_and_template(&self, n: usize) -> (Value, Value) {
        let (status, created) = self.post("/v1/people", &self.demo_people(n)).await;
        assert_eq!(status, 201, "create people: {created}");
        let (status, audience) = self
            .post(
                "/v1/audiences",
                &json!({"name": "everyone", "person_ids": created["ids"]}),
            )
            .await;
        assert_eq!(status, 201, "create audience: {audience}");
        let (status, template) = self
            .post(
                "/v1/templates",
                &json!({
                    "name": "welcome",
                    "subject": "Welcome, {{first_name}}",
                    "body": "Hello {{first_name}} {{last_name}}, welcome aboard.",
                    "html": "<p>Hello <b>{{full_name}}</b></p>",
                }),
            )
            .await;
        assert_eq!(status, 201, "create template: {template}");
        (audience["id"].clone(), template["id"].clone())
    }

    /// A campaign starting now for an existing audience and template.
    pub async fn create_campaign_from(
        &self,
        audience_id: Value,
        template_id: Value,
        channels: &[Channel],
    ) -> Uuid {
        let channels: Vec<&str> = channels.iter().map(|c| c.as_str()).collect();
        let (status, campaign) = self
            .post(
                "/v1/campaigns",
                &json!({
                    "name": "welcome campaign",
                    "audience_id": audience_id,
                    "template_id": template_id,
                    "channels": channels,
                }),
            )
            .await;
        assert_eq!(status, 201, "create campaign: {campaign}");
        campaign["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("campaign id")
    }

    /// Waits until the campaign reports `completed`, and returns its view. On timeout the
    /// panic shows the last view, i.e. where the campaign got stuck.
    pub async fn wait_for_completion(&self, campaign: Uuid, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (status, view) = self.get(&format!("/v1/campaigns/{campaign}")).await;
            if status == 200 && view["status"] == "completed" {
                return view;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("campaign {campaign} not completed after {timeout:?}; last view: {view}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops everything, the simulator last.
    pub async fn shutdown(mut self) {
        let services: Vec<(Service, usize)> = self.running.keys().copied().collect();
        for (s, i) in services {
            self.stop_replica(s, i).await;
        }
        self.sim_shutdown.cancel();
    }
}

/// A key stored directly, as `pushfleet-api api-key create` would.
async fn api_key_for(env: &TestEnv, role: Role, name: &str, labels: Option<&[String]>) -> String {
    let key = pushfleet_api::identity::api_key::generate();
    env.store
        .create_api_key(&pushfleet_store::NewApiKey {
            name,
            prefix: &key.prefix,
            secret_hash: &key.hash,
            role: role.as_str(),
            labels,
            expires_at: None,
            created_by: None,
        })
        .await
        .expect("create an API key");
    key.secret
}

fn client_with_key(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
        .expect("a key is a valid header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("an HTTP client")
}
