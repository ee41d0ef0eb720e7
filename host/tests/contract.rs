//! Released contract versions stay supported: components built for `berth:rules@0.1.0`
//! before any later contract existed (frozen in `tests/fixtures/rules-0.1.0/`) load in this
//! berth and render the examples byte for byte as berth printed them then.

use std::path::Path;

use berth_e2e::{berth_command, repo_root};

fn render(rules: &Path, spec: &str, cache: &Path) -> Vec<u8> {
    let out = berth_command(env!("CARGO_BIN_EXE_berth"))
        .env("BERTH_CACHE_DIR", cache)
        .args(["render", "--config", "examples/site.yaml", "--spec"])
        .arg(format!("examples/{spec}.yaml"))
        .arg("--rules")
        .arg(rules)
        .output()
        .expect("run berth");
    assert!(
        out.status.success(),
        "{}: {}",
        rules.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn components_built_for_0_1_0_render_as_they_did() {
    let fixtures = repo_root().join("tests/fixtures/rules-0.1.0");
    let cache = tempfile::tempdir().expect("temp dir");
    for rules in ["default", "site"] {
        let component = fixtures.join(format!("{rules}-rules.wasm"));
        for spec in ["full", "minimal"] {
            let expected = std::fs::read(fixtures.join(format!("{spec}.{rules}.yaml")))
                .expect("expected output");
            let rendered = render(&component, spec, cache.path());
            assert!(
                rendered == expected,
                "{rules} rules on {spec}.yaml:\n{}",
                String::from_utf8_lossy(&rendered)
            );
        }
    }
}
