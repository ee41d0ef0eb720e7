#!/usr/bin/env bash
# Start berth's local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager
# and the simulated node (berth-sim-node), on free loopback ports, with fresh state.
#
#   export KUBECONFIG=$(tests/cluster/up.sh | tail -n 1)
#
# The last stdout line is the absolute path of the admin kubeconfig. A second kubeconfig for
# a user limited by RBAC to the namespace "limited" is written next to it (limited.kubeconfig)
# and its path printed on stderr. Stop everything with tests/cluster/down.sh.
#
# If a cluster from the same state dir is already running and healthy, it is reused (its
# admin kubeconfig path is printed); otherwise leftovers are stopped and the state is wiped.
# Runs of up.sh on one state dir are serialized by a lock file ($STATE/.lock).
#
# Owners: with BERTH_CLUSTER_OWNER_PID set, that pid is recorded in $STATE/owners/ and a
# watchdog (watchdog.sh) stops the cluster once every recorded owner has exited. Test
# processes sharing one state dir (e.g. under cargo-nextest) thus share one cluster, and the
# last one to exit takes it down.
#
# Env knobs:
#   BERTH_CLUSTER_DIR        state dir (default <repo>/.cluster): pids, logs, certs, etcd data
#   BERTH_CLUSTER_FRESH=1    never reuse a running cluster: stop it and start fresh
#   BERTH_CLUSTER_OWNER_PID  stop the cluster (down.sh) once this and every other owner exited
#   BERTH_SIM_NODE           path of a built berth-sim-node (default: cargo build it)
#   BERTH_SIM_GRACE_CAP_MS   longest a deleted pod stays Terminating on the sim node, in ms
#                            (default 1000)
#   BERTH_CLUSTER_TIMEOUT    seconds to wait for each component (default 120)
#   BERTH_CACHE              passed to provision.sh (binary cache root)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="${BERTH_CLUSTER_DIR:-$ROOT/.cluster}"
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
export BERTH_CLUSTER_DIR="$STATE"
TIMEOUT="${BERTH_CLUSTER_TIMEOUT:-120}"
LIMITED_NS=limited
CONTROLLERS="deployment,replicaset,garbagecollector,namespace,serviceaccount,endpoint,endpointslice,statefulset,daemonset,job,resourcequota"
COMPONENTS=(etcd kube-apiserver kube-controller-manager sim-node)

started_at=$SECONDS
log() { printf 'cluster-up [+%ss]: %s\n' "$((SECONDS - started_at))" "$*" >&2; }

PKI="$STATE/pki"
ADMIN_KUBECONFIG="$STATE/admin.kubeconfig"
LIMITED_KUBECONFIG="$STATE/limited.kubeconfig"

alive() { # name -> true if its recorded pid is running and not a zombie
    local f="$STATE/$1.pid" pid state
    [ -f "$f" ] || return 1
    pid="$(cat "$f")"
    [ -n "$pid" ] || return 1
    # The state letter after the command name in /proc/PID/stat. Not the cmdline: it reads
    # empty while the process is in execve, which made a starting sim-node look dead.
    state="$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$pid/stat" 2>/dev/null)" || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

api() { # method path [curl args...] -> body on stdout, fails on HTTP >= 400
    local method="$1" path="$2"
    shift 2
    curl -sS --fail --max-time 10 --cacert "$PKI/ca.crt" \
        -H "Authorization: Bearer $(cat "$STATE/admin.token")" \
        -X "$method" "$(cat "$STATE/api-url")$path" "$@"
}

healthy() {
    [ -f "$ADMIN_KUBECONFIG" ] && [ -f "$STATE/admin.token" ] && [ -f "$STATE/api-url" ] || return 1
    local c
    for c in "${COMPONENTS[@]}"; do alive "$c" || return 1; done
    [ "$(api GET /readyz 2>/dev/null)" = ok ]
}

finish() {
    log "limited kubeconfig (namespace $LIMITED_NS only): $LIMITED_KUBECONFIG"
    log "admin kubeconfig: $ADMIN_KUBECONFIG"
    printf '%s\n' "$ADMIN_KUBECONFIG"
}

register_owner() {
    [ -n "${BERTH_CLUSTER_OWNER_PID:-}" ] || return 0
    mkdir -p "$STATE/owners"
    : >"$STATE/owners/$BERTH_CLUSTER_OWNER_PID"
    if ! alive watchdog; then
        log "watchdog: the cluster stops once its owners (now $BERTH_CLUSTER_OWNER_PID) have exited"
        # 8>&-: the watchdog must not hold our lock.
        "$HERE/watchdog.sh" "$STATE" </dev/null >>"$STATE/watchdog.log" 2>&1 8>&- &
        printf '%s\n' "$!" >"$STATE/watchdog.pid"
    fi
}

# --- binaries (before the state lock: a first provisioning takes minutes and has its own lock)
BIN="$("$HERE/provision.sh" | tail -n 1)"
SIM_NODE="${BERTH_SIM_NODE:-}"
if [ -z "$SIM_NODE" ]; then
    log "building berth-sim-node"
    SIM_NODE="$(
        cd "$ROOT"
        # Run from a test, cargo's per-package variables leak in and make build scripts that
        # track them (ring: CARGO_MANIFEST_DIR) rebuild, twice per run: drop them.
        for v in $(compgen -e); do
            case "$v" in
            CARGO_MANIFEST_* | CARGO_PKG_* | CARGO_CRATE_* | CARGO_BIN_* | CARGO_PRIMARY_PACKAGE | CARGO_TARGET_TMPDIR | OUT_DIR) unset "$v" ;;
            esac
        done
        cargo build -q -p berth-sim-node --message-format=json-render-diagnostics |
            grep -o '"executable":"[^"]*berth-sim-node"' | tail -n 1 | cut -d'"' -f4
    )"
fi
[ -x "$SIM_NODE" ] || {
    log "no berth-sim-node binary (got '$SIM_NODE')"
    exit 1
}

exec 8>"$STATE/.lock"
if ! flock -n 8; then
    log "waiting for another up.sh on $STATE"
    flock -w "$((TIMEOUT * 3))" 8
fi

if [ "${BERTH_CLUSTER_FRESH:-0}" != 1 ] && healthy; then
    log "reusing the running cluster in $STATE (BERTH_CLUSTER_FRESH=1 to restart)"
    register_owner
    finish
    exit 0
fi

# Leftovers of an earlier (dead or unhealthy) cluster in this state dir.
"$HERE/down.sh" >&2 || true

# Wipe the state but keep the dir itself, its lock and the owners still alive.
find "$STATE" -mindepth 1 -maxdepth 1 ! -name .lock ! -name owners -exec rm -rf {} +
for f in "$STATE"/owners/*; do
    [ -e "$f" ] || continue
    kill -0 "${f##*/}" 2>/dev/null || rm -f "$f"
done
mkdir -p "$PKI" "$STATE/etcd" "$STATE/sim-node"

on_error() {
    local rc=$?
    log "failed (exit $rc); logs are in $STATE/*.log"
    for f in "$STATE"/*.log; do
        [ -f "$f" ] || continue
        printf -- '--- last lines of %s ---\n' "$f" >&2
        tail -n 15 "$f" >&2
    done
    "$HERE/down.sh" >&2 || true
    exit "$rc"
}
trap on_error ERR

# --- ports ----------------------------------------------------------------------------------
# Below the ephemeral range (32768+) so outgoing connections do not take them meanwhile.
CHOSEN=" "
free_port() {
    local p _
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 12000))
        case "$CHOSEN" in *" $p "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            CHOSEN="$CHOSEN$p "
            printf '%s\n' "$p"
            return 0
        fi
    done
    log "no free port found"
    return 1
}
ETCD_PORT="$(free_port)"
ETCD_PEER_PORT="$(free_port)"
API_PORT="$(free_port)"
API_URL="https://127.0.0.1:$API_PORT"
printf '%s\n' "$API_URL" >"$STATE/api-url"

# --- certificates, keys, tokens -------------------------------------------------------------
log "generating certificates in $PKI"
(
    cd "$PKI"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -days 3650 -subj "/CN=berth-local-ca" -out ca.crt \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl ecparam -name prime256v1 -genkey -noout -out apiserver.key 2>/dev/null
    openssl req -new -key apiserver.key -subj "/CN=kube-apiserver" -out apiserver.csr 2>/dev/null
    cat >apiserver.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    chmod 600 ./*.key
)
ADMIN_TOKEN="$(openssl rand -hex 24)"
LIMITED_TOKEN="$(openssl rand -hex 24)"
printf '%s\n' "$ADMIN_TOKEN" >"$STATE/admin.token"
printf '%s\n' "$LIMITED_TOKEN" >"$STATE/limited.token"
chmod 600 "$STATE"/*.token
{
    printf '%s,admin,admin,"system:masters"\n' "$ADMIN_TOKEN"
    printf '%s,limited-user,limited-user\n' "$LIMITED_TOKEN"
} >"$STATE/tokens.csv"
chmod 600 "$STATE/tokens.csv"

write_kubeconfig() { # path user token namespace
    local ca
    ca="$(base64 -w0 <"$PKI/ca.crt")"
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: berth-local
  cluster:
    server: $API_URL
    certificate-authority-data: $ca
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2@berth-local
  context:
    cluster: berth-local
    user: $2
    namespace: $4
current-context: $2@berth-local
EOF
    chmod 600 "$1"
}
write_kubeconfig "$ADMIN_KUBECONFIG" admin "$ADMIN_TOKEN" default
write_kubeconfig "$LIMITED_KUBECONFIG" limited-user "$LIMITED_TOKEN" "$LIMITED_NS"

{
    printf 'API_URL=%s\nETCD_URL=http://127.0.0.1:%s\n' "$API_URL" "$ETCD_PORT"
    printf 'ADMIN_KUBECONFIG=%s\nLIMITED_KUBECONFIG=%s\nLIMITED_NAMESPACE=%s\n' \
        "$ADMIN_KUBECONFIG" "$LIMITED_KUBECONFIG" "$LIMITED_NS"
    printf 'BIN_DIR=%s\nSIM_NODE=%s\n' "$BIN" "$SIM_NODE"
} >"$STATE/cluster.env"

# --- processes ------------------------------------------------------------------------------
start() { # name command... : background, logs to $STATE/name.log, pid to $STATE/name.pid,
    # the command line to $STATE/name.cmd (a fault test restarts the API server from it)
    local name="$1"
    shift
    "$@" </dev/null >"$STATE/$name.log" 2>&1 8>&- &
    printf '%s\n' "$!" >"$STATE/$name.pid"
    printf '%q ' "$@" >"$STATE/$name.cmd"
}

wait_for() { # description name-of-process-to-watch command...
    local what="$1" proc="$2" deadline=$((SECONDS + TIMEOUT))
    shift 2
    until "$@" >/dev/null 2>&1; do
        if ! alive "$proc"; then
            log "$proc exited while waiting for $what"
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "timed out after ${TIMEOUT}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

log "starting etcd on 127.0.0.1:$ETCD_PORT"
start etcd etcd --name berth --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "berth=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls "" --logger zap --log-outputs stderr
etcd_healthy() { curl -sS --fail --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
wait_for "etcd health" etcd etcd_healthy

log "starting kube-apiserver on $API_URL"
start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --cert-dir "$PKI/generated" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --token-auth-file "$STATE/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --allow-privileged=true \
    --disable-admission-plugins ServiceAccount \
    --endpoint-reconciler-type none \
    --kubelet-preferred-address-types InternalIP \
    --enable-priority-and-fairness=false \
    --profiling=false --v=1
api_ready() { [ "$(api GET /readyz)" = ok ]; }
wait_for "kube-apiserver /readyz" kube-apiserver api_ready

log "creating namespace $LIMITED_NS and RBAC for limited-user"
create() { # path json : POST, 409 (already exists) is fine
    local code
    code="$(curl -sS --max-time 10 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
        -H 'Content-Type: application/json' -o "$STATE/last-create.json" -w '%{http_code}' \
        -X POST "$API_URL$1" --data "$2")"
    case "$code" in
    2* | 409) ;;
    *)
        log "POST $1 answered $code: $(cat "$STATE/last-create.json")"
        return 1
        ;;
    esac
}
create /api/v1/namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$LIMITED_NS\"}}"
# Exactly the Role the README documents as the least berth needs in a namespace.
create "/apis/rbac.authorization.k8s.io/v1/namespaces/$LIMITED_NS/roles" "$(cat "$ROOT/examples/berth-role.json")"
create "/apis/rbac.authorization.k8s.io/v1/namespaces/$LIMITED_NS/rolebindings" "$(
    cat <<EOF
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding",
 "metadata":{"name":"limited-user","namespace":"$LIMITED_NS"},
 "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"berth"},
 "subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"limited-user"}]}
EOF
)"
rm -f "$STATE/last-create.json"

log "starting kube-controller-manager (controllers: $CONTROLLERS)"
start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$ADMIN_KUBECONFIG" \
    --controllers "$CONTROLLERS" \
    --leader-elect=false --port 0 --secure-port 0 \
    --use-service-account-credentials=false \
    --v=1

log "starting berth-sim-node"
start sim-node "$SIM_NODE" --kubeconfig "$ADMIN_KUBECONFIG" --node-name sim-node \
    --work-dir "$STATE/sim-node" --ready-file "$STATE/sim-node.ready"

register_owner

sim_node_ready() { [ -f "$STATE/sim-node.ready" ]; }
wait_for "berth-sim-node to register and sync" sim-node sim_node_ready
node_ready() { api GET /api/v1/nodes/sim-node | grep -q '"kubeletEndpoint"'; }
wait_for "Node sim-node" sim-node node_ready
default_sa() { api GET /api/v1/namespaces/default/serviceaccounts/default; }
wait_for "ServiceAccount default/default" kube-controller-manager default_sa

trap - ERR
log "cluster up in $((SECONDS - started_at)) s (state in $STATE)"
finish
