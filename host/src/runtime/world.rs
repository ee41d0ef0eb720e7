//! Does a component implement the world berth runs? Checked on the component's type before
//! linking, so the error can say which export is missing or which other version of the
//! contract the component was built for.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

/// The package of the contract.
pub const PACKAGE: &str = "berth:rules";
/// The versions of the package this berth runs.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.1.0", "0.2.0"];
/// The function a rules component exports.
pub const EXPORT: &str = "build";

/// How a component misses the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// It uses another version of the package.
    Version(String),
    /// It has no `build` function among its exports (listed, with their kinds).
    MissingExport(Vec<String>),
}

/// `berth:rules/rules@0.1.0`, ... for messages.
pub fn supported_worlds() -> String {
    SUPPORTED_VERSIONS
        .iter()
        .map(|v| format!("{PACKAGE}/rules@{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The world a component of contract `version` implements: `berth:rules/rules@0.2.0`.
pub fn world_name(version: &str) -> String {
    format!("{PACKAGE}/rules@{version}")
}

/// Check the names and kinds of the component's imports and exports, and tell which
/// supported version of the contract it was built for (0.1.0 when it names none). Types
/// are checked afterwards, when the bindings look up `build`.
pub fn check(engine: &Engine, component: &Component) -> Result<&'static str, Mismatch> {
    let ty = component.component_type();
    // The version first: a component for another version may well export `build` too,
    // and "wrong version" is the more useful thing to hear.
    let names = ty.imports(engine).chain(ty.exports(engine));
    let mut found = None;
    for (name, _) in names {
        if let Some(version) = package_version(name) {
            match SUPPORTED_VERSIONS.iter().find(|v| **v == version) {
                Some(supported) if found.is_none_or(|f| f == *supported) => {
                    found = Some(*supported);
                }
                _ => return Err(Mismatch::Version(version.to_owned())),
            }
        }
    }
    let mut exports = Vec::new();
    for (name, item) in ty.exports(engine) {
        if name == EXPORT && matches!(item.ty, ComponentItem::ComponentFunc(_)) {
            return Ok(found.unwrap_or(SUPPORTED_VERSIONS[0]));
        }
        exports.push(format!("{} `{name}`", kind(&item.ty)));
    }
    Err(Mismatch::MissingExport(exports))
}

/// The names of the component's imports and of its exports, in the component's order.
pub fn interfaces(engine: &Engine, component: &Component) -> (Vec<String>, Vec<String>) {
    let ty = component.component_type();
    let names = |items: &mut dyn Iterator<Item = &str>| items.map(str::to_owned).collect();
    (
        names(&mut ty.imports(engine).map(|(name, _)| name)),
        names(&mut ty.exports(engine).map(|(name, _)| name)),
    )
}

/// The version in `berth:rules/<interface>@<version>`.
fn package_version(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    rest.split_once('@').map(|(_, version)| version)
}

fn kind(item: &ComponentItem) -> &'static str {
    match item {
        ComponentItem::ComponentFunc(_) => "function",
        ComponentItem::CoreFunc(_) => "core function",
        ComponentItem::Module(_) => "module",
        ComponentItem::Component(_) => "component",
        ComponentItem::ComponentInstance(_) => "instance",
        ComponentItem::Type(_) => "type",
        ComponentItem::Resource(_) => "resource",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_names() {
        assert_eq!(package_version("berth:rules/types@0.1.0"), Some("0.1.0"));
        assert_eq!(package_version("berth:rules/rules@0.2.0"), Some("0.2.0"));
        assert_eq!(package_version("berth:rules/types"), None);
        assert_eq!(package_version("berth:rulesx/types@9.0.0"), None);
        assert_eq!(package_version("wasi:io/poll@0.2.6"), None);
    }

    #[test]
    fn an_empty_component_misses_build() {
        let engine = Engine::default();
        // The smallest component: magic, component-model version 0xd, layer 1.
        let empty = Component::new(&engine, b"\0asm\x0d\0\x01\0").expect("empty component");
        assert_eq!(check(&engine, &empty), Err(Mismatch::MissingExport(vec![])));
    }
}
