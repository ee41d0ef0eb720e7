//! The MSB (service bus) registration annotation of the ClusterIP Service.

use serde::Serialize;

use crate::component::types::MsbService;

/// Annotation key that the MSB watcher reads.
pub const ANNOTATION: &str = "msb.onap.org/service-info";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    service_name: &'a str,
    port: &'a str,
    version: &'a str,
    url: &'a str,
    protocol: &'a str,
    #[serde(rename = "enable_ssl")]
    enable_ssl: bool,
    visual_range: &'a str,
}

/// The annotation value: a JSON array with one entry per registration, defaults filled in.
/// A missing service name becomes the component name, so the output stays deterministic.
pub fn annotation(component: &str, list: &[MsbService]) -> String {
    let entries: Vec<Entry<'_>> = list
        .iter()
        .map(|s| Entry {
            service_name: s.service_name.as_deref().unwrap_or(component),
            port: s.port.as_deref().unwrap_or("80"),
            version: s.version.as_deref().unwrap_or("v1"),
            url: s.url.as_deref().unwrap_or("/"),
            protocol: s.protocol.as_deref().unwrap_or("REST"),
            enable_ssl: s.enable_ssl.unwrap_or(false),
            visual_range: s.visual_range.as_deref().unwrap_or("1"),
        })
        .collect();
    // Serializing plain strings and bools cannot fail.
    serde_json::to_string(&entries).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_given_values() {
        let empty = MsbService {
            service_name: None,
            port: None,
            version: None,
            url: None,
            protocol: None,
            enable_ssl: None,
            visual_range: None,
        };
        let full = MsbService {
            service_name: Some("inventory".into()),
            port: Some("8443".into()),
            version: Some("v2".into()),
            url: Some("/api".into()),
            protocol: Some("HTTP".into()),
            enable_ssl: Some(true),
            visual_range: Some("0".into()),
        };
        assert_eq!(
            annotation("web", &[empty, full]),
            concat!(
                r#"[{"serviceName":"web","port":"80","version":"v1","url":"/","protocol":"REST","enable_ssl":false,"visualRange":"1"},"#,
                r#"{"serviceName":"inventory","port":"8443","version":"v2","url":"/api","protocol":"HTTP","enable_ssl":true,"visualRange":"0"}]"#
            )
        );
    }
}
