//! Who fetches links on a recipient's behalf: mail security gateways follow every link of a
//! message as it arrives (Microsoft Defender Safe Links, Proofpoint, Mimecast, Barracuda),
//! often from data-centre clients whose user agents say so. Their clicks are counted apart.

/// Lowercase parts of user agents that only machines send.
const SCANNER_AGENTS: [&str; 17] = [
    "bot",
    "crawler",
    "spider",
    "safelinks",
    "proofpoint",
    "mimecast",
    "barracuda",
    "trendmicro",
    "forcepoint",
    "urldefense",
    "headlesschrome",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "curl/",
    "wget/",
    "java/",
];

/// Why a click's user agent marks it as a scanner's, if it does. No user agent at all is a
/// machine's too: every browser sends one.
pub fn scanner_user_agent(user_agent: Option<&str>) -> Option<&'static str> {
    let Some(agent) = user_agent.map(str::trim).filter(|a| !a.is_empty()) else {
        return Some("no user agent");
    };
    let agent = agent.to_ascii_lowercase();
    SCANNER_AGENTS
        .iter()
        .any(|s| agent.contains(s))
        .then_some("a link scanner's user agent")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_pass_and_scanners_do_not() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(scanner_user_agent(Some(firefox)), None);
        assert!(
            scanner_user_agent(Some("Mozilla/5.0 (compatible; Proofpoint URL Defense)")).is_some()
        );
        assert!(scanner_user_agent(Some("python-requests/2.31")).is_some());
        assert!(scanner_user_agent(None).is_some());
        assert!(scanner_user_agent(Some("  ")).is_some());
    }
}
