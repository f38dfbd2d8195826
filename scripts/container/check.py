#!/usr/bin/env python3
"""The container target, end to end on loopback (run by scripts/container/test):

1. deploy/microk8s/deploy --dry-run builds the image around a given binary, pushes it to a real
   registry (Debian's docker-registry) and pins the digest; the rendered manifests must name
   exactly that digest and pass kubernetes-validate --strict (the dynamodb overlay and the
   obsidian-vaults component too);
2. podman kube play starts the rendered Deployment (pulled by digest from that registry, with
   its ConfigMap, Secret and volume);
3. nginx, configured from the Ingress's annotations the way ingress-nginx would be, terminates
   TLS in front of it; the TypeScript SDK and the OAuth browser flow go through it; cookies are
   Secure, issuer and resource are the public https URLs, an event stream is not buffered,
   2 MB gets 413, and X-Forwarded-For from an untrusted peer is ignored;
4. SIGTERM stops the container cleanly.

Usage: check.py --binary PATH --work DIR [--keep]
Needs: buildah, skopeo, podman, docker-registry, nginx, openssl, kubectl, node (tests/node
installed), kubernetes-validate and PyYAML (this script runs in their venv).
"""

import argparse
import base64
import http.client
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PASSED = []


def log(message):
    print(f"    {message}", file=sys.stderr, flush=True)


def check(condition, what, detail=""):
    if not condition:
        raise SystemExit(f"FAILED: {what}\n{detail}")
    PASSED.append(what)
    log(f"ok: {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kwargs):
    kwargs.setdefault("check", True)
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    try:
        return subprocess.run(cmd, **kwargs)
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"FAILED: {' '.join(map(str, cmd))}\n{e.stdout}\n{e.stderr}") from e


def wait_http(url, timeout=30, context=None):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as r:
                return r.status
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                raise SystemExit(f"FAILED: {url} did not answer within {timeout} s")
            time.sleep(0.01)


class Podman:
    """podman with its own storage, network configuration and containers.conf under `work`,
    so that nothing system-wide changes (runc, cgroupfs, lower ulimits: what works here)."""

    def __init__(self, work):
        self.work = work
        conf = work / "containers.conf"
        (work / "networks").mkdir(parents=True, exist_ok=True)
        conf.write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
            "[network]\n"
            f'network_config_dir = "{work / "networks"}"\n'
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'runtime = "runc"\n'
            'events_logger = "file"\n'
        )
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.base = ["podman", "--root", str(work / "storage"), "--runroot", str(work / "run"), "--storage-driver", "vfs"]

    def __call__(self, *args, **kwargs):
        return run([*self.base, *args], env=self.env, **kwargs)


def registry_start(work):
    port = free_port()
    config = work / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {work / 'registry'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=open(work / "registry.log", "w"))
    wait_http(f"http://127.0.0.1:{port}/v2/")
    return process, f"127.0.0.1:{port}"


def registry_digest(registry, tag):
    """What the registry itself says the tag points at."""
    connection = http.client.HTTPConnection(registry, timeout=5)
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    connection.request("HEAD", f"/v2/squaremcp/manifests/{tag}", headers={"Accept": accept})
    response = connection.getresponse()
    return response.status, response.getheader("Docker-Content-Digest")


def documents(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def validate(rendered, label):
    for version in ("1.33.0", "1.37.0"):
        out = run(["kubernetes-validate", "--strict", "-k", version, str(rendered)], check=False)
        lines = (out.stdout + out.stderr).strip().splitlines()
        # Unknown kinds and API versions are only warnings there: anything but INFO fails.
        bad = [line for line in lines if not line.startswith("INFO")]
        check(out.returncode == 0 and not bad and lines, f"{label}: kubernetes-validate --strict -k {version} ({len(lines)} resources)", "\n".join(lines))


def make_cert(work):
    """A throwaway CA and a leaf for localhost (CA:FALSE, serverAuth), as real clients insist."""
    ca_key, ca, key, csr, cert = (work / n for n in ("ca.key", "ca.pem", "tls.key", "tls.csr", "tls.pem"))
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=squaremcp test CA"])
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost"])
    ext = work / "leaf.ext"
    ext.write_text("basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext])
    return ca, cert, key


def location_directives(annotations):
    """The per-location directives ingress-nginx's template derives from these annotations
    (defaults: body 1m, buffering on, timeouts 60 s)."""
    get = lambda name, default: annotations.get(f"nginx.ingress.kubernetes.io/{name}", default)  # noqa: E731
    return f"""
      client_max_body_size {get("proxy-body-size", "1m")};
      proxy_buffering {get("proxy-buffering", "on")};
      proxy_request_buffering {get("proxy-request-buffering", "on")};
      proxy_read_timeout {get("proxy-read-timeout", "60")}s;
      proxy_send_timeout {get("proxy-send-timeout", "60")}s;
      proxy_set_header Host $host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Request-ID $req_id;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Scheme $scheme;
      proxy_set_header Proxy "";
      proxy_http_version 1.1;"""


def nginx_start(work, ingress, upstream, sse_upstream, cert, key, port):
    annotations = ingress["metadata"].get("annotations", {})
    rule = ingress["spec"]["rules"][0]
    locations = []
    for path in rule["http"]["paths"]:
        locations.append(f"    location {path['path']} {{{location_directives(annotations)}\n      proxy_pass http://{upstream};\n    }}")
    sse_port = free_port()
    nginx_dir = work / "nginx"
    nginx_dir.mkdir(exist_ok=True)
    conf = nginx_dir / "nginx.conf"
    conf.write_text(f"""
daemon off;
worker_processes 1;
pid {nginx_dir}/nginx.pid;
error_log {nginx_dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log {nginx_dir}/access.log;
  client_body_temp_path {nginx_dir}/body;
  proxy_temp_path {nginx_dir}/proxy;
  fastcgi_temp_path {nginx_dir}/fastcgi;
  uwsgi_temp_path {nginx_dir}/uwsgi;
  scgi_temp_path {nginx_dir}/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  map $http_x_request_id $req_id {{ default $http_x_request_id; "" $request_id; }}
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name {rule["host"]};
    ssl_certificate {cert};
    ssl_certificate_key {key};
{chr(10).join(locations)}
  }}
  # The same location directives in front of a stand-in that streams events slowly.
  server {{
    listen 127.0.0.1:{sse_port};
    location / {{{location_directives(annotations)}
      proxy_pass http://{sse_upstream};
    }}
  }}
}}
""")
    process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(nginx_dir)], stdout=subprocess.DEVNULL, stderr=open(nginx_dir / "stderr.log", "w"))
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"FAILED: nginx did not start\n{(nginx_dir / 'stderr.log').read_text()}{(nginx_dir / 'error.log').read_text() if (nginx_dir / 'error.log').exists() else ''}")
            time.sleep(0.02)
    return process, port, sse_port


class SlowEvents(BaseHTTPRequestHandler):
    """Three server-sent events 0.4 s apart."""

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for i in range(3):
            self.wfile.write(f"data: {i}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.4)

    def log_message(self, *args):
        pass


def request(url, method="GET", body=None, headers=None, context=None, timeout=10):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=context, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Path(args.work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    podman = Podman(work / "podman")
    processes = []
    play = None
    succeeded = False
    try:
        # 1. Build, push, pin, render, validate: the deploy script itself, on a copy of the manifests.
        registry, registry_addr = registry_start(work)
        processes.append(registry)
        manifests = work / "microk8s"
        shutil.copytree(REPO / "deploy/microk8s", manifests)
        nginx_port = free_port()
        public_url = f"https://localhost:{nginx_port}"
        config_env = manifests / "base/config.env"
        config_env.write_text(config_env.read_text().replace("SQUAREMCP_PUBLIC_URL=https://mcp.example.com", f"SQUAREMCP_PUBLIC_URL={public_url}"))
        ingress_file = manifests / "base/ingress.yaml"
        ingress_file.write_text(ingress_file.read_text().replace("mcp.example.com", "localhost"))
        jwt_secret, admin_key = secrets.token_urlsafe(48), secrets.token_hex(24)
        (manifests / "base/secrets.env").write_text(f"SQUAREMCP_JWT_SECRET={jwt_secret}\nSQUAREMCP_ADMIN_KEY={admin_key}\n")
        shutil.copy(manifests / "dynamodb/aws-secrets.env.example", manifests / "dynamodb/aws-secrets.env")
        rendered = work / "rendered.yaml"
        started = time.monotonic()
        out = run(
            [manifests / "deploy", "--registry", registry_addr, "--binary", args.binary, "--dry-run", "--rendered", rendered, "--kubectl", "kubectl"],
            env={**os.environ, "SQUAREMCP_REPO": str(REPO), "SQUAREMCP_BUILDAH_ROOT": str(work / "buildah")},
        )
        digest = out.stdout.strip().splitlines()[-1]
        log(f"deploy --dry-run: built, pushed and rendered in {time.monotonic() - started:.1f} s: {digest}")
        version = next(line.split('"')[1] for line in (REPO / "Cargo.toml").read_text().splitlines() if line.startswith("version = "))
        status, pushed = registry_digest(registry_addr, version)
        check(status == 200 and pushed == digest, "the registry holds the pushed tag at the digest the deploy script pinned", f"{status} {pushed} vs {digest}")
        docs = documents(rendered)
        images = set()
        for doc in docs:
            spec = doc.get("spec", {})
            pod = spec.get("template", {}).get("spec") or spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec") or {}
            images.update(c["image"] for c in pod.get("containers", []))
        check(images == {f"{registry_addr}/squaremcp@{digest}"}, "every rendered container runs exactly the pushed digest", str(images))
        kinds = sorted(d["kind"] for d in docs)
        check(kinds == ["ConfigMap", "CronJob", "Deployment", "Ingress", "Namespace", "PersistentVolumeClaim", "Secret", "Service"], "the sqlite overlay renders every object", str(kinds))
        deployment = next(d for d in docs if d["kind"] == "Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        security = container["securityContext"]
        check(
            security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"] and security["capabilities"]["drop"] == ["ALL"]
            and deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
            and deployment["spec"]["strategy"]["type"] == "Recreate" and deployment["spec"]["replicas"] == 1,
            "the Deployment: non-root, read-only root, no privilege escalation, no capabilities, one replica recreated",
        )
        validate(rendered, "sqlite overlay")
        # The validator is not a rubber stamp: an unknown field in the same Deployment fails it.
        broken = work / "broken.yaml"
        broken.write_text(rendered.read_text().replace("  revisionHistoryLimit: 3", "  revisionHistoryLimit: 3\n  replicaz: 2", 1))
        out = run(["kubernetes-validate", "--strict", "-k", "1.33.0", str(broken)], check=False)
        check(out.returncode != 0 and "replicaz" in out.stdout + out.stderr, "kubernetes-validate --strict refuses an unknown field", out.stdout + out.stderr)
        dynamo = work / "dynamodb.yaml"
        dynamo.write_text(run(["kubectl", "kustomize", manifests / "dynamodb"]).stdout)
        dynamo_docs = documents(dynamo)
        dynamo_deployment = next(d for d in dynamo_docs if d["kind"] == "Deployment")
        check(
            not any(d["kind"] == "PersistentVolumeClaim" for d in dynamo_docs)
            and dynamo_deployment["spec"]["replicas"] == 2
            and next(d for d in dynamo_docs if d["kind"] == "ConfigMap")["data"]["SQUAREMCP_STORE"] == "dynamodb",
            "the dynamodb overlay: no volume claim, two replicas, SQUAREMCP_STORE=dynamodb",
        )
        validate(dynamo, "dynamodb overlay")
        vaults = manifests / "with-vaults"
        vaults.mkdir()
        (vaults / "kustomization.yaml").write_text("resources:\n  - ../sqlite\ncomponents:\n  - ../obsidian-vaults\n")
        vaults_rendered = work / "vaults.yaml"
        vaults_rendered.write_text(run(["kubectl", "kustomize", vaults]).stdout)
        mounts = [m["mountPath"] for d in documents(vaults_rendered) if d["kind"] == "Deployment" for m in d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]]
        check("/vaults" in mounts, "the obsidian-vaults component mounts /vaults", str(mounts))
        validate(vaults_rendered, "sqlite overlay with obsidian-vaults")

        # 2. The Deployment, started by podman from the registry, with its ConfigMap, Secret and claim.
        app_port = free_port()
        secret = next(d for d in docs if d["kind"] == "Secret")
        secret_file = work / "secret.json"
        # podman 4.3 reads a pre-created secret as a map of base64 values; Secret documents in
        # the played file are mis-stored by it.
        secret_file.write_text(json.dumps(secret["data"]))
        podman("secret", "create", secret["metadata"]["name"], str(secret_file))
        ports = container["ports"]
        # Published on loopback only: the Service and Ingress are nginx's job here.
        ports[0].update({"hostIP": "127.0.0.1", "hostPort": app_port})
        play = work / "play.yaml"
        play.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] in ("Deployment", "ConfigMap", "PersistentVolumeClaim")]))
        started = time.monotonic()
        podman("kube", "play", "--tls-verify=false", str(play))
        wait_http(f"http://127.0.0.1:{app_port}/readyz")
        log(f"kube play → /readyz 200 in {(time.monotonic() - started) * 1000:.0f} ms (pull from the registry included)")
        name = f"{deployment['metadata']['name']}-pod-0-{container['name']}"
        inspect = json.loads(podman("inspect", name).stdout)[0]
        check(inspect["ImageDigest"] == digest, "podman runs the image by the pinned digest", inspect["ImageDigest"])
        check(inspect["Config"]["User"] in ("65532", "65532:65532"), "the container runs as 65532", inspect["Config"]["User"])
        # conmon copies the container's stdout into its log asynchronously: wait for the line.
        deadline = time.monotonic() + 10
        while "SquareMCP is serving" not in (logged := podman("logs", name).stdout) and time.monotonic() < deadline:
            time.sleep(0.05)
        first_log = logged.splitlines()
        check(first_log and all(line.startswith("{") for line in first_log) and any("SquareMCP is serving" in json.loads(line).get("message", "") for line in first_log),
              "serve logs JSON lines to stdout in the container", "\n".join(first_log))
        status, headers, _ = request(f"http://127.0.0.1:{app_port}/healthz")
        check(status == 200, "/healthz answers")

        def exec_cli(*cli_args, stdin=""):
            out = run([*podman.base, "exec", "-i", name, "/usr/local/bin/squaremcp", *cli_args, "--json"], env=podman.env, input=stdin)
            return json.loads(out.stdout)

        customer = exec_cli("customers", "create", "--email", "ada@example.com", "--plan", "pro", "--password-stdin", stdin="analytical engine\n")
        key = exec_cli("api-keys", "create", "--customer", customer["id"])["key"]

        # 3. nginx as the Ingress configures it, TLS on loopback, in front of the container.
        ca, cert, key_file = make_cert(work)
        sse_port = free_port()
        sse_server = ThreadingHTTPServer(("127.0.0.1", sse_port), SlowEvents)
        threading.Thread(target=sse_server.serve_forever, daemon=True).start()
        ingress = next(d for d in docs if d["kind"] == "Ingress")
        nginx, _, nginx_sse_port = nginx_start(work, ingress, f"127.0.0.1:{app_port}", f"127.0.0.1:{sse_port}", cert, key_file, nginx_port)
        processes.append(nginx)
        tls = ssl.create_default_context(cafile=str(ca))
        wait_http(f"{public_url}/healthz", context=tls)

        status, _, body = request(f"{public_url}/.well-known/oauth-authorization-server", context=tls)
        issuer = json.loads(body).get("issuer")
        status_prm, _, body = request(f"{public_url}/.well-known/oauth-protected-resource/mcp", context=tls)
        resource = json.loads(body).get("resource")
        check(status == 200 and issuer == public_url and status_prm == 200 and resource == f"{public_url}/mcp",
              "behind the ingress, the issuer and resource are the public https URLs", f"{issuer} {resource}")
        status, headers, _ = request(f"{public_url}/mcp", method="POST", body=b"{}", headers={"Content-Type": "application/json"}, context=tls)
        challenge = headers.get("www-authenticate", "")
        check(status == 401 and f'resource_metadata="{public_url}/.well-known/oauth-protected-resource/mcp"' in challenge,
              "the 401 points at the https metadata", challenge)
        check(headers.get("strict-transport-security") == "max-age=31536000", "HSTS on answers through the ingress")

        node_env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(ca)}
        out = run(["node", "sdk-client.mjs", f"{public_url}/mcp", key, "telegram_send_message", '{"chat_id": 1, "text": "hi"}'], cwd=REPO / "tests/node", env=node_env)
        report = json.loads(out.stdout)
        result = report["result"]
        check(report["server"]["name"] == "squaremcp" and report["protocolVersion"], "the TypeScript SDK connects and lists tools through the ingress", json.dumps(report))
        check(result.get("isError") is True and "credentials" in json.dumps(result), "tools/call through the ingress answers (no telegram credentials yet: a tool error the model can act on)", json.dumps(result))

        artifacts = REPO / "target/artifacts/container"
        out = run(["node", "oauth-client.mjs", f"{public_url}/mcp", "ada@example.com", "analytical engine", str(artifacts)],
                  cwd=REPO / "tests/node", env={**node_env, "SQUAREMCP_E2E_TEST_CA": "1"})
        report = json.loads(out.stdout)
        check(report["authorization"]["resource"] == f"{public_url}/mcp" and report["login"]["url"].startswith(f"{public_url}/login"),
              "the OAuth browser flow runs through the ingress on the public https URL", json.dumps(report["authorization"]))
        check(report["tokens"]["token_type"] == "Bearer" and report["refresh"]["outcome"] == "AUTHORIZED" and report["stateEchoed"],
              "OAuth: code exchange and refresh through the ingress")
        cookies = [c for c in report["cookies"] if c["domain"] == "localhost"]
        check(cookies and all(c["secure"] and c["httpOnly"] and c["name"].startswith("__Host-") for c in cookies),
              "every cookie the gateway set is Secure, HttpOnly and __Host-", json.dumps(report["cookies"]))

        # An answer streamed as events arrives event by event through these location directives.
        connection = http.client.HTTPConnection("127.0.0.1", nginx_sse_port, timeout=10)
        connection.request("GET", "/")
        response = connection.getresponse()
        arrivals = []
        while len(arrivals) < 3:
            line = response.fp.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                arrivals.append(time.monotonic())
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        check(len(arrivals) == 3 and all(g > 0.25 for g in gaps), "an event stream passes the ingress unbuffered", f"gaps {gaps}")
        init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}}).encode()
        status, headers, _ = request(f"http://127.0.0.1:{app_port}/mcp", method="POST", body=init,
                                     headers={"Content-Type": "application/json", "Accept": "text/event-stream", "x-api-key": key})
        check(status == 200 and headers.get("content-type") == "text/event-stream" and headers.get("x-accel-buffering") == "no",
              "SquareMCP's event-stream answers say X-Accel-Buffering: no", str(headers))

        big = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"' + b"x" * (2 * 1024 * 1024) + b'"}}'
        status, _, _ = request(f"{public_url}/mcp", method="POST", body=big, headers={"Content-Type": "application/json", "x-api-key": key}, context=tls)
        check(status == 413, "a 2 MB body gets 413 at the ingress", str(status))

        # Registration allows 30 clients per address per hour. Forged X-Forwarded-For values from a
        # peer that is not a trusted proxy must all count against that peer.
        answers = []
        for i in range(32):
            body = json.dumps({"client_name": f"forger {i}", "redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"}).encode()
            status, _, _ = request(f"http://127.0.0.1:{app_port}/register", method="POST", body=body,
                                   headers={"Content-Type": "application/json", "X-Forwarded-For": f"198.51.100.{i + 1}"})
            answers.append(status)
        check(429 in answers and answers.count(201) <= 30, "X-Forwarded-For from an untrusted peer is ignored (the per-address limit holds)", str(answers))

        # 4. SIGTERM: podman stop sends it; the gateway finishes and exits 0 well inside the grace period.
        started = time.monotonic()
        podman("stop", "-t", "35", name)
        stopped_in = time.monotonic() - started
        state = json.loads(podman("inspect", name).stdout)[0]["State"]
        tail = podman("logs", name).stdout
        check(state["ExitCode"] == 0 and stopped_in < 10 and "every request answered" in tail,
              f"SIGTERM: clean exit in {stopped_in:.2f} s", f"exit {state['ExitCode']}\n{tail[-2000:]}")
        print(json.dumps({"passed": len(PASSED), "digest": digest}))
        succeeded = True
    finally:
        if play is not None and not args.keep:
            podman("kube", "down", str(play), check=False)
        if not args.keep:
            # Containers, pulled image, secret and volume all live in this private storage.
            podman("system", "reset", "--force", check=False)
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        # A failed run leaves its logs (nginx, registry, rendered manifests) for reading.
        if succeeded and not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
