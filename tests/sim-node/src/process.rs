//! Commands run as if in a container: in the pod's scratch directory, with the container's
//! literal environment, in a process group of their own so that ending the container ends
//! everything the command started.

use std::{path::Path, process::Stdio};

use k8s_openapi::api::core::v1::Container;
use tokio::process::{Child, Command};

/// `argv` as a command of container `container` in pod `pod`, run in `dir`; `None` when
/// `argv` names no program. Stdio is left to the caller.
pub fn command(
    dir: &Path,
    pod: &str,
    container: &str,
    env: &[(String, String)],
    argv: &[String],
) -> Option<Command> {
    let (program, args) = argv.split_first()?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .env("HOSTNAME", pod)
        .envs(env.iter().map(|(k, v)| (k, v)))
        // Which container the command runs in, as a test can then tell (a kubelet runs it
        // in that container's own namespaces; there is one here). Set last: it is the truth.
        .env("BERTH_SIM_CONTAINER", container)
        // A group of its own: when the container ends, what the command started ends too.
        .process_group(0)
        .kill_on_drop(true);
    Some(cmd)
}

/// The container's `env` entries with a literal value (the others need the API to resolve).
pub fn literal_env(container: &Container) -> Vec<(String, String)> {
    container
        .env
        .iter()
        .flatten()
        .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
        .collect()
}

/// Kills the command and every process of its group with SIGKILL, as a container's end
/// does (the kernel kills a pid namespace's processes when its init exits).
pub async fn kill_all(child: &mut Child) {
    if let Some(pid) = child.id() {
        // std has no killpg; kill(1) takes a negative pid as a process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
    let _ = child.start_kill();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn kill_all_ends_the_commands_children_too() {
        let dir = std::env::temp_dir();
        let argv: Vec<String> = ["sh", "-c", "sleep 30 & sleep 30; echo never"]
            .map(String::from)
            .to_vec();
        let mut cmd = command(&dir, "p", "main", &[], &argv).expect("a program");
        let mut child = cmd
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut out = child.stdout.take().expect("stdout");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        kill_all(&mut child).await;
        // Every writer of the pipe (sh and both sleeps) is gone: EOF comes at once.
        let mut text = String::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::io::AsyncReadExt::read_to_string(&mut out, &mut text),
        )
        .await;
        assert!(read.is_ok(), "a child of the command kept the pipe open");
        assert_eq!(text, "");
        let status = child.wait().await.expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }

    #[test]
    fn no_program_no_command() {
        assert!(command(Path::new("/"), "p", "c", &[], &[]).is_none());
    }
}
