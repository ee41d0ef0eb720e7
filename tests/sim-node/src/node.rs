//! Registers the simulated Node and keeps its status and Lease fresh.

use std::time::Duration;

use k8s_openapi::{
    api::{
        coordination::v1::{Lease, LeaseSpec},
        core::v1::Node,
    },
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time},
    jiff::Timestamp,
};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

/// How often the Node status and Lease are renewed.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// Namespace of node Leases.
const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Node annotation publishing the grace cap in ms, for tests to know what to expect.
const GRACE_CAP_ANNOTATION: &str = "sim.berth.dev/grace-cap-ms";

/// The simulated kubelet's view of its own Node.
#[derive(Clone)]
pub struct NodeAgent {
    nodes: Api<Node>,
    leases: Api<Lease>,
    name: String,
    kubelet_port: u16,
    grace_cap: Duration,
}

impl std::fmt::Debug for NodeAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeAgent")
            .field("name", &self.name)
            .field("kubelet_port", &self.kubelet_port)
            .field("grace_cap", &self.grace_cap)
            .finish_non_exhaustive()
    }
}

impl NodeAgent {
    pub fn new(client: kube::Client, name: String, kubelet_port: u16, grace_cap: Duration) -> Self {
        Self {
            nodes: Api::all(client.clone()),
            leases: Api::namespaced(client, LEASE_NAMESPACE),
            name,
            kubelet_port,
            grace_cap,
        }
    }

    /// Creates the Node (or adopts an existing one of that name), publishes its knobs as
    /// annotations and its status.
    pub async fn register(&self) -> Result<(), kube::Error> {
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "berth-sim-node",
                },
            },
        }))
        .map_err(kube::Error::SerdeError)?;
        match self.nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
        let cap_ms = self.grace_cap.as_millis().to_string();
        let knobs = json!({ "metadata": { "annotations": { GRACE_CAP_ANNOTATION: cap_ms } } });
        self.nodes
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&knobs))
            .await?;
        self.publish_status().await?;
        self.renew_lease().await
    }

    /// Renews status and Lease forever; errors are logged and retried.
    pub async fn heartbeat_loop(&self) {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            if let Err(e) = self.publish_status().await {
                eprintln!("sim-node: node status heartbeat failed: {e}");
            }
            if let Err(e) = self.renew_lease().await {
                eprintln!("sim-node: node lease renewal failed: {e}");
            }
        }
    }

    async fn publish_status(&self) -> Result<(), kube::Error> {
        let now = serde_json::to_value(Time(Timestamp::now())).map_err(kube::Error::SerdeError)?;
        let condition = |kind: &str, status: &str, reason: &str, message: &str| {
            json!({
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            })
        };
        let resources =
            json!({ "cpu": "64", "memory": "256Gi", "pods": "500", "ephemeral-storage": "1Ti" });
        let status = json!({
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "phase": "Running",
                "addresses": [
                    { "type": "InternalIP", "address": "127.0.0.1" },
                    { "type": "Hostname", "address": self.name },
                ],
                "daemonEndpoints": { "kubeletEndpoint": { "Port": self.kubelet_port } },
                "nodeInfo": {
                    "machineID": "berth-sim-node",
                    "systemUUID": "berth-sim-node",
                    "bootID": "berth-sim-node",
                    "kernelVersion": "simulated",
                    "osImage": "berth simulated node",
                    "containerRuntimeVersion": "sim://0.1.0",
                    "kubeletVersion": "v1.20.2",
                    "kubeProxyVersion": "v1.20.2",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
                "conditions": [
                    condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "simulated"),
                    condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "simulated"),
                    condition("PIDPressure", "False", "KubeletHasSufficientPID", "simulated"),
                    condition("Ready", "True", "KubeletReady", "berth-sim-node is posting ready status"),
                ],
            }
        });
        self.nodes
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .map(|_| ())
    }

    async fn renew_lease(&self) -> Result<(), kube::Error> {
        let now = MicroTime(Timestamp::now());
        let patch = json!({ "spec": { "holderIdentity": self.name, "renewTime": now, "leaseDurationSeconds": 40 } });
        match self
            .leases
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.name.clone()),
                        lease_duration_seconds: Some(40),
                        renew_time: Some(now),
                        ..LeaseSpec::default()
                    }),
                };
                self.leases
                    .create(&PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            Err(e) => Err(e),
        }
    }
}
