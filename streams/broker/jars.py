"""Resolve the pinned Apache Kafka jars from Maven Central into a per-user cache.

The pom next to this module pins the version. Jars are copied once into
``<cache_dir>/kafka-<version>/libs``; a marker file written last makes a half-finished download
look like no download, so an interrupted first start simply resolves again.
"""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

from streams.exceptions import BrokerStartError

__all__ = ["POM", "kafka_version", "resolve_jars"]

POM = resources.files("streams.broker") / "pom.xml"
_MAVEN_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
_COMPLETE = ".complete"


def kafka_version() -> str:
    """Return the Kafka version pinned in the shipped pom."""
    # Our own packaged file, not untrusted input.
    root = ET.fromstring(POM.read_text(encoding="utf-8"))  # noqa: S314
    version = root.findtext("m:properties/m:kafka.version", namespaces=_MAVEN_NS)
    if not version:
        raise BrokerStartError("the shipped pom.xml does not pin <kafka.version>")
    return version


def resolve_jars(cache_dir: Path) -> Path:
    """Return the directory holding the broker's jars, downloading them on first use.

    Raises
    ------
    BrokerStartError
        Maven is missing or the download failed; the message carries Maven's last lines.
    """
    libs = cache_dir / f"kafka-{kafka_version()}" / "libs"
    if (libs / _COMPLETE).exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerStartError(
            "Maven ('mvn') is not on PATH; it is needed once to download the Kafka jars "
            "(Debian: apt-get install maven)"
        )
    staging = libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with resources.as_file(POM) as pom:
        result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            [
                mvn,
                "--batch-mode",
                "--quiet",
                "--file",
                str(pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise BrokerStartError(
            f"downloading Kafka {kafka_version()} with Maven failed (exit {result.returncode});"
            f" is Maven Central reachable?\n{tail}"
        )
    (staging / _COMPLETE).touch()
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    return libs
