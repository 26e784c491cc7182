"""Apache Kafka 4.x in KRaft mode (one combined broker and controller), jars from Maven Central."""

import base64
import secrets
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

from infra.services.base import LocalService, ServiceError
from infra.services.jvm import find_java_home, run_maven

# SLF4J 1.x binding: kafka_2.13 brings slf4j-api 1.7 and log4j 2 but no binding, without
# which the broker logs nothing at all.
LOG4J_VERSION = "2.25.5"

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>parley.services</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/kafka.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
"""


class KafkaService(LocalService):
    name = "kafka"
    start_timeout = 120.0

    def __init__(self, root: Path, version: str, port: int, controller_port: int) -> None:
        super().__init__(root)
        self._version = version
        self.port = port
        self.controller_port = controller_port
        self.libs = self.dir / f"libs-{version}"
        self.config = self.dir / "config"
        self.data = self.dir / "data"

    @property
    def version(self) -> str:
        return self._version

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"PARLEY_KAFKA_BOOTSTRAP_SERVERS": self.address}

    def ports(self) -> Sequence[int]:
        return (self.port, self.controller_port)

    def prepare(self) -> None:
        self._java = str(find_java_home(17)[0] / "bin" / "java")
        self._fetch()
        self.config.mkdir(exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        (self.config / "log4j2.properties").write_text(LOG4J2)
        (self.config / "server.properties").write_text(self._server_properties())
        if not (self.data / "meta.properties").exists():
            self._format()

    def _fetch(self) -> None:
        marker = self.libs / ".complete"
        if marker.exists():
            return
        (self.dir / "pom.xml").write_text(POM.format(kafka=self._version, log4j=LOG4J_VERSION))
        run_maven(
            [
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={self.libs}",
            ],
            cwd=self.dir,
            what=f"Kafka {self._version}",
        )
        marker.touch()

    def _server_properties(self) -> str:
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
                f"log.dirs={self.data}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "",
            ]
        )

    def _jvm_flags(self) -> list[str]:
        return [
            f"-Dlog4j2.configurationFile={self.config / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.dir / 'logs'}",
            "-cp",
            f"{self.libs}/*",
        ]

    def _format(self) -> None:
        # A cluster id is 16 random bytes, base64url without padding (not starting with '-').
        cluster_id = "-"
        while cluster_id.startswith("-"):
            cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        done = subprocess.run(
            [
                self._java,
                *self._jvm_flags(),
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(self.config / "server.properties"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise ServiceError(f"formatting Kafka storage failed:\n{done.stdout}\n{done.stderr}")

    def command(self) -> Sequence[str]:
        return [
            self._java,
            "-Xms256m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            *self._jvm_flags(),
            "kafka.Kafka",
            str(self.config / "server.properties"),
        ]

    def check(self) -> str | None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                pass
        except OSError as e:
            return f"port {self.port}: {e}"
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.address, request_timeout_ms=3000, client_id="parley-health"
            )
        except (KafkaError, OSError) as e:
            return f"broker not answering: {e}"
        try:
            brokers = admin.describe_cluster().get("brokers") or []
            return None if brokers else "no broker registered yet"
        except (KafkaError, OSError) as e:
            return f"cluster not ready: {e}"
        finally:
            admin.close()
