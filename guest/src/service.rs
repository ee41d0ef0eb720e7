//! Services: a ClusterIP Service for every port, a NodePort Service for exposed ones.

use crate::labels::Labels;
use crate::model::{ObjectMeta, Service, ServicePort, ServiceSpec, StringMap};
use crate::ports::PortMapping;

/// What the two Services share.
#[derive(Debug)]
pub struct ServiceParts<'a> {
    pub namespace: &'a str,
    pub labels: &'a Labels,
    pub selector: StringMap,
}

/// The ClusterIP Service: every port, named `port-<t|u>-<port>`.
pub fn cluster_ip(
    name: String,
    ports: &[PortMapping],
    annotations: StringMap,
    parts: &ServiceParts<'_>,
) -> Service {
    let ports = ports
        .iter()
        .map(|p| ServicePort {
            name: format!("port-{}-{}", p.protocol.letter(), p.container_port),
            port: p.container_port,
            protocol: p.protocol.as_str(),
            node_port: None,
        })
        .collect();
    service(name, "ClusterIP", ports, annotations, parts)
}

/// The NodePort Service for the ports with a node port, named `xport-<t|u>-<port>`;
/// `None` when no port is exposed.
pub fn node_port(name: String, ports: &[PortMapping], parts: &ServiceParts<'_>) -> Option<Service> {
    let exposed: Vec<ServicePort> = ports
        .iter()
        .filter(|p| p.node_port != 0)
        .map(|p| ServicePort {
            name: format!("xport-{}-{}", p.protocol.letter(), p.container_port),
            port: p.container_port,
            protocol: p.protocol.as_str(),
            node_port: Some(p.node_port),
        })
        .collect();
    (!exposed.is_empty()).then(|| service(name, "NodePort", exposed, StringMap::new(), parts))
}

fn service(
    name: String,
    type_: &'static str,
    ports: Vec<ServicePort>,
    annotations: StringMap,
    parts: &ServiceParts<'_>,
) -> Service {
    Service {
        api_version: "v1",
        kind: "Service",
        metadata: ObjectMeta {
            name,
            namespace: parts.namespace.to_owned(),
            labels: parts.labels.clone(),
            annotations,
        },
        spec: ServiceSpec {
            type_,
            selector: parts.selector.clone(),
            ports,
        },
    }
}
