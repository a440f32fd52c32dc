//! [`AgentConfig::validate_for_run`]: the checks that only matter when the agent is about to run. The page's
//! examples load with their `<PLACEHOLDERS>` (so `render` and the golden tests can use them verbatim), but `run`
//! must not try to reach `<CLEARML_API_SERVER_REFERENCE>` and report a DNS error instead of the real problem.

use super::{AgentConfig, ConfigError, Secret};

impl AgentConfig {
    /// Check that there are queues to serve, the URLs can be connected to and the credentials are not the
    /// documentation's placeholders. Reports every problem at once, each naming its key (or env var). Never shows
    /// a credential.
    pub fn validate_for_run(&self) -> Result<(), ConfigError> {
        let root = self.values_root;
        let api_origin = if self.api_server_url_from_env {
            "env CLEARML_API_HOST".to_owned()
        } else {
            format!("{root}.apiServerUrlReference")
        };
        let mut problems = Vec::new();
        if self.queues.is_empty() {
            let oss_queue = format!("{root}.queue");
            let hint = if self.ignored_keys.contains(&oss_queue) {
                " (the OSS chart's single `queue` key is not read)"
            } else {
                ""
            };
            problems.push(format!(
                "{root}.queues: no queues configured; list the ClearML queues to serve, e.g. \
                 `queues: {{default: {{templateOverrides: {{}}}}}}`{hint}"
            ));
        }
        problems.extend(url_problem(
            &api_origin,
            &self.api_server_url,
            "clearml-apiserver:8008",
        ));
        // Examples are the OSS chart's service names and ports, the likeliest right answer in-cluster.
        let optional_urls = [
            (
                "webServerUrlReference",
                &self.web_server_url,
                "clearml-webserver:8080",
            ),
            (
                "fileServerUrlReference",
                &self.file_server_url,
                "clearml-fileserver:8081",
            ),
        ];
        for (key, url, example) in optional_urls {
            if let Some(url) = url {
                problems.extend(url_problem(&format!("{root}.{key}"), url, example));
            }
        }
        let credentials = [
            (
                "the access key (clearml.agentk8sglueKey, controlPlane.apiKey or env CLEARML_API_ACCESS_KEY)",
                &self.credentials.access_key,
            ),
            (
                "the secret key (clearml.agentk8sglueSecret, controlPlane.apiSecret or env CLEARML_API_SECRET_KEY)",
                &self.credentials.secret_key,
            ),
        ];
        for (what, secret) in credentials {
            if is_placeholder_secret(secret) {
                problems.push(format!(
                    "{what} is still a placeholder from the documentation (`<...>`); set the credentials \
                     created in the ClearML UI (Settings > Workspace > App Credentials)"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::NotUsable { problems })
        }
    }
}

fn is_placeholder_secret(secret: &Secret) -> bool {
    let value = secret.expose().trim();
    value.starts_with('<') && value.ends_with('>')
}

/// Why `url` cannot be connected to, if it cannot; `example` (`host:port`) shows what a right one looks like. A
/// URL is not a secret, but a `user:password@` part would be, so that part is masked in the message.
fn url_problem(origin: &str, url: &str, example: &str) -> Option<String> {
    let shown = mask_userinfo(url);
    if url.contains('<') || url.contains('>') {
        return Some(format!(
            "{origin}: `{shown}` is a placeholder from the documentation; set the ClearML server's URL, \
             e.g. http://{example}"
        ));
    }
    let lower = url.to_ascii_lowercase();
    let Some(rest) = ["http://", "https://"]
        .iter()
        .find_map(|scheme| lower.strip_prefix(scheme).map(|_| &url[scheme.len()..]))
    else {
        return Some(format!(
            "{origin}: `{shown}` is not an http(s) URL; expected e.g. http://{example}"
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = split_port(host_port);
    if host.is_empty() || url.chars().any(char::is_whitespace) {
        return Some(format!("{origin}: `{shown}` has no usable host name"));
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Some(format!("{origin}: `{shown}` has an invalid port `{port}`"));
    }
    None
}

/// `host:port` → (`host`, Some(`port`)); IPv6 literals keep their brackets and colons.
fn split_port(host_port: &str) -> (&str, Option<&str>) {
    if let Some(end) = host_port.strip_prefix('[').and_then(|s| s.find(']')) {
        let (host, rest) = host_port.split_at(end + 2);
        return (host, rest.strip_prefix(':'));
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_port, None),
    }
}

fn mask_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[authority_end..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_urls_pass() {
        for url in [
            "http://clearml-apiserver:8008",
            "https://api.clear.ml",
            "HTTPS://api.example.com/base/",
            "http://[::1]:8008",
            "http://127.0.0.1:8008",
        ] {
            assert_eq!(url_problem("k", url, "h:1"), None, "{url}");
        }
    }

    #[test]
    fn unusable_urls_are_explained() {
        let problem = |url| url_problem("k", url, "h:1").unwrap();
        assert!(problem("<CLEARML_API_SERVER_REFERENCE>").contains("placeholder"));
        assert!(problem("clearml-apiserver:8008").contains("not an http(s) URL"));
        assert!(problem("http://").contains("no usable host"));
        assert!(problem("http://host:80800").contains("invalid port `80800`"));
        assert!(problem("http://host name:8008").contains("no usable host"));
    }

    #[test]
    fn a_password_in_a_url_is_never_shown() {
        let problem = url_problem("k", "http://user:hunter2@host:99999/x", "h:1").unwrap();
        assert!(!problem.contains("hunter2"), "{problem}");
        assert!(problem.contains("http://***@host:99999/x"), "{problem}");
    }
}
