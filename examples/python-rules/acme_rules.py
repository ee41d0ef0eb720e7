"""Acme's rules in Python: the objects of the Rust example `examples/site-rules`.

berth's default rules, with `acme-<name>` names, `team` and `cost-center` labels, a
NetworkPolicy admitting only the spec's ports, and a PodDisruptionBudget on request.
Nothing of the default rules is written again here: the world `rules` of
`wit/berth-rules@0.2.0` imports them as `defaults`, berth serves them, and this module
renames, labels and adds to what `defaults.build` returns.

Extensions: the site config's `extensions.acme.cost_centers` maps a team to its cost
center; a spec's `extensions.acme.min_available` asks for the PodDisruptionBudget.

`build.sh` beside this file makes the component with componentize-py, which generates
the module `wit_world` (and `componentize_py_types`) from the WIT.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import cluster, defaults
from wit_world.imports.types import K8sObject, SpecError

# Prefix of every object name, and the key of Acme's extensions.
SITE = "acme"
# Team of a component whose spec has no `team` label.
DEFAULT_TEAM = "platform"
# Cost center of a team missing from the site's table, so it shows up in reports.
UNASSIGNED = "cc-unassigned"
# The label the default rules give pods and Services: the Deployment's name.
DEPLOYMENT_LABEL = "k8sdeployment"
# `minAvailable` is an int32 in Kubernetes.
I32_MAX = 2**31 - 1


def refusal(field, message):
    """The error to raise for a spec berth should refuse: it reports `field: message`."""
    return Err(SpecError(field, message))


def dumps(value, sort_keys=False):
    """JSON as the Rust rules write it (serde_json): compact, non-ASCII as is.

    `sort_keys` for objects and values the Rust rules make with `json!`, whose maps are
    sorted; the default objects keep their own order.
    """
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)


def site_table(text, known, origin=""):
    """`extensions.acme` of a spec or site config (`{}` when absent), with any other key
    beside it or under it refused by name, so that a typo cannot pass silently.

    `origin` is what a refusal says first: `(in the site config) ` or nothing.
    """
    try:
        extensions = json.loads(text) if text.strip() else {}
    except ValueError:
        extensions = None
    if not isinstance(extensions, dict):
        raise refusal("extensions", f"{json.dumps(text)} is not a JSON object")
    unused = f"{origin}not used by {SITE}'s rules"
    # In sorted order, to name the key the Rust rules name (their maps are sorted).
    for key in sorted(extensions):
        if key != SITE:
            raise refusal(f"extensions.{key}", unused)
    table = extensions.get(SITE, {})
    if not isinstance(table, dict):
        raise refusal(f"extensions.{SITE}", f"{origin}{dumps(table, True)} is not a map")
    for key in sorted(table):
        if key not in known:
            raise refusal(f"extensions.{SITE}.{key}", unused)
    return table


def min_available(spec):
    """The spec's `extensions.acme.min_available`, or None: no PodDisruptionBudget."""
    ours = site_table(spec.extensions, {"min_available"})
    if "min_available" not in ours:
        return None
    n = ours["min_available"]
    # `type(n) is int`: neither JSON's `true` nor `1.0` is a count.
    if type(n) is not int or not 0 <= n <= I32_MAX:
        message = f"{dumps(n, True)} is not a non-negative integer (at most {I32_MAX})"
        raise refusal(f"extensions.{SITE}.min_available", message)
    return n


def cost_centers(site):
    """The site config's `extensions.acme.cost_centers`: team to cost center."""
    ours = site_table(site.extensions, {"cost_centers"}, "(in the site config) ")
    table = ours.get("cost_centers", {})
    if not isinstance(table, dict) or not all(isinstance(c, str) for c in table.values()):
        message = f"{dumps(table, True)} is not a map of team to cost center"
        raise refusal(f"extensions.{SITE}.cost_centers", f"(in the site config) {message}")
    return table


def check_length(name, message):
    """Refuse, as the Rust rules do, a name of Acme's over 63 characters: the default
    rules checked their own names, which are shorter."""
    if len(name) > 63:
        raise refusal("component_name", message)


def own_objects(deployment, budget):
    """Acme's objects for the Deployment's pods, labelled as the Deployment: a
    PodDisruptionBudget when the spec asks for one, and always a NetworkPolicy admitting
    ingress on the main container's ports only (none without ports)."""
    meta = {key: deployment["metadata"][key] for key in ("name", "namespace", "labels")}
    selector = deployment["spec"]["selector"]
    objects = []
    if budget is not None:
        # Asked only when needed: the cluster serves policy/v1 from Kubernetes 1.21 on.
        version = "policy/v1" if cluster.serves("policy/v1") else "policy/v1beta1"
        kind = {"apiVersion": version, "kind": "PodDisruptionBudget"}
        spec = {"selector": selector, "minAvailable": budget}
        objects.append({**kind, "metadata": meta, "spec": spec})
    main = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = [
        {"port": port["containerPort"], "protocol": port["protocol"]}
        for port in main.get("ports", [])
    ]
    spec = {
        "podSelector": selector,
        "policyTypes": ["Ingress"],
        "ingress": [{"ports": ports}] if ports else [],
    }
    kind = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy"}
    objects.append({**kind, "metadata": meta, "spec": spec})
    return objects


class WitWorld(wit_world.WitWorld):
    """The component: the world's one export, `build`."""

    def build(self, spec, site, namespace):
        # Acme's extensions first: `defaults.build` leaves them to its caller.
        budget = min_available(spec)
        centers = cost_centers(site)
        team = next((value for key, value in spec.labels if key == "team"), DEFAULT_TEAM)
        extra = {"team": team, "cost-center": centers.get(team, UNASSIGNED)}
        component = spec.component_name
        name = f"{SITE}-{component}"
        exposed = f"{SITE}-{component}-ext"

        # The default objects: a Deployment, then a ClusterIP Service and a NodePort Service
        # when the spec has (exposed) ports. A refusal raises and comes through as it is.
        # (One the Rust rules do not make: with ports, a component name starting with a
        # digit, which cannot name the default Service, though `acme-<name>` could.)
        objects = [json.loads(o.json) for o in defaults.build(spec, site, namespace)]
        check_length(
            name,
            f'"{component}" is too long: the pod label {DEPLOYMENT_LABEL}={name} '
            "would exceed 63 characters",
        )

        def relabel(labels):
            """Where the Rust rules' labels go: Acme's over the spec's own, and the
            Deployment's new name under `k8sdeployment`; sorted, as Rust's maps are."""
            labels = {**labels, **extra}
            if DEPLOYMENT_LABEL in labels:
                labels[DEPLOYMENT_LABEL] = name
            return dict(sorted(labels.items()))

        for o in objects:
            # The Deployment, its pods and the Services carry the labels; selectors do not,
            # and the Services select pods by `app` alone.
            o["metadata"]["labels"] = relabel(o["metadata"]["labels"])
            if o["kind"] == "Deployment":
                deployment = o
                o["metadata"]["name"] = name
                o["spec"]["selector"]["matchLabels"][DEPLOYMENT_LABEL] = name
                pods = o["spec"]["template"]["metadata"]
                pods["labels"] = relabel(pods["labels"])
            elif o["spec"]["type"] == "NodePort":
                check_length(
                    exposed,
                    f'"{exposed}" is not a DNS-1123 label (lower-case letters, digits and '
                    "'-', starting and ending with a letter or digit, at most 63 characters)",
                )
                o["metadata"]["name"] = exposed
            else:
                o["metadata"]["name"] = name
        own = own_objects(deployment, budget)
        return [
            K8sObject(o["apiVersion"], o["kind"], o["metadata"]["name"], dumps(o))
            for o in objects
        ] + [
            K8sObject(o["apiVersion"], o["kind"], name, dumps(o, sort_keys=True)) for o in own
        ]
