#!/usr/bin/env python3
"""The Kubernetes manifests in deploy/k8s agree with each other and with `govmesh serve`.

Usage: k8s_manifests_test.py [DIR] [unittest options]   (DIR defaults to ../deploy/k8s)

check() lists every problem it finds in a set of manifests; the real manifests must have none,
and every mutation in MUTATIONS (a manifest broken the way an edit could break it) must give at
least one, so the checks are shown able to fail.
"""
import copy
import os
import re
import shutil
import subprocess
import sys
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST_DIR = os.path.join(HERE, "..", "deploy", "k8s")
WORKLOAD_KINDS = {"StatefulSet", "DaemonSet", "Deployment", "ReplicaSet", "Job", "CronJob", "Pod"}


def load(directory):
    """{file name: [documents]} for every YAML file, and the kustomization (or None)."""
    manifests, kustomization = {}, None
    for name in sorted(os.listdir(directory)):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        if name in ("kustomization.yaml", "kustomization.yml"):
            kustomization = docs[0] if docs else {}
        else:
            manifests[name] = docs
    return manifests, kustomization


def pod_spec(obj):
    spec = obj.get("spec", {})
    if obj["kind"] == "Pod":
        return spec
    if obj["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    return spec.get("template", {}).get("spec", {})


def flags(argv):
    """{'--flag': value} from ['--a=b', '--c', 'd', ...]; a bare flag maps to True."""
    out, i = {}, 0
    while i < len(argv):
        a = str(argv[i])
        if a.startswith("--"):
            if "=" in a:
                k, v = a.split("=", 1)
                out[k] = v
            elif i + 1 < len(argv) and not str(argv[i + 1]).startswith("--"):
                out[a] = str(argv[i + 1])
                i += 1
            else:
                out[a] = True
        i += 1
    return out


def image_pinned(image):
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and last.rsplit(":", 1)[1] not in ("", "latest")


def port_of(address):
    m = re.search(r":(\d+)/?$", address)
    return int(m.group(1)) if m else None


def resolve_port(container, port):
    """The number of a probe's port (a number or a port name) if the container exposes it."""
    ports = container.get("ports", [])
    for p in ports:
        if port == p.get("name") or port == p.get("containerPort"):
            return p["containerPort"]
    return None


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check(manifests, kustomization):
    """Every problem found, as readable strings naming file and object."""
    problems = []
    objects = []  # (file, object)
    for name, docs in manifests.items():
        for d in docs:
            if not isinstance(d, dict) or not d.get("apiVersion") or not d.get("kind") \
                    or not d.get("metadata", {}).get("name"):
                problems.append(f"{name}: a document without apiVersion, kind and metadata.name")
                continue
            objects.append((name, d))

    def find(kind, name=None):
        return [(f, o) for f, o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]

    # kustomization.yaml lists exactly the manifest files.
    if kustomization is None:
        problems.append("kustomization.yaml is missing")
    else:
        listed = set(kustomization.get("resources", []))
        for f in sorted(set(manifests) - listed):
            problems.append(f"kustomization.yaml does not list {f}")
        for f in sorted(listed - set(manifests)):
            problems.append(f"kustomization.yaml lists {f}, which is not in deploy/k8s")
        for img in kustomization.get("images", []):
            if img.get("newTag") in (None, "", "latest") and not img.get("digest"):
                problems.append(f"kustomization.yaml: image {img.get('name')} is not pinned (newTag {img.get('newTag')!r})")

    # Every image is pinned.
    for f, o in objects:
        if o["kind"] not in WORKLOAD_KINDS:
            continue
        spec = pod_spec(o)
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            if not image_pinned(str(c.get("image", ""))):
                problems.append(f"{f}: {o['kind']} {o['metadata']['name']}: container {c.get('name')} image "
                                f"{c.get('image')!r} is not pinned to a tag other than latest or a digest")
            if not c.get("resources", {}).get("requests"):
                problems.append(f"{f}: {o['kind']} {o['metadata']['name']}: container {c.get('name')} has no resource requests")

    # etcd: a StatefulSet of 3 behind a headless Service.
    sts = find("StatefulSet", "etcd")
    etcd_urls = None
    if len(sts) != 1:
        problems.append(f"expected one StatefulSet named etcd, found {len(sts)}")
    else:
        f, s = sts[0]
        replicas = s["spec"].get("replicas")
        if replicas != 3:
            problems.append(f"{f}: StatefulSet etcd has replicas {replicas}, expected 3")
        svc_name = s["spec"].get("serviceName")
        labels = s["spec"].get("template", {}).get("metadata", {}).get("labels", {})
        svc = find("Service", svc_name)
        if not svc:
            problems.append(f"{f}: StatefulSet etcd names serviceName {svc_name!r}, but there is no such Service")
        else:
            sf, so = svc[0]
            if so["spec"].get("clusterIP") != "None":
                problems.append(f"{sf}: Service {svc_name} must be headless (clusterIP: None)")
            if not selects(so["spec"].get("selector"), labels):
                problems.append(f"{sf}: Service {svc_name} does not select the etcd pods")
        if not s["spec"].get("volumeClaimTemplates"):
            problems.append(f"{f}: StatefulSet etcd has no volumeClaimTemplates")
        containers = pod_spec(s).get("containers", [])
        if not containers:
            problems.append(f"{f}: StatefulSet etcd has no containers")
        else:
            c = containers[0]
            fl = flags(list(c.get("command", [])) + list(c.get("args", [])))
            for need in ("--name", "--data-dir", "--listen-client-urls", "--advertise-client-urls",
                         "--listen-peer-urls", "--initial-advertise-peer-urls", "--initial-cluster",
                         "--initial-cluster-state", "--initial-cluster-token", "--heartbeat-interval",
                         "--election-timeout", "--experimental-watch-progress-notify-interval"):
                if need not in fl:
                    problems.append(f"{f}: etcd container lacks {need}")
            if fl.get("--initial-cluster-state") not in (None, "new"):
                problems.append(f"{f}: etcd --initial-cluster-state must be new")
            client_port = port_of(str(fl.get("--listen-client-urls", "")))
            peer_port = port_of(str(fl.get("--listen-peer-urls", "")))
            for what, p in (("client", client_port), ("peer", peer_port)):
                if p is None or resolve_port(c, p) is None:
                    problems.append(f"{f}: the etcd container does not expose its {what} port {p}")
            if isinstance(replicas, int) and svc_name:
                want = ",".join(f"etcd-{i}=http://etcd-{i}.{svc_name}:{peer_port}" for i in range(replicas))
                if fl.get("--initial-cluster") != want:
                    problems.append(f"{f}: etcd --initial-cluster is {fl.get('--initial-cluster')!r}, expected {want!r}")
                etcd_urls = [f"http://etcd-{i}.{svc_name}:{client_port}" for i in range(replicas)]

    # govmesh: a DaemonSet running `govmesh serve` against that etcd.
    ds = find("DaemonSet", "govmesh")
    if len(ds) != 1:
        problems.append(f"expected one DaemonSet named govmesh, found {len(ds)}")
        return problems
    f, d = ds[0]
    template = d["spec"].get("template", {})
    spec = pod_spec(d)
    serve = [c for c in spec.get("containers", [])
             if "serve" in [str(a) for a in list(c.get("command", [])) + list(c.get("args", []))]]
    if len(serve) != 1:
        problems.append(f"{f}: DaemonSet govmesh has no container running `govmesh serve`")
        return problems
    c = serve[0]
    fl = flags(list(c.get("command", [])) + list(c.get("args", [])))
    for need in ("--etcd", "--prefix", "--trust", "--listen", "--metrics", "--lineage", "--node-key", "--node-id"):
        if need not in fl:
            problems.append(f"{f}: govmesh serve lacks {need}")

    urls = str(fl.get("--etcd", "")).split(",")
    if etcd_urls is not None and urls != etcd_urls:
        problems.append(f"{f}: govmesh --etcd is {fl.get('--etcd')!r}, expected one URL per etcd replica: {','.join(etcd_urls)}")

    env = {e.get("name"): e for e in c.get("env", [])}
    if fl.get("--node-id") != "$(NODE_NAME)":
        problems.append(f"{f}: govmesh --node-id must be $(NODE_NAME)")
    if env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "spec.nodeName":
        problems.append(f"{f}: env NODE_NAME must come from the downward API field spec.nodeName")

    listen_port, metrics_port = port_of(str(fl.get("--listen", ""))), port_of(str(fl.get("--metrics", "")))
    for what, p in (("--listen", listen_port), ("--metrics", metrics_port)):
        if p is None or resolve_port(c, p) is None:
            problems.append(f"{f}: the govmesh container does not expose the {what} port {p}")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = c.get(probe, {}).get("httpGet", {})
        if get.get("path") != path:
            problems.append(f"{f}: govmesh {probe} must GET {path}, not {get.get('path')!r}")
        port = resolve_port(c, get.get("port"))
        if port is None:
            problems.append(f"{f}: govmesh {probe} port {get.get('port')!r} is not a port the container exposes")
        elif port != metrics_port:
            problems.append(f"{f}: govmesh {probe} probes port {port}, but --metrics listens on {metrics_port}")

    ann = template.get("metadata", {}).get("annotations", {}) or {}
    if ann.get("prometheus.io/scrape") != "true":
        problems.append(f"{f}: pod annotation prometheus.io/scrape must be \"true\"")
    if ann.get("prometheus.io/port") != str(metrics_port):
        problems.append(f"{f}: pod annotation prometheus.io/port is {ann.get('prometheus.io/port')!r}, metrics port is {metrics_port}")
    if ann.get("prometheus.io/path") != "/metrics":
        problems.append(f"{f}: pod annotation prometheus.io/path must be /metrics")

    volumes = {v.get("name"): v for v in spec.get("volumes", [])}
    mounts = c.get("volumeMounts", [])

    def volume_of(path):
        for m in mounts:
            mp = m.get("mountPath", "").rstrip("/")
            if path == mp or path.startswith(mp + "/"):
                return volumes.get(m.get("name"), {})
        return None

    for opt in ("--trust", "--node-key"):
        v = volume_of(str(fl.get(opt, "")))
        if not v or "secret" not in v:
            problems.append(f"{f}: govmesh {opt} {fl.get(opt)!r} is not on a mounted Secret")
    v = volume_of(str(fl.get("--lineage", "")))
    if not v or not ("hostPath" in v or "emptyDir" in v):
        problems.append(f"{f}: govmesh --lineage {fl.get('--lineage')!r} is not on a hostPath or emptyDir volume")

    labels = template.get("metadata", {}).get("labels", {})
    svc = find("Service", "govmesh")
    if not svc:
        problems.append("no Service named govmesh")
    else:
        sf, so = svc[0]
        if not selects(so["spec"].get("selector"), labels):
            problems.append(f"{sf}: Service govmesh does not select the govmesh pods")
        for p in so["spec"].get("ports", []):
            if resolve_port(c, p.get("targetPort", p.get("port"))) is None:
                problems.append(f"{sf}: Service govmesh port {p.get('name')} targets {p.get('targetPort')!r}, which the container does not expose")
    return problems


# --- Mutations: each breaks one thing the checks are there for. ---------------------------------

def _obj(m, kind, name):
    for docs in m.values():
        for d in docs:
            if d.get("kind") == kind and d.get("metadata", {}).get("name") == name:
                return d
    raise KeyError(f"{kind} {name}")


def _govmesh(m):
    return pod_spec(_obj(m, "DaemonSet", "govmesh"))["containers"][0]


def _set_arg(container, flag, value):
    args = container["args"]
    args[args.index(flag) + 1] = value


def _drop_file(m, k, pred):
    for name in list(m):
        if pred(m[name]):
            del m[name]
            k["resources"] = [r for r in k["resources"] if r != name]


MUTATIONS = {
    "etcd replicas 2": lambda m, k: _obj(m, "StatefulSet", "etcd")["spec"].update(replicas=2),
    "no etcd StatefulSet": lambda m, k: _drop_file(m, k, lambda docs: any(d["kind"] == "StatefulSet" for d in docs)),
    "no govmesh DaemonSet": lambda m, k: _drop_file(m, k, lambda docs: any(d["kind"] == "DaemonSet" for d in docs)),
    "readiness path": lambda m, k: _govmesh(m)["readinessProbe"]["httpGet"].update(path="/healthz"),
    "readiness port not exposed": lambda m, k: _govmesh(m)["readinessProbe"]["httpGet"].update(port=9999),
    "metrics port not exposed": lambda m, k: _govmesh(m).update(ports=[p for p in _govmesh(m)["ports"] if p["containerPort"] != 9090]),
    "no scrape annotation": lambda m, k: _obj(m, "DaemonSet", "govmesh")["spec"]["template"]["metadata"]["annotations"].pop("prometheus.io/scrape"),
    "scrape port wrong": lambda m, k: _obj(m, "DaemonSet", "govmesh")["spec"]["template"]["metadata"]["annotations"].update({"prometheus.io/port": "9091"}),
    "scrape path wrong": lambda m, k: _obj(m, "DaemonSet", "govmesh")["spec"]["template"]["metadata"]["annotations"].update({"prometheus.io/path": "/"}),
    "etcd URL missing": lambda m, k: _set_arg(_govmesh(m), "--etcd", "http://etcd-0.etcd:2379,http://etcd-1.etcd:2379"),
    "etcd URL wrong service": lambda m, k: _set_arg(_govmesh(m), "--etcd", "http://etcd-0.db:2379,http://etcd-1.db:2379,http://etcd-2.db:2379"),
    "no --etcd": lambda m, k: _govmesh(m).update(args=[a for a in _govmesh(m)["args"] if not a.startswith("--etcd") and not a.startswith("http://etcd")]),
    "image latest": lambda m, k: _govmesh(m).update(image="ghcr.io/govmesh/govmesh:latest"),
    "image untagged": lambda m, k: pod_spec(_obj(m, "StatefulSet", "etcd"))["containers"][0].update(image="quay.io/coreos/etcd"),
    "init image latest": lambda m, k: pod_spec(_obj(m, "DaemonSet", "govmesh"))["initContainers"][0].update(image="busybox:latest"),
    "kustomization misses a file": lambda m, k: k["resources"].pop(),
    "kustomization lists a missing file": lambda m, k: k["resources"].append("nope.yaml"),
    "kustomization image latest": lambda m, k: k["images"][0].update(newTag="latest"),
    "node name not from spec.nodeName": lambda m, k: _govmesh(m)["env"][0]["valueFrom"]["fieldRef"].update(fieldPath="metadata.name"),
    "no resource requests": lambda m, k: _govmesh(m)["resources"].pop("requests"),
}


class ManifestTest(unittest.TestCase):
    def setUp(self):
        self.manifests, self.kustomization = load(MANIFEST_DIR)

    def test_manifests_are_consistent(self):
        self.assertTrue(self.manifests, f"no manifests in {MANIFEST_DIR}")
        problems = check(self.manifests, self.kustomization)
        self.assertEqual(problems, [], "\n".join(problems))

    def test_every_check_can_fail(self):
        for name, mutate in MUTATIONS.items():
            with self.subTest(mutation=name):
                m, k = copy.deepcopy(self.manifests), copy.deepcopy(self.kustomization)
                mutate(m, k)
                self.assertNotEqual(check(m, k), [], f"mutation {name!r} went unnoticed")

    @unittest.skipUnless(shutil.which("kubectl"), "kubectl not installed")
    def test_kustomize_builds(self):
        # kustomize itself (inside kubectl, offline) accepts the set and renders every object.
        r = subprocess.run(["kubectl", "kustomize", MANIFEST_DIR], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        kinds = [d["kind"] for d in yaml.safe_load_all(r.stdout) if d]
        self.assertIn("StatefulSet", kinds)
        self.assertIn("DaemonSet", kinds)


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        MANIFEST_DIR = sys.argv.pop(1)
    unittest.main()
