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
        deserializer.deserialize_any(ScalarVisitor)
    }
}

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
    env: IndexMap<String, EnvFile>,
    #[serde(default)]
    volumes: Vec<VolumeFile>,
    #[serde(default)]
    labels: IndexMap<String, Scalar>,
    readiness: Option<ProbeFile>,
    liveness: Option<ProbeFile>,
    command: Option<Vec<Scalar>>,
    args: Option<Vec<Scalar>>,
    #[serde(alias = "resource_config")]
    resources: Option<ResourcesFile>,
    log_info: Option<LogInfoFile>,
    tls_info: Option<TlsInfoFile>,
    #[serde(default)]
    msb_list: Vec<MsbFile>,
    #[serde(default)]
    extensions: serde_json::Map<String, serde_json::Value>,
}

/// A volume: a host path or a ConfigMap, mounted at `container.bind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, try_from = "VolumeKeys")]
struct VolumeFile {
    source: m::VolumeSource,
    container: ContainerPath,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VolumeKeys {
    host: Option<HostPath>,
    config_volume: Option<ConfigVolume>,
    container: ContainerPath,
}

impl TryFrom<VolumeKeys> for VolumeFile {
    type Error = &'static str;
    fn try_from(v: VolumeKeys) -> Result<Self, Self::Error> {
        let source = match (v.host, v.config_volume) {
            (Some(host), None) => m::VolumeSource::HostPath(host.path),
            (None, Some(config)) => m::VolumeSource::ConfigMap(config.name),
            (Some(_), Some(_)) => return Err("give `host` or `config_volume`, not both"),
            (None, None) => return Err("missing field `host` (or `config_volume`)"),
        };
        Ok(Self {
            source,
            container: v.container,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigVolume {
    name: String,
}

/// An environment value: a scalar, or `{secret: NAME, key: KEY}` /
/// `{config_map: NAME, key: KEY}`.
#[derive(Debug)]
struct EnvFile(m::EnvValue);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRefFile {
    secret: Option<String>,
    config_map: Option<String>,
    key: String,
}

impl<'de> Deserialize<'de> for EnvFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvVisitor;
        impl<'de> Visitor<'de> for EnvVisitor {
            type Value = EnvFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number, or {secret|config_map: NAME, key: KEY}")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<EnvFile, A::Error> {
                let r = KeyRefFile::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let value = match (r.secret, r.config_map) {
                    (Some(name), None) => m::EnvValue::Secret { name, key: r.key },
                    (None, Some(name)) => m::EnvValue::ConfigMap { name, key: r.key },
                    _ => {
                        return Err(de::Error::custom(
                            "give one of `secret` or `config_map`, with `key`",
                        ));
                    }
                };
                Ok(EnvFile(value))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvFile, E> {
                ScalarVisitor.visit_str(v).map(EnvFile::literal)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<EnvFile, E> {
                ScalarVisitor.visit_i64(v).map(EnvFile::literal)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<EnvFile, E> {
                ScalarVisitor.visit_u64(v).map(EnvFile::literal)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<EnvFile, E> {
                ScalarVisitor.visit_f64(v).map(EnvFile::literal)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<EnvFile, E> {
                ScalarVisitor.visit_bool(v).map(EnvFile::literal)
            }
        }
        deserializer.deserialize_any(EnvVisitor)
    }
}

impl EnvFile {
    fn literal(Scalar(text): Scalar) -> Self {
        EnvFile(m::EnvValue::Literal(text))
    }
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
struct ProbeFile {
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
    #[serde(default)]
    extensions: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    allowed_kinds: Vec<crate::kinds::KindName>,
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
            env: s.env.into_iter().map(|(k, EnvFile(v))| (k, v)).collect(),
            volumes: s
                .volumes
                .into_iter()
                .map(|v| m::Volume {
                    source: v.source,
                    container_path: v.container.bind,
                    mode: v.container.mode,
                })
                .collect(),
            labels: pairs(s.labels),
            readiness: s.readiness.map(probe),
            liveness: s.liveness.map(probe),
            command: s.command.map(texts),
            args: s.args.map(texts),
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
            extensions: s.extensions,
        }
    }
}

fn probe(p: ProbeFile) -> m::Probe {
    m::Probe {
        kind: p.kind,
        endpoint: p.endpoint,
        script: p.script,
        interval: text(p.interval),
        timeout: text(p.timeout),
    }
}

fn texts(items: Vec<Scalar>) -> Vec<String> {
    items.into_iter().map(|Scalar(s)| s).collect()
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
            extensions: s.extensions,
            allowed_kinds: s.allowed_kinds,
        }
    }
}
