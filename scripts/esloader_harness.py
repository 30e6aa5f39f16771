"""What the scripts that run the es-loader of "SIEM on Amazon OpenSearch Service" share:
its virtualenv, a copy of its folder, and the stand-ins that let it run with no AWS account
(its S3 client reads local files, its other AWS calls are answered offline, and any network
connection but loopback is refused). Nothing here contains es-loader code: it is imported
and called, unchanged.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path


def log(msg, who="esloader"):
    print(f"[{who}] {msg}", file=sys.stderr, flush=True)


def refuse_network():
    """Any connection other than loopback or a local socket raises."""
    import socket

    loopback = {"127.0.0.1", "::1", "localhost"}
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def allowed(sock, address):
        if getattr(socket, "AF_UNIX", None) is not None and sock.family == socket.AF_UNIX:
            return True
        return isinstance(address, tuple) and address and str(address[0]) in loopback

    def connect(sock, address):
        if not allowed(sock, address):
            raise OSError(f"network access refused ({address!r})")
        return real_connect(sock, address)

    def connect_ex(sock, address):
        if not allowed(sock, address):
            raise OSError(f"network access refused ({address!r})")
        return real_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in loopback and host is not None:
            raise OSError(f"name resolution refused ({host!r})")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo


class OfflineOpenSearch:
    """Stands for the es-loader's OpenSearch client; no request is sent."""

    class _Cat:
        def aliases(self, **_):
            return []

    class _Cluster:
        def state(self, **_):
            return {}

    class _Transport:
        def perform_request(self, *_, **__):
            return {}

    def __init__(self):
        self.cat = self._Cat()
        self.cluster = self._Cluster()
        self.transport = self._Transport()

    def info(self):
        return {"offline": True}

    def bulk(self, *_, **__):
        raise RuntimeError("no OpenSearch here")


class LocalObjects:
    """Stands for the es-loader's S3 client: get_object reads a local file."""

    def __init__(self, files):
        self.files = files  # object key -> local path

    def get_object(self, Bucket, Key):  # noqa: N803 (boto3's argument names)
        import io

        data = Path(self.files[Key]).read_bytes()
        return {"ResponseMetadata": {"HTTPHeaders": {"content-length": str(len(data))}},
                "Body": io.BytesIO(data)}


def find_python():
    if sys.version_info >= (3, 11):
        return sys.executable
    for name in ("python3.13", "python3.12", "python3.11"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("the es-loader needs Python 3.11 or newer")


def ensure_venv(out_dir, esl_dir):
    venv = out_dir / "venv"
    python = venv / "bin" / "python"
    requirements = esl_dir / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / ".requirements.sha256"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    log(f"creating the virtualenv {venv} with {requirements}")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([find_python(), "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(pip + ["install", "-r", str(requirements)], check=True)
    stamp.write_text(digest + "\n")
    return python


def copy_esloader(esl_dir, dest, user_ini):
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(esl_dir, dest, ignore=shutil.ignore_patterns(
        "user.ini", "aes.ini", "__pycache__", "*.pyc", "tests", "test"))
    if user_ini:
        (dest / "user.ini").write_text(user_ini)


def offline_environment(endpoint, namespace):
    """The es-loader's settings for a run with no AWS account: `endpoint` as its OpenSearch
    host name (host.region.service.domain), offline credentials, no GeoIP bucket, no SQS."""
    os.environ.update({
        "ENDPOINT": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "offline",
        "AWS_SECRET_ACCESS_KEY": "offline",
        "AWS_EC2_METADATA_DISABLED": "true",
        "GEOIP_BUCKET": "",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_NAMESPACE": namespace,
        "POWERTOOLS_SERVICE_NAME": "es-loader",
    })
    for name in ("AWS_EXECUTION_ENV", "AWS_PROFILE", "SQS_SPLITTED_LOGS_URL",
                 "CONTROL_TOWER_ROLE_ARN", "SECURITY_LAKE_ROLE_ARN", "AOSS_TYPE"):
        os.environ.pop(name, None)


def offline_aws_calls(utils, geodb, ioc, xff):
    """Answers the es-loader's calls to AWS other than S3 and OpenSearch: cold indices, SSM
    parameters, the exclusion CSV and the GeoIP, IOC and proxy databases (none)."""
    utils.get_read_only_indices = lambda *args, **kwargs: tuple()
    utils.get_ssm_params = lambda prefix: iter(())
    utils.get_exclude_log_patterns_csv_filename = lambda etl_config: None
    geodb.GeoDB._download_geoip_database = lambda self, bucket, name: False
    ioc.DB._download_database = lambda self: False
    xff.DB._download_database = lambda self: False
