//! Port mappings: `CONTAINER_PORT[/tcp|/udp]:NODE_PORT` strings.

use crate::error::{FieldError, Result};

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The Kubernetes spelling (`TCP`, `UDP`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }

    /// The one-letter tag used in Service port names (`t`, `u`).
    pub fn letter(self) -> char {
        match self {
            Protocol::Tcp => 't',
            Protocol::Udp => 'u',
        }
    }
}

/// One parsed entry of `ports`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    /// Port the container listens on (1-65535).
    pub container_port: u16,
    /// Protocol, TCP unless written otherwise.
    pub protocol: Protocol,
    /// Port opened on every node; 0 means not exposed.
    pub node_port: u16,
}

const SYNTAX: &str = "CONTAINER_PORT[/tcp|udp]:NODE_PORT";

/// Parse one `ports` entry; `field` names it in errors (`ports[1]`).
pub fn parse_port(field: &str, text: &str) -> Result<PortMapping> {
    let bad = || FieldError::new(field, format!("{text:?} is not {SYNTAX}"));
    let (left, node) = text.trim().split_once(':').ok_or_else(bad)?;
    let (container, protocol) = match left.split_once('/') {
        None => (left, Protocol::Tcp),
        Some((port, proto)) if proto.eq_ignore_ascii_case("tcp") => (port, Protocol::Tcp),
        Some((port, proto)) if proto.eq_ignore_ascii_case("udp") => (port, Protocol::Udp),
        Some(_) => return Err(bad()),
    };
    let container = digits(container).ok_or_else(bad)?;
    let node = digits(node).ok_or_else(bad)?;
    let container_port = u16::try_from(container)
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| {
            FieldError::new(
                field,
                format!("{text:?}: container port {container} is not in 1-65535"),
            )
        })?;
    let node_port = u16::try_from(node).map_err(|_| {
        FieldError::new(
            field,
            format!("{text:?}: node port {node} is not in 0-65535"),
        )
    })?;
    Ok(PortMapping {
        container_port,
        protocol,
        node_port,
    })
}

/// Parse all of `ports`, refusing a container port/protocol pair given twice.
pub fn parse_ports(ports: &[String]) -> Result<Vec<PortMapping>> {
    let mut parsed: Vec<PortMapping> = Vec::with_capacity(ports.len());
    for (i, text) in ports.iter().enumerate() {
        let field = format!("ports[{i}]");
        let port = parse_port(&field, text)?;
        if let Some(j) = parsed
            .iter()
            .position(|p| p.container_port == port.container_port && p.protocol == port.protocol)
        {
            return Err(FieldError::new(
                field,
                format!(
                    "{text:?}: container port {}/{} is already mapped by ports[{j}]",
                    port.container_port,
                    port.protocol.as_str()
                ),
            ));
        }
        parsed.push(port);
    }
    Ok(parsed)
}

/// A run of ASCII digits as a number; `None` for anything else. Saturates so that a
/// very long number is still reported as out of range rather than as bad syntax.
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (u16, Protocol, u16) {
        let p = parse_port("ports[0]", text).expect(text);
        (p.container_port, p.protocol, p.node_port)
    }

    #[test]
    fn reference_vectors_accepted() {
        assert_eq!(ok("9101:0"), (9101, Protocol::Tcp, 0));
        assert_eq!(ok("9101/TCP:0"), (9101, Protocol::Tcp, 0));
        assert_eq!(ok("9101/tcp:0"), (9101, Protocol::Tcp, 0));
        assert_eq!(ok("9101/UDP:0"), (9101, Protocol::Udp, 0));
        assert_eq!(ok("9101/udp:31043"), (9101, Protocol::Udp, 31043));
    }

    #[test]
    fn protocol_is_case_insensitive_and_whitespace_trimmed() {
        assert_eq!(ok("53/Udp:0"), (53, Protocol::Udp, 0));
        assert_eq!(ok("  8080:30080 "), (8080, Protocol::Tcp, 30080));
    }

    #[test]
    fn reference_vectors_rejected_with_field_and_value() {
        for text in [
            "9101",
            "9101:",
            "9101:0x453",
            "9101:0/udp",
            "9101/:0",
            "9101/u:0",
            "9101/http:404",
            "9101:-1",
        ] {
            let err = parse_port("ports[1]", text).expect_err(text);
            assert_eq!(err.field, "ports[1]");
            assert_eq!(
                err.message,
                format!("{text:?} is not CONTAINER_PORT[/tcp|udp]:NODE_PORT")
            );
        }
    }

    #[test]
    fn out_of_range_ports_rejected() {
        let err = parse_port("ports[0]", "0:0").unwrap_err();
        assert!(
            err.message.contains("container port 0 is not in 1-65535"),
            "{err}"
        );
        let err = parse_port("ports[0]", "65536:0").unwrap_err();
        assert!(err.message.contains("container port 65536"), "{err}");
        let err = parse_port("ports[0]", "80:99999999999999999999999").unwrap_err();
        assert!(err.message.contains("node port"), "{err}");
    }

    #[test]
    fn duplicate_port_and_protocol_rejected() {
        let ports = ["80:0", "80/udp:0", "80/TCP:30080"].map(String::from);
        let err = parse_ports(&ports).unwrap_err();
        assert_eq!(err.field, "ports[2]");
        assert!(
            err.message.contains("80/TCP is already mapped by ports[0]"),
            "{err}"
        );
        let distinct = ["80:0", "80/udp:0"].map(String::from);
        assert_eq!(parse_ports(&distinct).unwrap().len(), 2);
    }
}
