//! The spec and site-config files as written (snake_case keys, unknown keys refused), and
//! their conversion into the typed records.

use std::fmt;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::model as m;

/// A value users may write as a string, a number or a boolean, kept as the text they meant:
/// `30` → `"30"`, `30.0` → `"30.0"` (so the rules can refuse it by name), `0.5` → `"0.5"`.
#[derive(Debug, Clone, PartialEq)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                // Keep the decimal point of whole floats: `30.0` must not pass as `30`.
                if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
                    Ok(Scalar(format!("{v:.1}")))
                } else {
                    Ok(Scalar(v.to_string()))
                }
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SpecFile {
    component_name: String,
    image: String,
    #[serde(default = "one")]
    replicas: u32,
    #[serde(default)]
    always_pull: bool,
    #[serde(default)]
    ports: Vec<Scalar>,
    #[serde(default)]
    env: IndexMap<String, Scalar>,
    #[serde(default)]
    volumes: Vec<VolumeFile>,
    #[serde(default)]
    labels: IndexMap<String, Scalar>,
    readiness: Option<ReadinessFile>,
    #[serde(alias = "resource_config")]
    resources: Option<ResourcesFile>,
    log_info: Option<LogInfoFile>,
    tls_info: Option<TlsInfoFile>,
    #[serde(default)]
    msb_list: Vec<MsbFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VolumeFile {
    host: HostPath,
    container: ContainerPath,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostPath {
    path: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainerPath {
    bind: String,
    mode: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadinessFile {
    #[serde(rename = "type")]
    kind: String,
    endpoint: Option<String>,
    script: Option<String>,
    interval: Option<Scalar>,
    timeout: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourcesFile {
    limits: Option<AmountsFile>,
    requests: Option<AmountsFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AmountsFile {
    cpu: Option<Scalar>,
    memory: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogInfoFile {
    log_directory: Option<String>,
    alternate_fb_path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsInfoFile {
    #[serde(default)]
    use_tls: bool,
    cert_directory: Option<String>,
}

/// An MSB entry; the keys are those of the annotation, plus the plugin's input spellings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MsbFile {
    #[serde(rename = "serviceName")]
    service_name: Option<String>,
    port: Option<Scalar>,
    version: Option<Scalar>,
    #[serde(alias = "url_path")]
    url: Option<String>,
    protocol: Option<String>,
    #[serde(alias = "uses_ssl")]
    enable_ssl: Option<bool>,
    #[serde(rename = "visualRange")]
    visual_range: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SiteFile {
    #[serde(default)]
    image_pull_secrets: Vec<String>,
    filebeat: Option<FilebeatFile>,
    tls: Option<TlsFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilebeatFile {
    log_path: String,
    data_path: String,
    config_path: String,
    config_subpath: String,
    config_map: String,
    image: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert_path: String,
    image: String,
}

fn text(s: Option<Scalar>) -> Option<String> {
    s.map(|Scalar(s)| s)
}

fn pairs(map: IndexMap<String, Scalar>) -> Vec<(String, String)> {
    map.into_iter().map(|(k, Scalar(v))| (k, v)).collect()
}

fn amounts(a: AmountsFile) -> m::ResourceAmounts {
    m::ResourceAmounts {
        cpu: text(a.cpu),
        memory: text(a.memory),
    }
}

impl From<SpecFile> for m::Spec {
    fn from(s: SpecFile) -> Self {
        m::Spec {
            component_name: s.component_name,
            image: s.image,
            replicas: s.replicas,
            always_pull: s.always_pull,
            ports: s.ports.into_iter().map(|Scalar(p)| p).collect(),
            env: pairs(s.env),
            volumes: s
                .volumes
                .into_iter()
                .map(|v| m::Volume {
                    host_path: v.host.path,
                    container_path: v.container.bind,
                    mode: v.container.mode,
                })
                .collect(),
            labels: pairs(s.labels),
            readiness: s.readiness.map(|r| m::Readiness {
                kind: r.kind,
                endpoint: r.endpoint,
                script: r.script,
                interval: text(r.interval),
                timeout: text(r.timeout),
            }),
            resources: s.resources.map(|r| m::Resources {
                limits: r.limits.map(amounts),
                requests: r.requests.map(amounts),
            }),
            log_info: s.log_info.map(|l| m::LogInfo {
                log_directory: l.log_directory,
                alternate_fb_path: l.alternate_fb_path,
            }),
            tls_info: s.tls_info.map(|t| m::TlsInfo {
                use_tls: t.use_tls,
                cert_directory: t.cert_directory,
            }),
            msb_list: s
                .msb_list
                .into_iter()
                .map(|m| m::MsbService {
                    service_name: m.service_name,
                    port: text(m.port),
                    version: text(m.version),
                    url: m.url,
                    protocol: m.protocol,
                    enable_ssl: m.enable_ssl,
                    visual_range: text(m.visual_range),
                })
                .collect(),
        }
    }
}

impl From<SiteFile> for m::SiteConfig {
    fn from(s: SiteFile) -> Self {
        m::SiteConfig {
            image_pull_secrets: s.image_pull_secrets,
            filebeat: s.filebeat.map(|f| m::Filebeat {
                log_path: f.log_path,
                data_path: f.data_path,
                config_path: f.config_path,
                config_subpath: f.config_subpath,
                config_map: f.config_map,
                image: f.image,
            }),
            tls: s.tls.map(|t| m::Tls {
                cert_path: t.cert_path,
                image: t.image,
            }),
        }
    }
}
