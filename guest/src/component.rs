//! The one binding site of the rules component: the WIT types, and the export macros that
//! hand them to plain-Rust rules, the default ones or a site's own.

/// The bindings of the world `berth:rules/default-rules@0.2.0`: `build`, and the
/// `defaults` interface served to other components. Public only so that
/// [`export_rules!`](crate::export_rules) can reach it from a site's crate.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/berth-rules@0.2.0",
        world: "default-rules",
        // A site's crate exports through this crate's bindings instead of generating its
        // own: the export macro must be callable from there, and it carries the world's
        // export description with it (a crate that does not export carries none).
        pub_export_macro: true,
        export_macro_name: "export_world",
    });
}

pub use bindings::berth::rules::types;
pub use types::{K8sObject, SiteConfig, Spec, SpecError};

/// What the target cluster serves (`kube_version()`, `serves("policy/v1")`): an import of
/// the component, so it answers only inside berth (natively, the calls panic).
pub use bindings::berth::rules::cluster;

impl Spec {
    /// A spec with a name and an image, everything else at its default: one replica, no
    /// ports, no extensions. For tests of a site's rules, which set what they exercise.
    pub fn new(component_name: impl Into<String>, image: impl Into<String>) -> Self {
        Self {
            component_name: component_name.into(),
            image: image.into(),
            replicas: 1,
            always_pull: false,
            ports: Vec::new(),
            env: Vec::new(),
            volumes: Vec::new(),
            labels: Vec::new(),
            readiness: None,
            liveness: None,
            command: None,
            args: None,
            resources: None,
            log_info: None,
            tls_info: None,
            msb_list: Vec::new(),
            extensions: String::new(),
        }
    }
}

impl SiteConfig {
    /// A site config with `extensions` (JSON text) and nothing else.
    pub fn with_extensions(extensions: impl Into<String>) -> Self {
        Self {
            image_pull_secrets: Vec::new(),
            filebeat: None,
            tls: None,
            extensions: extensions.into(),
        }
    }
}

impl From<crate::FieldError> for SpecError {
    fn from(err: crate::FieldError) -> Self {
        SpecError {
            field: err.field,
            message: err.message,
        }
    }
}

/// Export rules as the component's `build` function, in the crate root of a `cdylib`
/// built for `wasm32-wasip2`. The component also serves the `defaults` interface: the
/// default rules, extensions left to the caller.
///
/// - `export_rules!(MyRules)`: a value implementing [`Rules`](crate::Rules); the default
///   logic ([`build`](crate::build)) runs with its naming, labels, extension keys and
///   extra objects.
/// - `export_rules!(build = my_build)`: a function with the signature of
///   [`build`](crate::build) minus the rules, for a site that post-processes or replaces
///   the default objects (and validates its own extensions).
///
/// The crate depends on `berth-rules` with `default-features = false`: the default
/// feature `component` exports the default rules, and a component has one `build`.
/// On other targets the macro only type-checks its argument, so the crate also builds
/// (and tests) natively.
///
/// In wasm the macro also installs [`FreeLists`](crate::FreeLists) as the component's
/// global allocator.
#[macro_export]
macro_rules! export_rules {
    (build = $build:path) => {
        #[cfg(target_arch = "wasm32")]
        #[global_allocator]
        static __BERTH_ALLOCATOR: $crate::FreeLists<::std::alloc::System> =
            $crate::FreeLists::new(::std::alloc::System);

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Export;

            type Objects = ::std::vec::Vec<$crate::K8sObject>;

            impl $crate::__bindings::Guest for Export {
                fn build(
                    spec: $crate::Spec,
                    site: $crate::SiteConfig,
                    namespace: ::std::string::String,
                ) -> ::std::result::Result<Objects, $crate::SpecError> {
                    $build(&spec, &site, &namespace).map_err(::std::convert::Into::into)
                }
            }

            impl $crate::__bindings::exports::berth::rules::defaults::Guest for Export {
                fn build(
                    spec: $crate::Spec,
                    site: $crate::SiteConfig,
                    namespace: ::std::string::String,
                ) -> ::std::result::Result<Objects, $crate::SpecError> {
                    $crate::defaults(&spec, &site, &namespace).map_err(::std::convert::Into::into)
                }
            }

            // Braces, so that rustfmt leaves this call (not an expression) as written.
            $crate::__bindings::export_world! { Export with_types_in $crate::__bindings }
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn(
            &$crate::Spec,
            &$crate::SiteConfig,
            &str,
        ) -> ::std::result::Result<
            ::std::vec::Vec<$crate::K8sObject>,
            $crate::FieldError,
        > = $build;
    };
    ($rules:expr) => {
        fn __berth_rules_build(
            spec: &$crate::Spec,
            site: &$crate::SiteConfig,
            namespace: &str,
        ) -> ::std::result::Result<::std::vec::Vec<$crate::K8sObject>, $crate::FieldError> {
            $crate::build(&$rules, spec, site, namespace)
        }
        $crate::export_rules!(build = __berth_rules_build);
    };
}

// The default rules, unless a site's crate turned the feature off to export its own.
#[cfg(feature = "component")]
crate::export_rules!(crate::DefaultRules);
