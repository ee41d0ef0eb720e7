//! The `*.channel.k8s.io` WebSocket subprotocols: negotiation, frames and `Status` payloads.

use serde_json::{Value, json};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;

/// A remote-command subprotocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `channel.k8s.io` (also used when the client offers none): plain-text errors.
    V1,
    V2,
    V3,
    /// JSON `Status` on the error channel, with the exit code for non-zero exits: the
    /// newest a 1.20 kubelet speaks (v5, with its close of one stream, came with 1.30), so
    /// a client's end of stdin can only close the whole connection, as berth must know.
    V4,
}

impl Protocol {
    /// Every version this node speaks.
    const ALL: [Protocol; 4] = [Protocol::V4, Protocol::V3, Protocol::V2, Protocol::V1];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::V1 => "channel.k8s.io",
            Protocol::V2 => "v2.channel.k8s.io",
            Protocol::V3 => "v3.channel.k8s.io",
            Protocol::V4 => "v4.channel.k8s.io",
        }
    }

    /// The first offered name this node speaks: the client lists them in its order of
    /// preference and, like the kubelet's handshake, the node takes the first it knows.
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Protocol> {
        offered
            .into_iter()
            .find_map(|name| Self::ALL.into_iter().find(|p| p.name() == name))
    }

    /// Whether the error channel carries a JSON `Status` (v4 and later).
    pub fn structured_status(self) -> bool {
        self == Protocol::V4
    }
}

/// A frame: the channel byte, then the payload.
pub fn frame(channel: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 1);
    out.push(channel);
    out.extend_from_slice(payload);
    out
}

pub fn success() -> Value {
    json!({ "metadata": {}, "status": "Success" })
}

/// The kubelet's message for a non-zero exit: `error executing command [a b], exit code N`.
pub fn exit_message(command: &[String], code: i32) -> String {
    format!(
        "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
        command.join(" ")
    )
}

pub fn non_zero_exit(command: &[String], code: i32) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": exit_message(command, code),
        "reason": "NonZeroExitCode",
        "details": { "causes": [ { "reason": "ExitCode", "message": code.to_string() } ] },
    })
}

/// A failure that is not an exit code (e.g. the command could not be started).
pub fn internal_error(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {message}"),
        "reason": "InternalError",
        "details": { "causes": [ { "message": message } ] },
        "code": 500,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_first_offered_it_speaks() {
        // As a 1.20 kubelet: v5 is not among them.
        let v5_first = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
        assert_eq!(Protocol::negotiate(v5_first), Some(Protocol::V4));
        assert_eq!(Protocol::negotiate(["v5.channel.k8s.io"]), None);
        let v4_first = ["v4.channel.k8s.io", "v5.channel.k8s.io"];
        assert_eq!(Protocol::negotiate(v4_first), Some(Protocol::V4));
        assert_eq!(
            Protocol::negotiate(["v4.channel.k8s.io"]),
            Some(Protocol::V4)
        );
        assert_eq!(
            Protocol::negotiate([
                "base64.channel.k8s.io",
                "v2.channel.k8s.io",
                "channel.k8s.io"
            ]),
            Some(Protocol::V2)
        );
        assert_eq!(Protocol::negotiate(["base64.channel.k8s.io"]), None);
    }

    #[test]
    fn exit_status_matches_the_kubelet() {
        let cmd = vec!["sh".to_owned(), "-c".to_owned(), "exit 3".to_owned()];
        let v = non_zero_exit(&cmd, 3);
        assert_eq!(
            v["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
        assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "3");
        assert_eq!(frame(ERROR, b"x"), vec![3, b'x']);
    }
}
