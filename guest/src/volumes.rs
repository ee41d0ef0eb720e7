//! Host-path volumes of the spec, the log and TLS volumes, and their mounts.

use crate::component::types::Volume as SpecVolume;
use crate::error::{FieldError, Result};
use crate::model::{Volume, VolumeMount, VolumeSource};

/// Volumes of the pod and the mounts of one container, built up in a fixed order.
#[derive(Debug, Default)]
pub struct Mounts {
    /// Volumes of the pod.
    pub volumes: Vec<Volume>,
    /// Mounts of the main container.
    pub main: Vec<VolumeMount>,
}

impl Mounts {
    /// Add a volume and mount it in the main container at `path`.
    pub fn add(&mut self, name: &str, source: VolumeSource, path: &str, read_only: bool) {
        self.volumes.push(volume(name, source));
        self.main.push(mount(name, path, read_only, None));
    }
}

/// The spec's host-path volumes, named `volume-<index>` so that rendering is deterministic.
pub fn host_volumes(spec: &[SpecVolume]) -> Result<Mounts> {
    let mut mounts = Mounts::default();
    for (i, v) in spec.iter().enumerate() {
        let field = |name: &str| format!("volumes[{i}].{name}");
        let host = absolute(&field("host.path"), &v.host_path)?;
        let bind = absolute(&field("container.bind"), &v.container_path)?;
        let read_only = match v.mode.as_deref() {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(other) => {
                return Err(FieldError::new(
                    field("container.mode"),
                    format!("{other:?} is not \"ro\" or \"rw\""),
                ));
            }
        };
        let source = VolumeSource::HostPath {
            path: host.to_owned(),
        };
        mounts.add(&format!("volume-{i}"), source, bind, read_only);
    }
    Ok(mounts)
}

/// A volume of the pod.
pub fn volume(name: &str, source: VolumeSource) -> Volume {
    Volume {
        name: name.to_owned(),
        source,
    }
}

/// A mount of `name` at `path`.
pub fn mount(name: &str, path: &str, read_only: bool, sub_path: Option<&str>) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only,
        sub_path: sub_path.map(str::to_owned),
    }
}

/// `path` if it is absolute; the error names `field`.
pub fn absolute<'a>(field: &str, path: &'a str) -> Result<&'a str> {
    if path.starts_with('/') && !path.contains('\0') {
        Ok(path)
    } else {
        Err(FieldError::new(
            field,
            format!("{path:?} is not an absolute path"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(host: &str, bind: &str, mode: Option<&str>) -> SpecVolume {
        SpecVolume {
            host_path: host.into(),
            container_path: bind.into(),
            mode: mode.map(Into::into),
        }
    }

    #[test]
    fn host_volumes_get_stable_names_and_modes() {
        let spec = [
            vol("/var/log", "/logs", Some("ro")),
            vol("/data", "/data", None),
        ];
        let a = host_volumes(&spec).unwrap();
        let json = serde_json::to_value((&a.volumes, &a.main)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                [{"name": "volume-0", "hostPath": {"path": "/var/log"}},
                 {"name": "volume-1", "hostPath": {"path": "/data"}}],
                [{"name": "volume-0", "mountPath": "/logs", "readOnly": true},
                 {"name": "volume-1", "mountPath": "/data"}]
            ])
        );
        let b = host_volumes(&spec).unwrap();
        assert_eq!(
            serde_json::to_string(&b.volumes).unwrap(),
            serde_json::to_string(&a.volumes).unwrap()
        );
    }

    #[test]
    fn bad_volumes_name_the_field() {
        let err = host_volumes(&[vol("/a", "/b", None), vol("/a", "/b", Some("rx"))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "volumes[1].container.mode: \"rx\" is not \"ro\" or \"rw\""
        );
        let err = host_volumes(&[vol("relative", "/b", None)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "volumes[0].host.path: \"relative\" is not an absolute path"
        );
        let err = host_volumes(&[vol("/a", "", None)]).unwrap_err();
        assert_eq!(err.field, "volumes[0].container.bind");
    }
}
