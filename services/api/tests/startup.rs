//! Development defaults stay in development: outside `PUSHFLEET_ENV=development` the api
//! refuses to start while its database or any secret it checks webhooks and links with is
//! unset or still has its public development value, and names every one.

use std::process::Command;

fn api(envs: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pushfleet-api"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("API_ADDR", "127.0.0.1:0")
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .envs(envs.iter().copied())
        .output()
        .expect("run the api binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn outside_development_the_api_names_every_development_default_and_stops() {
    // The public Twilio token is set explicitly: a development value set by hand is refused too.
    let (ok, text) = api(&[("TWILIO_AUTH_TOKEN", "sim-token")]);
    assert!(!ok, "refused: {text}");
    for name in [
        "DATABASE_URL",
        "TWILIO_AUTH_TOKEN",
        "UNSUBSCRIBE_SECRET",
        "TEAMS_APP_ID",
    ] {
        assert!(text.contains(name), "names {name}: {text}");
    }
    assert!(!text.contains("sim-token"), "never prints a secret: {text}");
}

#[test]
fn migrations_need_only_the_database() {
    let (ok, text) = api(&[("PUSHFLEET_ENV", "production")]);
    assert!(!ok);
    let line = text
        .lines()
        .find(|l| l.contains("refusing"))
        .unwrap_or_default();
    assert!(line.contains("DATABASE_URL"), "{text}");
    let (ok, text) = {
        let out = Command::new(env!("CARGO_BIN_EXE_pushfleet-api"))
            .arg("migrate")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .expect("run the api binary");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(!ok);
    assert!(text.contains("DATABASE_URL"), "{text}");
    assert!(
        !text.contains("TWILIO_AUTH_TOKEN"),
        "migrate needs no webhook secret: {text}"
    );
}

#[test]
fn an_identity_provider_without_an_audience_is_refused() {
    // Development mode, so that only the OIDC setting is at fault.
    let (ok, text) = api(&[
        ("PUSHFLEET_ENV", "development"),
        ("OIDC_ISSUER", "https://login.example.org/tenant/v2.0"),
    ]);
    assert!(!ok, "refused: {text}");
    assert!(text.contains("OIDC_AUDIENCE"), "names it: {text}");
    let (ok, text) = api(&[
        ("PUSHFLEET_ENV", "development"),
        ("OIDC_ISSUER", "https://login.example.org/tenant/v2.0"),
        ("OIDC_AUDIENCE", "pushfleet"),
        ("OIDC_ROLE_VALUES", "root=Everything"),
    ]);
    assert!(!ok, "refused: {text}");
    assert!(text.contains("OIDC_ROLE_VALUES"), "names it: {text}");
}
