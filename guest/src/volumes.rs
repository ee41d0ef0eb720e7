//! The spec's volumes (host paths and ConfigMaps), the log and TLS volumes, and their
//! mounts.

use crate::component::types::{Volume as SpecVolume, VolumeSource as SpecSource};
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

/// Mode bits of the files of a ConfigMap volume: 0644, as the reference plugin set them.
pub const CONFIG_MAP_MODE: i32 = 0o644;

/// The spec's volumes, named `volume-<index>` so that rendering is deterministic: host
/// paths (read-write unless `ro`), and ConfigMaps (read-only, optional, mode 0644, as the
/// reference plugin's later versions built them).
pub fn spec_volumes(spec: &[SpecVolume]) -> Result<Mounts> {
    let mut mounts = Mounts::default();
    for (i, v) in spec.iter().enumerate() {
        let field = |name: &str| format!("volumes[{i}].{name}");
        let bind = absolute(&field("container.bind"), &v.container_path)?;
        let read_only = match v.mode.as_deref() {
            None => matches!(v.source, SpecSource::ConfigMap(_)),
            Some("rw") => false,
            Some("ro") => true,
            Some(other) => {
                return Err(FieldError::new(
                    field("container.mode"),
                    format!("{other:?} is not \"ro\" or \"rw\""),
                ));
            }
        };
        let source = match &v.source {
            SpecSource::HostPath(path) => VolumeSource::HostPath {
                path: absolute(&field("host.path"), path)?.to_owned(),
            },
            SpecSource::ConfigMap(name) => {
                crate::labels::check_dns_subdomain(&field("config_volume.name"), name)?;
                if !read_only {
                    return Err(FieldError::new(
                        field("container.mode"),
                        "\"rw\": a ConfigMap volume is mounted read-only",
                    ));
                }
                VolumeSource::ConfigMap {
                    name: name.clone(),
                    default_mode: Some(CONFIG_MAP_MODE),
                    optional: Some(true),
                }
            }
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
            source: SpecSource::HostPath(host.into()),
            container_path: bind.into(),
            mode: mode.map(Into::into),
        }
    }

    fn config(name: &str, bind: &str, mode: Option<&str>) -> SpecVolume {
        SpecVolume {
            source: SpecSource::ConfigMap(name.into()),
            container_path: bind.into(),
            mode: mode.map(Into::into),
        }
    }

    #[test]
    fn config_map_volumes_are_read_only_optional_0644() {
        let spec = [
            config("app-config", "/etc/app", None),
            config("more", "/etc/more", Some("ro")),
        ];
        let m = spec_volumes(&spec).unwrap();
        assert_eq!(
            serde_json::to_value((&m.volumes, &m.main)).unwrap(),
            serde_json::json!([
                [{"name": "volume-0", "configMap": {"name": "app-config", "defaultMode": 420, "optional": true}},
                 {"name": "volume-1", "configMap": {"name": "more", "defaultMode": 420, "optional": true}}],
                [{"name": "volume-0", "mountPath": "/etc/app", "readOnly": true},
                 {"name": "volume-1", "mountPath": "/etc/more", "readOnly": true}]
            ])
        );
        let err = spec_volumes(&[config("c", "/etc/c", Some("rw"))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "volumes[0].container.mode: \"rw\": a ConfigMap volume is mounted read-only"
        );
        let err = spec_volumes(&[config("Bad_Name", "/etc/c", None)]).unwrap_err();
        assert_eq!(err.field, "volumes[0].config_volume.name");
    }

    #[test]
    fn host_volumes_get_stable_names_and_modes() {
        let spec = [
            vol("/var/log", "/logs", Some("ro")),
            vol("/data", "/data", None),
        ];
        let a = spec_volumes(&spec).unwrap();
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
        let b = spec_volumes(&spec).unwrap();
        assert_eq!(
            serde_json::to_string(&b.volumes).unwrap(),
            serde_json::to_string(&a.volumes).unwrap()
        );
    }

    #[test]
    fn bad_volumes_name_the_field() {
        let err = spec_volumes(&[vol("/a", "/b", None), vol("/a", "/b", Some("rx"))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "volumes[1].container.mode: \"rx\" is not \"ro\" or \"rw\""
        );
        let err = spec_volumes(&[vol("relative", "/b", None)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "volumes[0].host.path: \"relative\" is not an absolute path"
        );
        let err = spec_volumes(&[vol("/a", "", None)]).unwrap_err();
        assert_eq!(err.field, "volumes[0].container.bind");
    }
}
