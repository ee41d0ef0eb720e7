//! Rules for `berth:rules@0.2.0` written against the world alone, as a component in any
//! language would be: the objects come from the `defaults` import, and this component only
//! labels them `via: defaults`, `kube: <version>` and `pdb-api: v1|v1beta1` (from the
//! `cluster` import) — or, by the spec's `component_name`, misbehaves after the nested call
//! (`defaults-loop` spins past the deadline, `defaults-bomb` grows memory), so the host's
//! limits are shown to hold after it. Objects listed in the spec's `extensions.objects`
//! are returned after the default ones as they are, so a test can hand the host any kind.

mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit/berth-rules@0.2.0",
        world: "rules",
    });
}

#[cfg(target_arch = "wasm32")]
mod export {
    use std::hint::black_box;

    use super::bindings::berth::rules::{cluster, defaults};
    use super::bindings::{Guest, K8sObject, SiteConfig, Spec, SpecError, export};

    struct ViaDefaults;

    impl Guest for ViaDefaults {
        fn build(
            spec: Spec,
            site: SiteConfig,
            namespace: String,
        ) -> Result<Vec<K8sObject>, SpecError> {
            let mut objects = defaults::build(&spec, &site, &namespace)?;
            let pdb_api = if cluster::serves("policy/v1") {
                "v1"
            } else {
                "v1beta1"
            };
            let kube = cluster::kube_version();
            match spec.component_name.as_str() {
                "defaults-loop" => {
                    let mut n = 0u64;
                    loop {
                        n = black_box(n.wrapping_add(1));
                    }
                }
                "defaults-bomb" => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(black_box(vec![1u8; 1 << 20]));
                    }
                }
                _ => {}
            }
            for object in &mut objects {
                let mut value: serde_json::Value =
                    serde_json::from_str(&object.json).map_err(|e| SpecError {
                        field: "component_name".into(),
                        message: e.to_string(),
                    })?;
                let labels = &mut value["metadata"]["labels"];
                labels["via"] = "defaults".into();
                labels["kube"] = kube.as_str().into();
                labels["pdb-api"] = pdb_api.into();
                object.json = value.to_string();
            }
            objects.extend(extra_objects(&spec.extensions)?);
            Ok(objects)
        }
    }

    /// The objects in `extensions.objects`, each named by its own apiVersion, kind and name.
    fn extra_objects(extensions: &str) -> Result<Vec<K8sObject>, SpecError> {
        let refuse = |message: String| SpecError {
            field: "extensions.objects".into(),
            message,
        };
        if extensions.is_empty() {
            return Ok(Vec::new());
        }
        let extensions: serde_json::Value =
            serde_json::from_str(extensions).map_err(|e| refuse(e.to_string()))?;
        let text = |o: &serde_json::Value, pointer: &str| {
            o.pointer(pointer)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        Ok(extensions["objects"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| K8sObject {
                api_version: text(o, "/apiVersion"),
                kind: text(o, "/kind"),
                name: text(o, "/metadata/name"),
                json: o.to_string(),
            })
            .collect())
    }

    export!(ViaDefaults with_types_in super::bindings);
}
