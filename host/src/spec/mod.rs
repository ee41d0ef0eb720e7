//! Reading component specs and site configs (YAML or JSON, snake_case keys) into the
//! records the rules component takes. Structure is checked here; meaning by the rules.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de;
use serde_json::Value;

mod file;
mod model;

use file::{SiteFile, SpecFile};
pub use model::{
    EnvValue, Filebeat, LogInfo, MsbService, Probe, ResourceAmounts, Resources, SiteConfig, Spec,
    Tls, TlsInfo, Volume, VolumeSource,
};

/// Why a spec or site-config file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not YAML or JSON.
    #[error("{}: not valid {format}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message.
        message: String,
    },
    /// A field is missing, unknown or of the wrong type.
    #[error("{origin}: {field}: {message}")]
    Field {
        /// Where the spec came from.
        origin: Origin,
        /// The field's path (`readiness.interval`, `ports[1]`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A spec file or directory holds no spec.
    #[error("{}: no component spec in it (a directory's *.yaml, *.yml and *.json files are read)", path.display())]
    Empty {
        /// The file or directory.
        path: PathBuf,
    },
}

/// Where a spec came from: its file, and its place in the file when the file holds several
/// YAML documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub path: PathBuf,
    /// 1 for the file's first document, …; `None` when the file holds one.
    pub document: Option<usize>,
}

impl Origin {
    /// A file holding one spec.
    pub fn file(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            document: None,
        }
    }

    /// A spec that is not in a file, named `name` in errors.
    pub fn named(name: &str) -> Self {
        Self::file(Path::new(name))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.document {
            None => write!(f, "{}", self.path.display()),
            Some(n) => write!(f, "{} (document {n})", self.path.display()),
        }
    }
}

impl Spec {
    /// Parse a spec from YAML or JSON text (JSON when it starts with `{`); errors name the
    /// field, under the origin `spec`.
    pub fn parse(text: &str) -> Result<Self, InputError> {
        parse_spec(Path::new("spec"), text)
    }
}

impl Spec {
    /// A spec held as a JSON value (a Component's `spec.component`), read as strictly as a
    /// file's; errors name the field, under `origin`.
    pub(crate) fn from_value(origin: &Origin, value: Value) -> Result<Self, InputError> {
        typed::<SpecFile>(origin, value, SPEC_RECORDS).map(Into::into)
    }
}

impl SiteConfig {
    /// Parse a site config from YAML or JSON text; errors name the field, under the origin
    /// `site config`.
    pub fn parse(text: &str) -> Result<Self, InputError> {
        parse_site(Path::new("site config"), text)
    }
}

/// Read the component spec at `path`.
pub fn load_spec(path: &Path) -> Result<Spec, InputError> {
    let text = read(path)?;
    parse_spec(path, &text)
}

/// Read every spec at `path`: a file of one or more YAML documents (or one JSON object),
/// or a directory, whose `*.yaml`, `*.yml` and `*.json` files are read in name order.
pub fn load_specs(path: &Path) -> Result<Vec<(Origin, Spec)>, InputError> {
    let files = if path.is_dir() {
        spec_files(path)?
    } else {
        vec![path.to_owned()]
    };
    let mut specs = Vec::new();
    for file in &files {
        specs.extend(parse_specs(file, &read(file)?)?);
    }
    if specs.is_empty() {
        return Err(InputError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(specs)
}

/// Parse every spec in `text`, the content of the file at `path`: the documents of a YAML
/// stream (empty ones skipped), or one JSON object.
pub fn parse_specs(path: &Path, text: &str) -> Result<Vec<(Origin, Spec)>, InputError> {
    let documents: Vec<Value> = if is_json(path, text) {
        vec![serde_json::from_str(text).map_err(|e| syntax(path, "JSON", e))?]
    } else {
        // `from_multiple` is the faster of serde_saphyr's parsers for a file of one document
        // (a directory of 1,000 specs: 206 against 235 ms) but takes time quadratic in the
        // number of documents (76 µs more per spec at 1,000); `read` streams them.
        let markers = text.lines().filter(|l| l.starts_with("---")).count();
        if markers <= 1 {
            serde_saphyr::from_multiple(text).map_err(|e| syntax(path, "YAML", e))?
        } else {
            serde_saphyr::read(&mut text.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| syntax(path, "YAML", e))?
        }
    };
    let several = documents.len() > 1;
    documents
        .into_iter()
        .enumerate()
        .map(|(i, document)| {
            let origin = Origin {
                path: path.to_owned(),
                document: several.then_some(i + 1),
            };
            let spec = typed::<SpecFile>(&origin, document, SPEC_RECORDS)?.into();
            Ok((origin, spec))
        })
        .collect()
}

/// The spec files of a directory, by name; not its subdirectories.
fn spec_files(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let unreadable = |source| InputError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        let is_spec = path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            ["yaml", "yml", "json"]
                .iter()
                .any(|known| e.eq_ignore_ascii_case(known))
        });
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if is_spec && !hidden && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Read the site config at `path`.
pub fn load_site(path: &Path) -> Result<SiteConfig, InputError> {
    let text = read(path)?;
    parse_site(path, &text)
}

/// Parse one spec from text; `origin` names it in errors.
pub fn parse_spec(origin: &Path, text: &str) -> Result<Spec, InputError> {
    parse::<SpecFile>(origin, text, SPEC_RECORDS).map(Into::into)
}

/// Parse one site config from text; `origin` names it in errors.
pub fn parse_site(origin: &Path, text: &str) -> Result<SiteConfig, InputError> {
    parse::<SiteFile>(origin, text, SITE_RECORDS).map(Into::into)
}

fn read(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path).map_err(|source| InputError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Where a spec holds records (`[]`: each item of a list). serde would also take a record
/// written as the list of its fields in order; berth's files are mappings only.
const SPEC_RECORDS: &[&str] = &[
    "",
    "volumes[]",
    "volumes[].host",
    "volumes[].config_volume",
    "volumes[].container",
    "readiness",
    "liveness",
    "resources",
    "resources.limits",
    "resources.requests",
    "resource_config",
    "resource_config.limits",
    "resource_config.requests",
    "log_info",
    "tls_info",
    "msb_list[]",
];
/// Where a site config holds records.
const SITE_RECORDS: &[&str] = &["", "filebeat", "tls"];

/// The path of the first list standing where `records` expects a record.
fn list_for_record(value: &Value, records: &[&str], pattern: &str, path: &str) -> Option<String> {
    let join = |base: &str, key: &str| {
        if base.is_empty() {
            key.to_owned()
        } else {
            format!("{base}.{key}")
        }
    };
    match value {
        Value::Array(_) if records.contains(&pattern) => Some(path.to_owned()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            list_for_record(
                item,
                records,
                &format!("{pattern}[]"),
                &format!("{path}[{i}]"),
            )
        }),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            list_for_record(item, records, &join(pattern, key), &join(path, key))
        }),
        _ => None,
    }
}

/// JSON when the file says so by extension or by its first character, YAML otherwise.
fn is_json(path: &Path, text: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('{')
}

/// Parse one document, YAML or JSON. Both go through one JSON value so that errors name
/// fields the same way.
fn parse<T: de::DeserializeOwned>(
    path: &Path,
    text: &str,
    records: &[&str],
) -> Result<T, InputError> {
    let value: serde_json::Value = if is_json(path, text) {
        serde_json::from_str(text).map_err(|e| syntax(path, "JSON", e))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| syntax(path, "YAML", e))?
    };
    typed(&Origin::file(path), value, records)
}

/// The record a parsed document holds, or the field at fault.
fn typed<T: de::DeserializeOwned>(
    origin: &Origin,
    value: Value,
    records: &[&str],
) -> Result<T, InputError> {
    if let Some(at) = list_for_record(&value, records, "", "") {
        return Err(InputError::Field {
            origin: origin.clone(),
            field: if at.is_empty() {
                "(top level)".into()
            } else {
                at
            },
            message: "invalid type: sequence, expected a mapping".into(),
        });
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let field = match err.path().to_string() {
            dot if dot == "." => "(top level)".to_owned(),
            empty if empty.is_empty() => "\"\"".to_owned(),
            path => path,
        };
        InputError::Field {
            origin: origin.clone(),
            field,
            message: err.into_inner().to_string(),
        }
    })
}

fn syntax(path: &Path, format: &'static str, err: impl fmt::Display) -> InputError {
    InputError::Syntax {
        path: path.to_owned(),
        format,
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Result<Spec, InputError> {
        parse_spec(Path::new("spec.yaml"), text)
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let s = spec("component_name: web\nimage: nginx:1.27\n").unwrap();
        assert_eq!((s.replicas, s.always_pull), (1, false));
        assert!(s.ports.is_empty() && s.env.is_empty() && s.readiness.is_none());
    }

    #[test]
    fn scalars_keep_what_the_user_meant() {
        let s = spec(
            "component_name: web\nimage: x\nports: ['80:0', 9101:0]\nenv: {Z: 1, A: true, M: 0.5}\n\
             readiness: {type: http, endpoint: /, interval: 30.0, timeout: -99}\n\
             resource_config: {limits: {cpu: 0.5, memory: 2Gi}}\n",
        )
        .unwrap();
        assert_eq!(s.ports, ["80:0", "9101:0"]);
        let env: Vec<_> = s.env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        assert_eq!(
            env,
            [("Z", "1".into()), ("A", "true".into()), ("M", "0.5".into())]
        );
        let r = s.readiness.unwrap();
        assert_eq!(
            (r.interval.as_deref(), r.timeout.as_deref()),
            (Some("30.0"), Some("-99"))
        );
        let cpu = s.resources.unwrap().limits.unwrap().cpu;
        assert_eq!(cpu.as_deref(), Some("0.5"));
    }

    #[test]
    fn contract_0_2_keys() {
        let s = spec(
            "component_name: web\nimage: x\n\
             env: {A: 1, PASSWORD: {secret: db, key: password}, MODE: {config_map: cfg, key: mode}}\n\
             volumes: [{host: {path: /data}, container: {bind: /data}},\n\
                       {config_volume: {name: cfg}, container: {bind: /etc/cfg, mode: ro}}]\n\
             liveness: {type: script, script: /opt/live.sh --deep}\n\
             command: [/bin/server]\nargs: [--port, 8080]\n\
             extensions: {acme: {min_available: 2}}\n",
        )
        .unwrap();
        assert_eq!(
            s.env,
            [
                ("A".to_owned(), EnvValue::Literal("1".into())),
                (
                    "PASSWORD".to_owned(),
                    EnvValue::Secret {
                        name: "db".into(),
                        key: "password".into()
                    }
                ),
                (
                    "MODE".to_owned(),
                    EnvValue::ConfigMap {
                        name: "cfg".into(),
                        key: "mode".into()
                    }
                ),
            ]
        );
        let sources: Vec<_> = s.volumes.iter().map(|v| v.source.clone()).collect();
        assert_eq!(
            sources,
            [
                VolumeSource::HostPath("/data".into()),
                VolumeSource::ConfigMap("cfg".into())
            ]
        );
        assert_eq!(s.volumes[1].mode.as_deref(), Some("ro"));
        let liveness = s.liveness.unwrap();
        assert_eq!(liveness.script.as_deref(), Some("/opt/live.sh --deep"));
        assert_eq!(s.command, Some(vec!["/bin/server".to_owned()]));
        assert_eq!(s.args, Some(vec!["--port".to_owned(), "8080".to_owned()]));
        assert_eq!(s.extensions["acme"]["min_available"], 2);
    }

    #[test]
    fn contract_0_2_keys_name_the_field_when_wrong() {
        let err = |text: &str| {
            spec(&format!("component_name: web\nimage: x\n{text}"))
                .unwrap_err()
                .to_string()
        };
        let e = err("env: {P: {secret: db}}\n");
        assert!(
            e.starts_with("spec.yaml: env.P: missing field `key`"),
            "{e}"
        );
        let e = err("env: {P: {secret: db, config_map: c, key: k}}\n");
        assert!(
            e.starts_with("spec.yaml: env.P: give one of `secret` or `config_map`"),
            "{e}"
        );
        let e = err("env: {P: {secret: db, key: k, optional: true}}\n");
        assert!(
            e.starts_with("spec.yaml: env.P.optional: unknown field `optional`"),
            "{e}"
        );
        let e = err("volumes: [{container: {bind: /x}}]\n");
        assert!(
            e.starts_with("spec.yaml: volumes[0]: missing field `host`"),
            "{e}"
        );
        let e =
            err("volumes: [{host: {path: /a}, config_volume: {name: c}, container: {bind: /x}}]\n");
        assert!(
            e.starts_with("spec.yaml: volumes[0]: give `host` or `config_volume`"),
            "{e}"
        );
        let e = err("liveness: {type: http, intervall: 3}\n");
        assert!(
            e.starts_with("spec.yaml: liveness.intervall: unknown field `intervall`"),
            "{e}"
        );
        let e = err("command: /bin/server\n");
        assert!(
            e.starts_with("spec.yaml: command: invalid type: string"),
            "{e}"
        );
        let e = err("extensions: [acme]\n");
        assert!(
            e.starts_with("spec.yaml: extensions: invalid type: sequence"),
            "{e}"
        );
    }

    #[test]
    fn json_is_detected_by_content() {
        let s = spec(r#"{"component_name": "web", "image": "x", "replicas": 3}"#).unwrap();
        assert_eq!(s.replicas, 3);
    }

    #[test]
    fn errors_name_the_field() {
        let err = spec("component_name: web\nimage: x\nreadiness: {type: http, intervall: 3}\n")
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("spec.yaml: readiness"), "{msg}");
        assert!(msg.contains("unknown field `intervall`"), "{msg}");
        let err = spec("image: x\n").unwrap_err().to_string();
        assert!(err.contains("missing field `component_name`"), "{err}");
        let err = spec("component_name: web\nimage: x\nreplicas: -1\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("spec.yaml: replicas: invalid value: integer `-1`"),
            "{err}"
        );
        let err = spec("component_name: web\nimage: x\nports: [{a: 1}]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("spec.yaml: ports[0]: invalid type: map"),
            "{err}"
        );
        let err = spec("component_name: [\n").unwrap_err().to_string();
        assert!(err.starts_with("spec.yaml: not valid YAML"), "{err}");
    }

    #[test]
    fn a_list_is_not_a_record() {
        let err = spec("[web, nginx]\n").unwrap_err().to_string();
        assert_eq!(
            err,
            "spec.yaml: (top level): invalid type: sequence, expected a mapping"
        );
        let err = spec("component_name: web\nimage: x\nreadiness: [http, /]\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "spec.yaml: readiness: invalid type: sequence, expected a mapping"
        );
        let err =
            spec("component_name: web\nimage: x\nvolumes: [{host: [/a], container: {bind: /b}}]\n")
                .unwrap_err()
                .to_string();
        assert_eq!(
            err,
            "spec.yaml: volumes[0].host: invalid type: sequence, expected a mapping"
        );
        // Lists where the spec has lists are fine.
        assert!(
            spec("component_name: web\nimage: x\nports: ['80:0']\nmsb_list: [{port: 80}]\n")
                .is_ok()
        );
    }

    #[test]
    fn an_empty_key_is_named() {
        let err = spec("component_name: web\nimage: x\n\"\": y\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("spec.yaml: \"\": unknown field ``"),
            "{err}"
        );
    }

    #[test]
    fn a_yaml_stream_holds_several_specs_and_names_each() {
        let path = Path::new("set.yaml");
        let specs = parse_specs(
            path,
            "component_name: a\nimage: x\n---\n---\ncomponent_name: b\nimage: nginx\n",
        )
        .unwrap();
        let found: Vec<_> = specs
            .iter()
            .map(|(o, s)| (o.to_string(), s.component_name.as_str()))
            .collect();
        // The empty document is skipped.
        assert_eq!(
            found,
            [
                ("set.yaml (document 1)".to_owned(), "a"),
                ("set.yaml (document 2)".to_owned(), "b")
            ]
        );
        let one = parse_specs(path, "component_name: a\nimage: x\n").unwrap();
        assert_eq!(one[0].0, Origin::file(path));
        let marked = parse_specs(path, "---\ncomponent_name: a\nimage: x\n").unwrap();
        assert_eq!((marked.len(), marked[0].0.document), (1, None));
        assert!(parse_specs(path, "").unwrap().is_empty());
        let err = parse_specs(path, "component_name: a\nimage: x\n---\nimage: nginx\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "set.yaml (document 2): (top level): missing field `component_name`"
        );
    }

    #[test]
    fn site_config_sections() {
        let site = parse_site(
            Path::new("site.yaml"),
            "image_pull_secrets: [regcred]\ntls: {cert_path: /certs, image: tls-init:1}\n",
        )
        .unwrap();
        assert_eq!(site.image_pull_secrets, ["regcred"]);
        assert!(site.filebeat.is_none() && site.tls.is_some());
        let err = parse_site(Path::new("site.yaml"), "filebeat: {image: fb}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("filebeat: missing field `log_path`"), "{err}");
        let site = parse_site(
            Path::new("site.yaml"),
            "allowed_kinds: [v1/Secret, cert-manager.io/v1/Certificate]\n",
        )
        .unwrap();
        let kinds: Vec<String> = site.allowed_kinds.iter().map(ToString::to_string).collect();
        assert_eq!(kinds, ["v1/Secret", "cert-manager.io/v1/Certificate"]);
        let err = parse_site(
            Path::new("site.yaml"),
            "allowed_kinds: [v1/Secret, Secret]\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "site.yaml: allowed_kinds[1]: \"Secret\" is not APIVERSION/KIND (e.g. v1/Secret, cert-manager.io/v1/Certificate)"
        );
    }
}
