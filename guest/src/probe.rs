//! The readiness and liveness probes of the main container, and the interval syntax they
//! use.

use crate::component::types::Probe as Check;
use crate::error::{FieldError, Result};
use crate::model::{Probe, ProbeAction};
use crate::ports::PortMapping;

/// Period between checks when the spec gives none, in seconds.
pub const DEFAULT_PERIOD: i32 = 15;
/// Time a check may take when the spec gives none, in seconds.
pub const DEFAULT_TIMEOUT: i32 = 1;

/// Parse an interval: digits with an optional unit `s`, `m` or `h`, in seconds.
///
/// The result must fit the int32 fields of a Kubernetes probe.
pub fn parse_interval(text: &str) -> Result<i32, String> {
    let bad = || format!("{text:?} is not N, Ns, Nm or Nh (N a whole number)");
    let (digits, factor) = match text.as_bytes().last() {
        Some(b's') => (&text[..text.len() - 1], 1),
        Some(b'm') => (&text[..text.len() - 1], 60),
        Some(b'h') => (&text[..text.len() - 1], 3600),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let too_long = || format!("{text:?} is longer than {} seconds", i32::MAX);
    let number = digits.bytes().try_fold(0i32, |n, b| {
        n.checked_mul(10)?.checked_add(i32::from(b - b'0'))
    });
    number
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(too_long)
}

/// Build the probe the spec's `which` (`readiness` or `liveness`) asks for; `ports` are
/// the component's parsed ports (an HTTP check probes the first one).
pub fn probe(which: &str, check: &Check, ports: &[PortMapping]) -> Result<Probe> {
    let field = |name: &str| format!("{which}.{name}");
    let period = seconds(
        &field("interval"),
        check.interval.as_deref(),
        DEFAULT_PERIOD,
    )?;
    let timeout = seconds(&field("timeout"), check.timeout.as_deref(), DEFAULT_TIMEOUT)?;
    let action = match check.kind.as_str() {
        kind @ ("http" | "https") => {
            let port = ports.first().ok_or_else(|| {
                FieldError::new(
                    field("type"),
                    format!(
                        "an {kind:?} check probes the first container port, but `ports` is empty"
                    ),
                )
            })?;
            let path = required(&field("endpoint"), check.endpoint.as_deref(), kind)?;
            ProbeAction::HttpGet {
                path: path.to_owned(),
                port: port.container_port,
                scheme: if kind == "http" { "HTTP" } else { "HTTPS" },
            }
        }
        kind @ ("script" | "docker") => {
            let script = required(&field("script"), check.script.as_deref(), kind)?;
            // Split into its arguments, as the reference plugin's later versions do:
            // `/opt/ready.sh --deep` runs `/opt/ready.sh` with `--deep`.
            ProbeAction::Exec {
                command: script.split_whitespace().map(str::to_owned).collect(),
            }
        }
        other => {
            return Err(FieldError::new(
                field("type"),
                format!("{other:?} is not one of http, https, script, docker"),
            ));
        }
    };
    Ok(Probe {
        failure_threshold: 1,
        initial_delay_seconds: 5,
        period_seconds: period,
        timeout_seconds: timeout,
        action,
    })
}

fn seconds(field: &str, text: Option<&str>, default: i32) -> Result<i32> {
    let Some(text) = text else {
        return Ok(default);
    };
    match parse_interval(text) {
        Ok(0) => Err(FieldError::new(
            field,
            format!("{text:?} must be at least 1 second"),
        )),
        Ok(n) => Ok(n),
        Err(message) => Err(FieldError::new(field, message)),
    }
}

fn required<'a>(field: &str, value: Option<&'a str>, kind: &str) -> Result<&'a str> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(FieldError::new(
            field,
            format!("required for a {kind:?} check"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Protocol;

    #[test]
    fn reference_intervals_accepted() {
        for (text, secs) in [
            ("30", 30),
            ("30s", 30),
            ("2m", 120),
            ("2h", 7200),
            ("24h", 86400),
            ("354123", 354123),
            ("354123s", 354123),
            ("05s", 5),
            ("00000000000000000000000000000000005m", 300),
        ] {
            assert_eq!(parse_interval(text), Ok(secs), "{text}");
        }
    }

    #[test]
    fn reference_intervals_rejected() {
        // Numbers in the input reach the rules as their decimal text (-99, 30.0, 3.14159).
        for text in [
            "-99",
            "-99s",
            "30d",
            "30w",
            "3 0s",
            "30.0",
            "30.0s",
            "a 30s",
            "30s a",
            "30 s",
            "thirty seconds",
            "3m05s",
            "3seconds",
            "3S",
            "1minute",
            "10E0",
            "3.14159",
            "",
            "s",
        ] {
            let err = parse_interval(text).expect_err(text);
            assert!(err.contains(&format!("{text:?}")), "{err}");
        }
    }

    #[test]
    fn intervals_beyond_int32_rejected() {
        assert_eq!(parse_interval("2147483647"), Ok(i32::MAX));
        assert!(
            parse_interval("2147483648")
                .unwrap_err()
                .contains("longer than")
        );
        assert!(
            parse_interval("596524h")
                .unwrap_err()
                .contains("longer than")
        );
        assert!(parse_interval("99999999999999999999999").is_err());
    }

    fn check(kind: &str) -> Check {
        Check {
            kind: kind.into(),
            endpoint: Some("/health".into()),
            script: Some("/opt/ready.sh".into()),
            interval: None,
            timeout: None,
        }
    }

    const PORTS: &[PortMapping] = &[PortMapping {
        container_port: 8443,
        protocol: Protocol::Tcp,
        node_port: 0,
    }];

    #[test]
    fn http_probe_uses_first_port_and_defaults() {
        let probe = probe("readiness", &check("https"), PORTS).unwrap();
        assert_eq!(
            (probe.failure_threshold, probe.initial_delay_seconds),
            (1, 5)
        );
        assert_eq!((probe.period_seconds, probe.timeout_seconds), (15, 1));
        let json = serde_json::to_value(&probe).unwrap();
        assert_eq!(
            json["httpGet"],
            serde_json::json!({"path": "/health", "port": 8443, "scheme": "HTTPS"})
        );
    }

    #[test]
    fn script_and_docker_probes_exec_the_script() {
        for kind in ["script", "docker"] {
            let mut c = check(kind);
            c.interval = Some("2m".into());
            c.timeout = Some("10s".into());
            let json = serde_json::to_value(probe("readiness", &c, &[]).unwrap()).unwrap();
            assert_eq!(
                json["exec"]["command"],
                serde_json::json!(["/opt/ready.sh"])
            );
            assert_eq!(
                (
                    json["periodSeconds"].as_i64(),
                    json["timeoutSeconds"].as_i64()
                ),
                (Some(120), Some(10))
            );
        }
    }

    #[test]
    fn an_exec_probe_runs_the_script_split_into_its_arguments() {
        let mut c = check("script");
        c.script = Some("  /opt/ready.sh --deep\t-v  ".into());
        let json = serde_json::to_value(probe("liveness", &c, &[]).unwrap()).unwrap();
        assert_eq!(
            json["exec"]["command"],
            serde_json::json!(["/opt/ready.sh", "--deep", "-v"])
        );
    }

    #[test]
    fn liveness_errors_name_liveness() {
        let mut c = check("http");
        c.interval = Some("soon".into());
        assert_eq!(
            probe("liveness", &c, PORTS).unwrap_err().to_string(),
            "liveness.interval: \"soon\" is not N, Ns, Nm or Nh (N a whole number)"
        );
        assert_eq!(
            probe("liveness", &check("http"), &[]).unwrap_err().field,
            "liveness.type"
        );
        let mut c = check("docker");
        c.script = Some("   ".into());
        assert_eq!(
            probe("liveness", &c, PORTS).unwrap_err().to_string(),
            "liveness.script: required for a \"docker\" check"
        );
    }

    #[test]
    fn http_probe_without_ports_is_an_error() {
        let err = probe("readiness", &check("http"), &[]).unwrap_err();
        assert_eq!(err.field, "readiness.type");
        assert!(err.message.contains("`ports` is empty"), "{err}");
    }

    #[test]
    fn bad_probe_fields_name_the_field() {
        let mut c = check("http");
        c.interval = Some("3m05s".into());
        assert_eq!(
            probe("readiness", &c, PORTS).unwrap_err().field,
            "readiness.interval"
        );
        let mut c = check("http");
        c.timeout = Some("0".into());
        let err = probe("readiness", &c, PORTS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "readiness.timeout: \"0\" must be at least 1 second"
        );
        let mut c = check("script");
        c.script = None;
        assert_eq!(
            probe("readiness", &c, PORTS).unwrap_err().field,
            "readiness.script"
        );
        let err = probe("readiness", &check("tcp"), PORTS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "readiness.type: \"tcp\" is not one of http, https, script, docker"
        );
    }
}
