//! Rules for `berth:rules@0.2.0` written against the world alone, as a component in any
//! language would be: the objects come from the `defaults` import, and this component only
//! labels them `via: defaults` — or, by the spec's `component_name`, misbehaves after the
//! nested call (`defaults-loop` spins past the deadline, `defaults-bomb` grows memory), so
//! the host's limits are shown to cover the nested build too.

mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit/berth-rules@0.2.0",
        world: "rules",
    });
}

#[cfg(target_arch = "wasm32")]
mod export {
    use std::hint::black_box;

    use super::bindings::berth::rules::defaults;
    use super::bindings::{Capabilities, Guest, K8sObject, SiteConfig, Spec, SpecError, export};

    struct ViaDefaults;

    impl Guest for ViaDefaults {
        fn build(
            spec: Spec,
            site: SiteConfig,
            capabilities: Capabilities,
            namespace: String,
        ) -> Result<Vec<K8sObject>, SpecError> {
            let mut objects = defaults::build(&spec, &site, &capabilities, &namespace)?;
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
                value["metadata"]["labels"]["via"] = "defaults".into();
                object.json = value.to_string();
            }
            Ok(objects)
        }
    }

    export!(ViaDefaults with_types_in super::bindings);
}
