//! A rules component for `berth:rules@0.9.0`, a version this berth does not support: its
//! `build` takes other records, so the host must refuse it at load.

// The generated export takes the flattened record as separate arguments.
#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({
        inline: r#"
            package berth:rules@0.9.0;

            interface types {
                record spec {
                    component-name: string,
                    image: string,
                    annotations: list<tuple<string, string>>,
                }
                record k8s-object {
                    api-version: string,
                    kind: string,
                    name: string,
                    json: string,
                }
            }

            world rules {
                use types.{spec, k8s-object};
                export build: func(spec: spec, namespace: string) -> result<list<k8s-object>, string>;
            }
        "#,
    });
}

#[cfg(target_arch = "wasm32")]
mod export {
    use super::bindings::{Guest, K8sObject, Spec, export};

    struct OtherWorld;

    impl Guest for OtherWorld {
        fn build(_spec: Spec, _namespace: String) -> Result<Vec<K8sObject>, String> {
            Err("never called: the host refuses this world".into())
        }
    }

    export!(OtherWorld with_types_in super::bindings);
}
