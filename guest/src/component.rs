//! The one binding site of the rules component: the WIT types, and the `build` export
//! that hands them to the plain-Rust rules.

mod bindings {
    wit_bindgen::generate!({
        path: "../wit/berth-rules@0.1.0",
        world: "rules",
    });
}

pub use bindings::berth::rules::types;
pub use types::{K8sObject, SiteConfig, Spec, SpecError};

impl From<crate::FieldError> for SpecError {
    fn from(err: crate::FieldError) -> Self {
        SpecError {
            field: err.field,
            message: err.message,
        }
    }
}

#[cfg(all(feature = "component", target_arch = "wasm32"))]
mod export {
    use super::bindings::{Guest, export};
    use super::{K8sObject, SiteConfig, Spec, SpecError};

    /// The default rules, as the component's export.
    struct DefaultComponent;

    impl Guest for DefaultComponent {
        fn build(
            spec: Spec,
            site: SiteConfig,
            namespace: String,
        ) -> Result<Vec<K8sObject>, SpecError> {
            crate::build(&crate::DefaultRules, &spec, &site, &namespace).map_err(Into::into)
        }
    }

    export!(DefaultComponent with_types_in super::bindings);
}
