//! Containers: the main one, the logging sidecar and the TLS init container.

use crate::error::{FieldError, Result};
use crate::model::{
    Container, ContainerPort, EnvVar, EnvVarSource, FieldRef, Probe, Resources, VolumeMount,
};
use crate::ports::PortMapping;

/// Environment variable every container gets, holding the pod's IP address.
pub const POD_IP: &str = "POD_IP";

/// What differs between the containers of a pod.
#[derive(Debug, Default)]
pub struct ContainerParts {
    pub env: Vec<EnvVar>,
    pub ports: Vec<ContainerPort>,
    pub mounts: Vec<VolumeMount>,
    pub resources: Option<Resources>,
    pub probe: Option<Probe>,
}

/// A container with `POD_IP` appended to its environment, as every berth container has.
pub fn container(name: &str, image: &str, always_pull: bool, parts: ContainerParts) -> Container {
    let mut env = parts.env;
    env.push(EnvVar {
        name: POD_IP.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: FieldRef {
                field_path: "status.podIP",
            },
        }),
    });
    Container {
        name: name.to_owned(),
        image: image.to_owned(),
        image_pull_policy: if always_pull {
            "Always"
        } else {
            "IfNotPresent"
        },
        env,
        ports: parts.ports,
        volume_mounts: parts.mounts,
        resources: parts.resources,
        readiness_probe: parts.probe,
    }
}

/// The spec's environment in the order written, names checked.
pub fn env(vars: &[(String, String)]) -> Result<Vec<EnvVar>> {
    let mut out: Vec<EnvVar> = Vec::with_capacity(vars.len());
    for (name, value) in vars {
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
        out.push(EnvVar {
            name: name.clone(),
            value: Some(value.clone()),
            value_from: None,
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

    #[test]
    fn every_container_gets_pod_ip_last() {
        let parts = ContainerParts {
            env: env(&[("B".into(), "2".into()), ("A".into(), "1".into())]).unwrap(),
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
        let err = env(&[("1ABC".into(), "x".into())]).unwrap_err();
        assert_eq!(err.field, "env.1ABC");
        let err = env(&[("POD_IP".into(), "x".into())]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "env.POD_IP: POD_IP is set by the rules and cannot be given"
        );
        let err = env(&[("A".into(), "1".into()), ("A".into(), "2".into())]).unwrap_err();
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
