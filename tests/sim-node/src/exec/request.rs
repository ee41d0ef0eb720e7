//! Parsing the kubelet's `/exec/<ns>/<pod>[/<uid>]/<container>?command=..` request.

use tokio_tungstenite::tungstenite::http::Uri;

/// An exec request as the apiserver forwards it to the kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Why a request is not an exec request this node serves.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("not an exec path: {0}")]
    Path(String),
    #[error("bad percent-encoding in the query")]
    Encoding,
}

impl ExecRequest {
    pub fn parse(uri: &Uri) -> Result<Self, RequestError> {
        let path = uri.path();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (namespace, pod, container) = match parts.as_slice() {
            ["exec", ns, pod, container] | ["exec", ns, pod, _, container]
                if !ns.is_empty() && !pod.is_empty() && !container.is_empty() =>
            {
                (ns, pod, container)
            }
            _ => return Err(RequestError::Path(path.to_owned())),
        };
        let mut req = ExecRequest {
            namespace: decode(namespace)?,
            pod: decode(pod)?,
            container: decode(container)?,
            command: Vec::new(),
            stdin: false,
            stdout: false,
            stderr: false,
            tty: false,
        };
        for pair in uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = decode(v)?;
            let on = v == "1" || v.eq_ignore_ascii_case("true");
            match decode(k)?.as_str() {
                "command" => req.command.push(v),
                "input" | "stdin" => req.stdin = on,
                "output" | "stdout" => req.stdout = on,
                "error" | "stderr" => req.stderr = on,
                "tty" => req.tty = on,
                _ => {}
            }
        }
        Ok(req)
    }
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
fn decode(s: &str) -> Result<String, RequestError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(RequestError::Encoding)?;
                let hex = std::str::from_utf8(hex).map_err(|_| RequestError::Encoding)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| RequestError::Encoding)?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| RequestError::Encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_apiserver_sends() {
        let uri: Uri = "/exec/ns1/web-abc/main?command=sh&command=-c&command=echo+out%3B+exit+3&error=1&output=1"
            .parse()
            .expect("uri");
        let req = ExecRequest::parse(&uri).expect("exec request");
        assert_eq!(req.namespace, "ns1");
        assert_eq!(req.pod, "web-abc");
        assert_eq!(req.container, "main");
        assert_eq!(req.command, ["sh", "-c", "echo out; exit 3"]);
        assert!(req.stdout && req.stderr && !req.stdin && !req.tty);
    }

    #[test]
    fn accepts_the_uid_form_and_rejects_others() {
        let uri: Uri = "/exec/ns/pod/uid-1/c?command=true".parse().expect("uri");
        assert_eq!(ExecRequest::parse(&uri).expect("ok").container, "c");
        let uri: Uri = "/containerLogs/ns/pod/c".parse().expect("uri");
        assert!(matches!(
            ExecRequest::parse(&uri),
            Err(RequestError::Path(_))
        ));
        assert_eq!(decode("%zz"), Err(RequestError::Encoding));
    }
}
