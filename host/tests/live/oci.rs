//! Rules from a registry: pushed and pulled against a real `docker-registry` (Debian's
//! CNCF distribution) on loopback with basic auth; digests pinned and checked, the digest
//! cache used without the network, and each failure a clear error.

use berth_e2e::command::{BERTH_LIMIT, OutputWithin as _};
use std::path::{Path, PathBuf};
use std::process::Output;

use berth::{OciError, Reference, Registry};
use berth_e2e::components;
use berth_e2e::registry::{self, Registry as TestRegistry};

use crate::common;

fn berth(docker_config: &Path, cache: &Path, args: &[&str]) -> Output {
    berth_e2e::berth_command(env!("CARGO_BIN_EXE_berth"))
        .env("DOCKER_CONFIG", docker_config)
        .env("BERTH_CACHE_DIR", cache)
        .args(args)
        .output_within(BERTH_LIMIT)
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "berth failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("UTF-8")
}

fn stderr(out: &Output) -> String {
    assert!(!out.status.success(), "berth succeeded, expected a failure");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn site_rules() -> PathBuf {
    components::component("site-rules")
}

fn client(docker_config: Option<PathBuf>, cache: Option<&Path>) -> Registry {
    Registry::new(berth::RegistryOptions {
        cache_dir: cache.map(Path::to_owned),
        docker_config: docker_config.map(|dir| dir.join("config.json")),
        ..berth::RegistryOptions::default()
    })
    .expect("registry client")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn pushed_rules_render_by_tag_and_by_digest_and_a_digest_needs_no_network_once_cached() {
    let registry = TestRegistry::start();
    let auth = registry.docker_config(registry::USER, registry::PASSWORD);
    let cache = tempfile::tempdir().expect("cache dir");
    let component = site_rules();
    let component_text = component.to_str().expect("UTF-8 path");
    let tag = registry.reference("acme/rules:1.0");

    let pushed = stdout(&berth(
        &auth,
        cache.path(),
        &["rules", "push", component_text, &tag],
    ));
    // `rules compile` fills an empty cache once (pulling first); then nothing is left to do.
    let fresh = tempfile::tempdir().expect("cache dir");
    let compiled = stdout(&berth(&auth, fresh.path(), &["rules", "compile", &tag]));
    assert!(
        compiled.starts_with("compiled rules component oci://"),
        "{compiled}"
    );
    let again = stdout(&berth(&auth, fresh.path(), &["rules", "compile", &tag]));
    assert!(again.ends_with("is compiled already\n"), "{again}");
    let pinned = pushed.trim();
    let reference = Reference::parse(pinned).expect("push prints a reference");
    assert_eq!(reference.tag.as_deref(), Some("1.0"));
    let manifest_digest = reference
        .digest
        .clone()
        .expect("pinned to the manifest digest");
    // Pushing the same component again gives the same manifest: the digest is stable.
    let again = stdout(&berth(
        &auth,
        cache.path(),
        &["rules", "push", component_text, &tag],
    ));
    assert_eq!(again.trim(), pinned);

    // What the registry holds is the wasm OCI layout, and renders as the file does.
    let bytes = std::fs::read(&component).expect("component");
    let render = |rules: &str| {
        let args = [
            "render",
            "--rules",
            rules,
            "--spec",
            "examples/full.yaml",
            "--config",
            "examples/site-rules/site.yaml",
        ];
        berth(&auth, cache.path(), &args)
    };
    let from_file = stdout(&render(component_text));
    assert!(from_file.contains("name: acme-"), "{from_file}");
    assert_eq!(stdout(&render(&tag)), from_file);
    assert_eq!(stdout(&render(pinned)), from_file);

    let inspected = stdout(&berth(&auth, cache.path(), &["rules", "inspect", pinned]));
    let digest = berth::hooks::sha256(&bytes);
    for line in [
        format!("source:    rules component {pinned}"),
        "world:     berth:rules/rules@0.2.0".to_owned(),
        format!("digest:    {digest}"),
        format!("size:      {} bytes", bytes.len()),
        "exports:   build".to_owned(),
    ] {
        assert!(inspected.contains(&line), "{line:?} not in:\n{inspected}");
    }
    assert!(
        inspected.contains("berth:rules/defaults@0.2.0"),
        "{inspected}"
    );

    // The library's view: a tag is one resolving request (after the auth challenge), a
    // cached digest none at all.
    let rt = runtime();
    let lib = client(Some(auth.clone()), Some(cache.path()));
    let by_tag = rt
        .block_on(lib.pull(&Reference::parse(&tag).unwrap()))
        .expect("pull by tag");
    assert_eq!(by_tag.requests, 2, "challenge + manifest");
    assert_eq!(by_tag.bytes, bytes);
    assert_eq!(by_tag.component_digest, digest);
    assert_eq!(
        by_tag.reference.digest.as_deref(),
        Some(manifest_digest.as_str())
    );

    drop(registry);
    let offline = rt.block_on(lib.pull(&reference)).expect("from the cache");
    assert_eq!((offline.requests, offline.bytes == bytes), (0, true));
    assert_eq!(stdout(&render(pinned)), from_file);
    // A tag must be resolved: with the registry gone that is a clear error, not a guess.
    let err = stderr(&render(&tag));
    assert!(err.contains("cannot reach registry 127.0.0.1:"), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
}

#[test]
fn tampered_unknown_and_foreign_artifacts_and_bad_credentials_are_refused() {
    let registry = TestRegistry::start();
    let auth = registry.docker_config(registry::USER, registry::PASSWORD);
    let rt = runtime();
    let bytes = std::fs::read(site_rules()).expect("component");
    let info = berth::ComponentInfo::default();
    let pull = |lib: &Registry, text: &str| rt.block_on(lib.pull(&Reference::parse(text).unwrap()));

    // No credentials, then wrong ones: refused by the registry, and said so.
    let anonymous = client(None, None);
    let err = rt
        .block_on(anonymous.push(
            &Reference::parse(&registry.reference("a/b:1")).unwrap(),
            &bytes,
            &info,
        ))
        .expect_err("needs credentials");
    assert!(
        matches!(&err, OciError::Unauthorized { reason, .. } if reason.contains("has none")),
        "{err}"
    );
    let wrong = registry.docker_config(registry::USER, "not-the-password");
    let err = pull(
        &client(Some(wrong.clone()), None),
        &registry.reference("a/b:1"),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("credentials from Docker's config file were refused"),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-password"), "{err}");

    let lib = client(Some(auth.clone()), None);
    let pushed = rt
        .block_on(lib.push(
            &Reference::parse(&registry.reference("acme/rules:1")).unwrap(),
            &bytes,
            &info,
        ))
        .expect("push");

    // An unknown tag and an unknown digest.
    let err = pull(&lib, &registry.reference("acme/rules:2")).unwrap_err();
    assert!(matches!(err, OciError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("manifest not found"), "{err}");
    let unknown = format!(
        "{}@sha256:{}",
        registry.reference("acme/rules"),
        "0".repeat(64)
    );
    assert!(matches!(
        pull(&lib, &unknown),
        Err(OciError::NotFound { .. })
    ));

    // A blob changed in the registry's storage: its digest no longer matches.
    let blob = registry.blob_path(&pushed.component_digest);
    let mut tampered = std::fs::read(&blob).expect("blob");
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    std::fs::write(&blob, &tampered).expect("tamper");
    let err = pull(&lib, &pushed.reference.to_string()).unwrap_err();
    assert!(
        matches!(
            err,
            OciError::DigestMismatch {
                what: "component layer",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&pushed.component_digest), "{err}");

    // An artifact that is not a wasm component: bytes with the wasm layer type, then a
    // container image's manifest pushed with curl.
    let not_wasm = rt
        .block_on(lib.push(
            &Reference::parse(&registry.reference("acme/text:1")).unwrap(),
            b"hello",
            &info,
        ))
        .expect("push");
    let err = pull(&lib, &not_wasm.reference.to_string()).unwrap_err();
    assert!(
        err.to_string()
            .contains("is not a wasm component artifact: its layer is not a wasm component"),
        "{err}"
    );
    let image = push_image_manifest(&registry, &auth);
    let err = pull(&lib, &image).unwrap_err();
    assert!(
        err.to_string().contains("its config has media type application/vnd.oci.image.config.v1+json, not application/vnd.wasm.config.v0+json"),
        "{err}"
    );

    // A registry that is not there.
    let gone = TestRegistry::start();
    let address = gone.reference("acme/rules:1");
    drop(gone);
    let err = pull(&lib, &address).unwrap_err();
    assert!(matches!(err, OciError::Unreachable { .. }), "{err}");
}

/// A container image's manifest (config `application/vnd.oci.image.config.v1+json`) at
/// `acme/image:1`, pushed with curl so nothing of berth's is involved; its reference.
fn push_image_manifest(registry: &TestRegistry, _auth: &Path) -> String {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let digest = berth::hooks::sha256(config);
    let user = format!("{}:{}", registry::USER, registry::PASSWORD);
    let base = format!("http://{}/v2/acme/image", registry.address);
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "-f", "-u", &user])
            .args(args)
            .output_within(std::time::Duration::from_secs(30));
        assert!(
            out.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let config_file = registry.storage().join("image-config.json");
    std::fs::write(&config_file, config).expect("config");
    let headers = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        &format!("{base}/blobs/uploads/"),
    ]);
    let location = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or_else(|| l.strip_prefix("location: "))
        })
        .expect("upload location")
        .trim();
    let location = if location.starts_with("http") {
        location.to_owned()
    } else {
        format!("http://{}{location}", registry.address)
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", config_file.display()),
        &format!("{location}{separator}digest={digest}"),
    ]);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{digest}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &manifest,
        &format!("{base}/manifests/1"),
    ]);
    registry.reference("acme/image:1")
}

#[tokio::test]
async fn a_deploy_from_a_registry_records_the_components_digest_and_undeploys_cleanly() {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::Api;

    let registry = TestRegistry::start();
    let auth = registry.docker_config(registry::USER, registry::PASSWORD);
    let cache = tempfile::tempdir().expect("cache dir");
    let component = site_rules();
    let tag = registry.reference("acme/rules:deploy");
    let pushed = stdout(&berth(
        &auth,
        cache.path(),
        &["rules", "push", component.to_str().unwrap(), &tag],
    ));
    let pinned = pushed.trim().to_owned();

    let (client, ns) = common::namespace("oci").await;
    let admin = berth_e2e::cluster()
        .admin_kubeconfig
        .to_str()
        .expect("UTF-8 path")
        .to_owned();
    let cluster_args = ["-n", ns.as_str(), "--kubeconfig", admin.as_str()];
    let deploy = [
        "deploy",
        "--rules",
        &pinned,
        "--spec",
        "examples/minimal.yaml",
        "--config",
        "examples/site-rules/site.yaml",
    ];
    stdout(&berth(
        &auth,
        cache.path(),
        &[&cluster_args[..], &deploy[..]].concat(),
    ));
    // Right when deploy returns: Acme's Deployment, stamped with the component's digest.
    let deployment = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("acme-hello")
        .await
        .expect("Acme's Deployment");
    let digest = berth::hooks::sha256(&std::fs::read(&component).expect("component"));
    let annotations = deployment.metadata.annotations.unwrap_or_default();
    assert_eq!(annotations.get("berth.dev/rules-digest"), Some(&digest));
    let made = common::labelled(&client, &ns, "hello", &[]).await;
    assert!(
        made.contains(&"NetworkPolicy/acme-hello".to_owned()),
        "{made:?}"
    );

    stdout(&berth(
        &auth,
        cache.path(),
        &[&cluster_args[..], &["undeploy", "hello", "--wait"][..]].concat(),
    ));
    assert_eq!(common::leftovers(&client, &ns).await, Vec::<String>::new());
    assert_eq!(
        common::labelled(&client, &ns, "hello", &[]).await,
        Vec::<String>::new()
    );
    common::drop_namespace(&client, &ns).await;
}

/// Issue 23, item 4: the controller's image, assembled without a Docker daemon by
/// `tests/image.sh` (as `cargo xtask image` runs it, here on the test build of berth) and
/// pushed with berth's own registry client: its config runs berth as a non-root user, and
/// `berth --version` runs as that user in a chroot of the unpacked layer — nothing from the
/// machine but what the layer holds.
#[test]
fn the_controller_image_is_pushed_and_berth_runs_from_its_layer_as_non_root() {
    use serde_json::Value;
    let registry = TestRegistry::start();
    let docker = registry.docker_config(registry::USER, registry::PASSWORD);
    let cache = tempfile::tempdir().expect("cache dir");
    let dir = tempfile::tempdir().expect("dir");
    let layout = dir.path().join("layout");
    let built = std::process::Command::new(common::root().join("tests/image.sh"))
        .arg(env!("CARGO_BIN_EXE_berth"))
        .arg(&layout)
        .output_within(BERTH_LIMIT);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let reference = registry.reference("berth/controller:test");
    let layout_arg = layout.to_str().expect("utf-8 path");
    let pushed = stdout(&berth(
        &docker,
        cache.path(),
        &["controller", "push-image", layout_arg, &reference],
    ));
    let (pinned, digest) = pushed.trim().rsplit_once('@').expect("a pinned reference");
    assert_eq!(pinned, reference);
    let blob = |digest: &str| std::fs::read(registry.blob_path(digest)).expect("a blob");
    let manifest: Value = serde_json::from_slice(&blob(digest)).expect("manifest JSON");
    let config: Value =
        serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap()))
            .expect("config JSON");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/berth"])
    );
    assert_eq!(config["config"]["User"], "65532:65532");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1);
    let layer = dir.path().join("layer.tar");
    std::fs::write(&layer, blob(layers[0]["digest"].as_str().unwrap())).expect("the layer");
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).expect("rootfs");
    let unpacked = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&layer)
        .arg("-C")
        .arg(&rootfs)
        .output_within(BERTH_LIMIT);
    assert!(unpacked.status.success());
    let mut chroot = if common::is_root() {
        let mut chroot = std::process::Command::new("chroot");
        chroot.arg("--userspec=65532:65532");
        chroot
    } else {
        // A user namespace grants chroot (as the namespace's root).
        let mut unshare = std::process::Command::new("unshare");
        unshare.args(["--map-root-user", "chroot"]);
        unshare
    };
    let ran = chroot
        .arg(&rootfs)
        .args(["/usr/local/bin/berth", "--version"])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output_within(BERTH_LIMIT);
    let expected = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--version")
        .output()
        .expect("berth --version");
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&expected.stdout),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(ran.status.success());
}
