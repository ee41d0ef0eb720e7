//! Property tests over bad input: spec parsing on arbitrary and on mangled text, and the
//! default rules (native) on arbitrary structured specs. Nothing may panic; every error
//! must name a field; what the default rules build must pass the host's object checks,
//! byte for byte the same on a second build.
//!
//! 256 cases per property by default (seconds); longer by hand with
//! `PROPTEST_CASES=100000 cargo test -p berth-fuzz --release`.

use std::path::Path;

use berth_e2e::guest_records;

use berth::InputError;
use berth::Rendered;
use berth::Source;
use berth::Spec;
use berth_rules::types as g;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Map, Value};

/// Keys a spec or site config has at the top level: an error must name one of them.
const FIELDS: &[&str] = &[
    "component_name",
    "image",
    "replicas",
    "always_pull",
    "ports",
    "env",
    "volumes",
    "labels",
    "readiness",
    "liveness",
    "command",
    "args",
    "extensions",
    "resources",
    "resource_config",
    "log_info",
    "tls_info",
    "msb_list",
    "image_pull_secrets",
    "filebeat",
    "tls",
];

/// Keys found deeper in specs and site configs, so random documents reach the nested
/// records too.
const NESTED: &[&str] = &[
    "host",
    "path",
    "container",
    "bind",
    "mode",
    "type",
    "endpoint",
    "script",
    "interval",
    "timeout",
    "limits",
    "requests",
    "cpu",
    "memory",
    "log_directory",
    "alternate_fb_path",
    "use_tls",
    "cert_directory",
    "serviceName",
    "port",
    "version",
    "url",
    "protocol",
    "enable_ssl",
    "visualRange",
];

/// Values the rules take apart: near the valid ones is where mistakes hide.
const TRICKY: &[&str] = &[
    "80:0",
    "8443/tcp:30443",
    "9125/UDP:0",
    "80:",
    ":80",
    "0:0",
    "65536:0",
    "80/sctp:0",
    "10s",
    "1h",
    "0",
    "-1",
    "2147483648",
    "0.5",
    "500m",
    "2Gi",
    "1e3",
    "1E-3",
    ".5",
    "5.",
    "http",
    "https",
    "script",
    "docker",
    "ro",
    "rw",
    "/",
    "",
    "POD_IP",
    "app",
    "k8sdeployment",
];

fn value_strategy() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        select(TRICKY).prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::from),
    ];
    scalar.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key_strategy(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn key_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        select(FIELDS).prop_map(str::to_owned),
        select(NESTED).prop_map(str::to_owned),
        "[a-zA-Z_]{1,12}",
    ]
}

/// A document: mostly the spec's own keys, a valid name and image most of the time.
fn document_strategy() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec((key_strategy(), value_strategy()), 0..8),
        prop::option::weighted(0.8, "[a-z][a-z0-9-]{0,10}"),
        prop::option::weighted(0.8, "[a-z]{1,8}(:[0-9]{1,3})?"),
    )
        .prop_map(|(entries, name, image)| {
            let mut map: Map<String, Value> = entries.into_iter().collect();
            if let Some(name) = name {
                map.insert("component_name".into(), name.into());
            }
            if let Some(image) = image {
                map.insert("image".into(), image.into());
            }
            Value::Object(map)
        })
}

/// One edit to a text: delete, insert or replace a few characters at `at`.
fn mangle(text: &str, at: usize, what: u8, with: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = at % (chars.len() + 1);
    let end = (at + usize::from(what / 3 % 4) + 1).min(chars.len());
    let mut out: String = chars[..at].iter().collect();
    let resume = match what % 3 {
        0 => end,
        1 => {
            out.push_str(with);
            at
        }
        _ => {
            out.push_str(with);
            end
        }
    };
    out.extend(&chars[resume..]);
    out
}

/// Check one parse result: an error names the file and, for a field error, the field.
fn check_parse(result: Result<Spec, InputError>) -> Result<Option<Spec>, TestCaseError> {
    match result {
        Ok(spec) => Ok(Some(spec)),
        Err(InputError::Field { field, message, .. }) => {
            prop_assert!(!field.is_empty(), "no field in: {message}");
            // A known field, or the unknown key itself.
            // (An empty key is shown as `""`.)
            let key = if field == "\"\"" { "" } else { field.as_str() };
            let unknown_key = message.starts_with(&format!("unknown field `{key}`"));
            prop_assert!(
                field == "(top level)"
                    || unknown_key
                    || FIELDS.iter().any(|f| field.starts_with(f)),
                "unexpected field {field:?}: {message}"
            );
            prop_assert!(!message.is_empty());
            Ok(None)
        }
        Err(InputError::Syntax { message, .. }) => {
            prop_assert!(!message.is_empty());
            Ok(None)
        }
        Err(err @ (InputError::Read { .. } | InputError::Empty { .. })) => Err(
            TestCaseError::fail(format!("parsing one spec's text cannot fail so: {err}")),
        ),
    }
}

/// Build with the default rules; a refusal must name a spec or site field, objects must
/// pass the host's checks and come out the same on a second build.
fn check_build(spec: &g::Spec, site: &g::SiteConfig) -> Result<(), TestCaseError> {
    match berth_rules::build(&berth_rules::DefaultRules, spec, site, "ns") {
        Err(err) => {
            prop_assert!(
                FIELDS.iter().any(|f| err.field.starts_with(f)),
                "refusal names no spec field: {err}"
            );
            prop_assert!(!err.message.is_empty(), "refusal without a reason: {err}");
        }
        Ok(objects) => {
            let again = berth_rules::build(&berth_rules::DefaultRules, spec, site, "ns")
                .map_err(|e| TestCaseError::fail(format!("second build refused: {e}")))?;
            let json = |objects: &[g::K8sObject]| -> Vec<String> {
                objects.iter().map(|o| o.json.clone()).collect()
            };
            prop_assert_eq!(json(&objects), json(&again), "not deterministic");
            let objects = objects
                .into_iter()
                .map(|o| berth::RawObject {
                    api_version: o.api_version,
                    kind: o.kind,
                    name: o.name,
                    json: o.json,
                })
                .collect();
            if let Err(err) = Rendered::from_objects(
                &Source::Default,
                "",
                &spec.component_name,
                objects,
                "ns",
                &berth::AllowedKinds::new(),
            ) {
                return Err(TestCaseError::fail(format!(
                    "the host refuses what the default rules built: {err}\nspec: {spec:?}\nsite: {site:?}"
                )));
            }
        }
    }
    Ok(())
}

proptest! {
    // The default configuration (256 cases, or PROPTEST_CASES), with failing cases saved
    // beside this file for the next run.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_text_never_panics_the_parser(text in "\\PC{0,200}|[-:{}\\[\\],'\" \\n#&*!|>a-z0-9_]{0,200}") {
        check_parse(berth::parse_spec(Path::new("spec.yaml"), &text))?;
        check_parse(berth::parse_spec(Path::new("spec.json"), &text))?;
        let _ = berth::parse_site(Path::new("site.yaml"), &text);
    }

    #[test]
    fn random_documents_parse_or_name_the_field(doc in document_strategy(), yaml in any::<bool>()) {
        let (path, text) = if yaml {
            ("spec.yaml", serde_saphyr::to_string(&doc).expect("YAML of a JSON value"))
        } else {
            ("spec.json", doc.to_string())
        };
        if let Some(spec) = check_parse(berth::parse_spec(Path::new(path), &text))? {
            check_build(&guest_records::spec(&spec), &empty_site())?;
        }
    }

    #[test]
    fn mangled_examples_parse_or_name_the_field(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), select(&[":", " ", "\n", "-", "'", "\"", "{", "[", "#", "0", "a", "\t", "  ", "é"][..])), 1..4),
        which in 0usize..2,
    ) {
        let example = ["full.yaml", "minimal.yaml"][which];
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(example);
        let mut text = std::fs::read_to_string(path).expect("example");
        for (at, what, with) in edits {
            text = mangle(&text, at, what, with);
        }
        if let Some(spec) = check_parse(berth::parse_spec(Path::new(example), &text))? {
            check_build(&guest_records::spec(&spec), &example_site())?;
        }
    }

    #[test]
    fn default_rules_on_structured_specs(spec in spec_strategy(), site in site_strategy()) {
        check_build(&spec, &site)?;
    }
}

fn empty_site() -> g::SiteConfig {
    g::SiteConfig {
        image_pull_secrets: vec![],
        filebeat: None,
        tls: None,
        extensions: String::new(),
    }
}

fn example_site() -> g::SiteConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/site.yaml");
    guest_records::site(&berth::load_site(&path).expect("site example"))
}

/// Mostly well-formed text of one kind, sometimes a tricky value or anything: with some
/// twenty strings in a spec, about a third of the specs are valid and reach the objects.
fn text(pattern: &'static str) -> BoxedStrategy<String> {
    prop_oneof![
        50 => pattern,
        1 => select(TRICKY).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
    ]
    .boxed()
}

fn opt(pattern: &'static str) -> impl Strategy<Value = Option<String>> {
    prop::option::of(text(pattern))
}

fn path() -> BoxedStrategy<String> {
    text("/[a-z0-9._-]{0,8}(/[a-z0-9._-]{1,8}){0,3}")
}

fn duration() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        10 => opt("[1-9][0-9]{0,2}(s|m|h)?"),
        1 => opt("-?[0-9]{1,11}(\\.[0-9])?(s|m|h|ms|d|S)?"),
    ]
}

fn quantity() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        10 => opt("[1-9][0-9]{0,3}(\\.[0-9]{1,2})?(m|k|M|G|Ki|Mi|Gi)?"),
        1 => opt(
            "[+-]?[0-9]{0,9}(\\.[0-9]{0,4})?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|e[0-9]{1,3}|E-?[0-9]{1,2}|u|n)?"
        ),
    ]
}

fn amounts() -> impl Strategy<Value = Option<g::ResourceAmounts>> {
    prop::option::of(
        (quantity(), quantity()).prop_map(|(cpu, memory)| g::ResourceAmounts { cpu, memory }),
    )
}

fn spec_strategy() -> impl Strategy<Value = g::Spec> {
    let name = prop_oneof![
        20 => text("[a-z]([a-z0-9-]{0,10}[a-z0-9])?"),
        1 => "[a-z0-9-]{55,66}",
    ];
    let image = text(
        "[a-z]{1,8}(\\.[a-z]{2,3})?(/[a-z]{1,6}){0,2}(:[0-9a-z.]{1,6})?(@sha256:[0-9a-f]{8})?",
    );
    let port = prop_oneof![
        20 => text("[1-9][0-9]{0,3}(/(tcp|udp|TCP|Udp))?:(0|3[0-2][0-9]{3})"),
        1 => "[0-9]{1,6}(/(tcp|udp|sctp))?:[0-9]{0,6}",
    ];
    let key_ref = (
        text("[a-z][a-z0-9.-]{0,8}|Bad_Name"),
        text("[A-Za-z0-9._-]{1,8}|a/b"),
    )
        .prop_map(|(name, key)| g::KeyRef { name, key });
    let env_value = prop_oneof![
        8 => "\\PC{0,10}".prop_map(g::EnvValue::Literal),
        1 => key_ref.clone().prop_map(g::EnvValue::Secret),
        1 => key_ref.prop_map(g::EnvValue::ConfigMap),
    ];
    let env = (text("[A-Za-z_][A-Za-z0-9_.-]{0,8}"), env_value)
        .prop_map(|(name, value)| g::EnvVar { name, value });
    let source = prop_oneof![
        4 => path().prop_map(g::VolumeSource::HostPath),
        1 => text("[a-z][a-z0-9-]{0,8}|Bad_Name").prop_map(g::VolumeSource::ConfigMap),
    ];
    let volume =
        (source, path(), opt("ro|rw|RO|rW")).prop_map(|(source, container, mode)| g::Volume {
            source,
            container_path: container,
            mode,
        });
    let label = (
        text("([a-z]{1,6}\\.[a-z]{2,3}/)?[a-z]([a-zA-Z0-9._-]{0,8}[a-z0-9])?"),
        text("[A-Za-z0-9]([A-Za-z0-9._-]{0,10}[A-Za-z0-9])?"),
    );
    let readiness = (
        text("http|https|script|docker|HTTP"),
        opt("/[a-z/]{0,10}"),
        opt("[a-z/ .-]{1,20}"),
        duration(),
        duration(),
    )
        .prop_map(|(kind, endpoint, script, interval, timeout)| g::Probe {
            kind,
            endpoint,
            script,
            interval,
            timeout,
        })
        .boxed();
    let resources =
        (amounts(), amounts()).prop_map(|(limits, requests)| g::Resources { limits, requests });
    let log_info = (prop::option::of(path()), prop::option::of(path())).prop_map(
        |(log_directory, alternate_fb_path)| g::LogInfo {
            log_directory,
            alternate_fb_path,
        },
    );
    let tls_info =
        (any::<bool>(), prop::option::of(path())).prop_map(|(use_tls, cert_directory)| {
            g::TlsInfo {
                use_tls,
                cert_directory,
            }
        });
    let msb = (
        opt("[a-z][a-z0-9-]{0,10}"),
        opt("[0-9]{1,6}"),
        opt("v[0-9]"),
        opt("/[a-z/]{0,10}"),
        opt("REST|HTTP|TCP"),
        prop::option::of(any::<bool>()),
        opt("0|1"),
    )
        .prop_map(
            |(service_name, port, version, url, protocol, enable_ssl, visual_range)| {
                g::MsbService {
                    service_name,
                    port,
                    version,
                    url,
                    protocol,
                    enable_ssl,
                    visual_range,
                }
            },
        );
    (
        (
            name,
            image,
            prop_oneof![20 => 0u32..10, 1 => any::<u32>()],
            any::<bool>(),
        ),
        prop::collection::vec(port, 0..5),
        prop::collection::vec(env, 0..4),
        prop::collection::vec(volume, 0..3),
        prop::collection::vec(label, 0..4),
        (
            prop::option::of(readiness.clone()),
            prop::option::of(readiness),
            prop::option::of(prop::collection::vec(text("[a-z/-]{1,8}"), 0..3)),
            prop::option::of(prop::collection::vec("\\PC{0,8}", 0..3)),
            opt(r#"\{\}|\{"acme":1\}|\[1\]|nope"#),
        ),
        prop::option::of(resources),
        prop::option::of(log_info),
        prop::option::of(tls_info),
        prop::collection::vec(msb, 0..3),
    )
        .prop_map(
            |(
                (component_name, image, replicas, always_pull),
                ports,
                env,
                volumes,
                labels,
                (readiness, liveness, command, args, extensions),
                resources,
                log_info,
                tls_info,
                msb_list,
            )| g::Spec {
                component_name,
                image,
                replicas,
                always_pull,
                ports,
                env,
                volumes,
                labels,
                readiness,
                liveness,
                command,
                args,
                resources,
                log_info,
                tls_info,
                msb_list,
                extensions: extensions.unwrap_or_default(),
            },
        )
}

fn site_strategy() -> impl Strategy<Value = g::SiteConfig> {
    let filebeat = (
        path(),
        path(),
        path(),
        text("[a-z.]{1,10}"),
        text("[a-z]([a-z-]{0,8}[a-z])?"),
        text("[a-z]{1,8}(:[0-9]{1,3})?"),
    )
        .prop_map(
            |(log_path, data_path, config_path, config_subpath, config_map, image)| g::Filebeat {
                log_path,
                data_path,
                config_path,
                config_subpath,
                config_map,
                image,
            },
        );
    let tls = (path(), text("[a-z]{1,8}(:[0-9]{1,3})?"))
        .prop_map(|(cert_path, image)| g::Tls { cert_path, image });
    (
        prop::collection::vec(text("[a-z0-9]([a-z0-9.-]{0,10}[a-z0-9])?"), 0..3),
        prop::option::of(filebeat),
        prop::option::of(tls),
    )
        .prop_map(|(image_pull_secrets, filebeat, tls)| g::SiteConfig {
            image_pull_secrets,
            filebeat,
            tls,
            extensions: String::new(),
        })
}

/// Regression for what fuzzing found: a list of every field in order was accepted as a
/// record, a shorter one refused with the field `[0]`; an empty key had an empty field.
#[test]
fn a_list_is_not_a_spec() {
    let parse = |text: &str| berth::parse_spec(Path::new("spec.yaml"), text);
    let parsed = parse("[web, nginx, 1, false, [], {}, [], {}, null, null, null, null, []]\n");
    assert!(parsed.is_err(), "a list parsed as a spec: {parsed:?}");
    let parsed =
        parse("component_name: web\nimage: nginx\nreadiness: [http, /, null, null, null]\n");
    assert!(
        parsed.is_err(),
        "a list parsed as a readiness check: {parsed:?}"
    );
    let Err(InputError::Field { field, .. }) = parse("- x\n") else {
        panic!("a list is an error");
    };
    assert_eq!(field, "(top level)");
    // An empty key is named.
    let Err(InputError::Field { field, .. }) = parse("\"\": x\n") else {
        panic!("an empty key is an error");
    };
    assert!(!field.is_empty());
}
