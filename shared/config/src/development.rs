//! Development defaults stay in development. Every service reads its servers and secrets
//! with local defaults that match `infra/up.sh` and the simulator; outside development mode
//! (`PUSHFLEET_ENV=development`, which the `infra/` scripts and the tests set) a service
//! refuses to start while any of them is unset or still has its development value, and
//! names every one, rather than silently talking to localhost or accepting webhooks signed
//! with a public key.

use crate::ConfigError;

/// `PUSHFLEET_ENV`'s value for development.
pub const DEVELOPMENT: &str = "development";

pub fn development_mode() -> bool {
    std::env::var("PUSHFLEET_ENV").is_ok_and(|v| v.trim() == DEVELOPMENT)
}

/// Refuses, outside development mode, when any of `settings` (a variable and its
/// development default) is unset, empty, or set to that default.
pub fn refuse_development_defaults(settings: &[(&str, &str)]) -> Result<(), ConfigError> {
    if development_mode() {
        return Ok(());
    }
    let names: Vec<String> = settings
        .iter()
        .filter(|(name, dev_default)| match std::env::var(name) {
            Ok(v) => v.trim().is_empty() || v == *dev_default,
            Err(_) => true,
        })
        .map(|(name, _)| (*name).to_owned())
        .collect();
    if names.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::DevelopmentDefaults { names })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the process environment is shared by the tests of this binary.
    #[test]
    fn outside_development_every_unset_or_default_setting_is_named() {
        std::env::remove_var("PUSHFLEET_ENV");
        std::env::set_var("PF_TEST_SET", "real-value");
        std::env::set_var("PF_TEST_DEFAULT", "sim-token");
        std::env::remove_var("PF_TEST_UNSET");
        let settings = [
            ("PF_TEST_SET", "dev"),
            ("PF_TEST_DEFAULT", "sim-token"),
            ("PF_TEST_UNSET", "x"),
        ];
        match refuse_development_defaults(&settings) {
            Err(ConfigError::DevelopmentDefaults { names }) => {
                assert_eq!(names, ["PF_TEST_DEFAULT", "PF_TEST_UNSET"]);
            }
            other => panic!("{other:?}"),
        }
        std::env::set_var("PUSHFLEET_ENV", "development");
        assert!(refuse_development_defaults(&settings).is_ok());
        std::env::remove_var("PUSHFLEET_ENV");
    }
}
