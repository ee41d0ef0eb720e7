//! Containers: the main one, the logging sidecar and the TLS init container.

use crate::component::types::{EnvValue, EnvVar as SpecEnvVar, KeyRef};
use crate::error::{FieldError, Result};
use crate::model::{
    Container, ContainerPort, EnvVar, EnvVarSource, FieldRef, KeyRefSource, Probe, Resources,
    VolumeMount,
};
use crate::ports::PortMapping;

/// Environment variable every container gets, holding the pod's IP address.
pub const POD_IP: &str = "POD_IP";

/// What differs between the containers of a pod.
#[derive(Debug, Default)]
pub struct ContainerParts {
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub env: Vec<EnvVar>,
    pub ports: Vec<ContainerPort>,
    pub mounts: Vec<VolumeMount>,
    pub resources: Option<Resources>,
    pub readiness: Option<Probe>,
    pub liveness: Option<Probe>,
}

/// A container with `POD_IP` appended to its environment, as every berth container has.
pub fn container(name: &str, image: &str, always_pull: bool, parts: ContainerParts) -> Container {
    let mut env = parts.env;
    env.push(EnvVar {
        name: POD_IP.to_owned(),
        value: None,
        value_from: Some(EnvVarSource::FieldRef(FieldRef {
            field_path: "status.podIP",
        })),
    });
    Container {
        name: name.to_owned(),
        image: image.to_owned(),
        image_pull_policy: if always_pull {
            "Always"
        } else {
            "IfNotPresent"
        },
        command: parts.command,
        args: parts.args,
        env,
        ports: parts.ports,
        volume_mounts: parts.mounts,
        resources: parts.resources,
        readiness_probe: parts.readiness,
        liveness_probe: parts.liveness,
    }
}

/// The spec's environment in the order written, names checked: values, and keys of
/// Secrets and ConfigMaps.
pub fn env(vars: &[SpecEnvVar]) -> Result<Vec<EnvVar>> {
    let mut out: Vec<EnvVar> = Vec::with_capacity(vars.len());
    for SpecEnvVar { name, value } in vars {
        let field = format!("env.{name}");
        if !is_env_name(name) {
            return Err(FieldError::new(
                field,
                format!(
                    "{name:?} is not a valid variable name (letters, digits, '_', '-', '.', not starting with a digit)"
                ),
            ));
        }
        if name == POD_IP {
            return Err(FieldError::new(
                field,
                "POD_IP is set by the rules and cannot be given",
            ));
        }
        if out.iter().any(|v| v.name == *name) {
            return Err(FieldError::new(field, "given twice"));
        }
        let key_ref = |r: &KeyRef, source: &str| -> Result<KeyRefSource> {
            crate::labels::check_dns_subdomain(&format!("{field}.{source}"), &r.name)?;
            if r.key.is_empty()
                || !r
                    .key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(FieldError::new(
                    format!("{field}.key"),
                    format!(
                        "{:?} is not a valid key (letters, digits, '-', '_', '.')",
                        r.key
                    ),
                ));
            }
            Ok(KeyRefSource {
                name: r.name.clone(),
                key: r.key.clone(),
            })
        };
        let (value, value_from) = match value {
            EnvValue::Literal(text) => (Some(text.clone()), None),
            EnvValue::Secret(r) => (
                None,
                Some(EnvVarSource::SecretKeyRef(key_ref(r, "secret")?)),
            ),
            EnvValue::ConfigMap(r) => (
                None,
                Some(EnvVarSource::ConfigMapKeyRef(key_ref(r, "config_map")?)),
            ),
        };
        out.push(EnvVar {
            name: name.clone(),
            value,
            value_from,
        });
    }
    Ok(out)
}

/// Container ports in the order written.
pub fn ports(ports: &[PortMapping]) -> Vec<ContainerPort> {
    ports
        .iter()
        .map(|p| ContainerPort {
            container_port: p.container_port,
            protocol: p.protocol.as_str(),
        })
        .collect()
}

/// Check an image reference: non-empty, no whitespace.
pub fn check_image(field: &str, image: &str) -> Result<()> {
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        Err(FieldError::new(
            field,
            format!("{image:?} is not an image reference"),
        ))
    } else {
        Ok(())
    }
}

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'-' | b'.'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str, value: &str) -> SpecEnvVar {
        SpecEnvVar {
            name: name.into(),
            value: EnvValue::Literal(value.into()),
        }
    }

    fn key(name: &str, key: &str) -> KeyRef {
        KeyRef {
            name: name.into(),
            key: key.into(),
        }
    }

    #[test]
    fn env_from_secrets_and_config_maps() {
        let vars = [
            var("A", "1"),
            SpecEnvVar {
                name: "PASSWORD".into(),
                value: EnvValue::Secret(key("db", "password")),
            },
            SpecEnvVar {
                name: "MODE".into(),
                value: EnvValue::ConfigMap(key("app-config", "mode")),
            },
        ];
        assert_eq!(
            serde_json::to_value(env(&vars).unwrap()).unwrap(),
            serde_json::json!([
                {"name": "A", "value": "1"},
                {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "mode"}}}
            ])
        );
        let bad = SpecEnvVar {
            name: "P".into(),
            value: EnvValue::Secret(key("Bad_Name", "k")),
        };
        assert_eq!(env(&[bad]).unwrap_err().field, "env.P.secret");
        let bad = SpecEnvVar {
            name: "P".into(),
            value: EnvValue::ConfigMap(key("cfg", "a/b")),
        };
        assert_eq!(
            env(&[bad]).unwrap_err().to_string(),
            "env.P.key: \"a/b\" is not a valid key (letters, digits, '-', '_', '.')"
        );
    }

    #[test]
    fn command_and_args_are_the_main_containers() {
        let parts = ContainerParts {
            command: Some(vec!["/bin/server".into()]),
            args: Some(vec!["--port".into(), "8080".into()]),
            ..Default::default()
        };
        let json = serde_json::to_value(container("web", "nginx:1", false, parts)).unwrap();
        assert_eq!(json["command"], serde_json::json!(["/bin/server"]));
        assert_eq!(json["args"], serde_json::json!(["--port", "8080"]));
        let plain = serde_json::to_value(container(
            "web",
            "nginx:1",
            false,
            ContainerParts::default(),
        ))
        .unwrap();
        assert!(plain.get("command").is_none() && plain.get("args").is_none());
    }

    #[test]
    fn every_container_gets_pod_ip_last() {
        let parts = ContainerParts {
            env: env(&[var("B", "2"), var("A", "1")]).unwrap(),
            ..Default::default()
        };
        let json = serde_json::to_value(container("web", "nginx:1", true, parts)).unwrap();
        assert_eq!(json["imagePullPolicy"], "Always");
        assert_eq!(
            json["env"],
            serde_json::json!([
                {"name": "B", "value": "2"},
                {"name": "A", "value": "1"},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
            ])
        );
        let sidecar = serde_json::to_value(container(
            "filebeat",
            "fb",
            false,
            ContainerParts::default(),
        ))
        .unwrap();
        assert_eq!(sidecar["imagePullPolicy"], "IfNotPresent");
        assert_eq!(sidecar["env"][0]["name"], "POD_IP");
    }

    #[test]
    fn bad_env_names_the_variable() {
        let err = env(&[var("1ABC", "x")]).unwrap_err();
        assert_eq!(err.field, "env.1ABC");
        let err = env(&[var("POD_IP", "x")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "env.POD_IP: POD_IP is set by the rules and cannot be given"
        );
        let err = env(&[var("A", "1"), var("A", "2")]).unwrap_err();
        assert_eq!(err.to_string(), "env.A: given twice");
    }

    #[test]
    fn images_checked() {
        check_image("image", "registry.example/web:1.2").unwrap();
        assert_eq!(
            check_image("image", "").unwrap_err().to_string(),
            "image: \"\" is not an image reference"
        );
        assert!(check_image("image", "a b").is_err());
    }
}
