//! The one binding site of the host for `berth:rules@0.1.0`: the generated types stay in
//! here; berth's own records are converted at the call.

wasmtime::component::bindgen!({
    path: "../wit/berth-rules@0.1.0",
    world: "rules",
});

use self::berth::rules::types as wit;
use crate::spec;

// The conversion is shared, as text, with the render benchmark's raw bindings of the same
// world: it is written against `wit` and `spec` in scope.
include!("records.in.rs");
