//! The one binding site of the host: types and calls generated from the WIT world.

wasmtime::component::bindgen!({
    path: "../wit/berth-rules@0.1.0",
    world: "rules",
});

/// The records of `berth:rules/types@0.1.0`.
pub use self::berth::rules::types as wit;
