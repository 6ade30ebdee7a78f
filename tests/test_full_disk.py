"""Files written while the disk is full: the write fails for real (a file size limit on a child process, so the
kernel answers EFBIG as it answers ENOSPC on a full disk), and what was there before stays whole."""

from __future__ import annotations

import os
import resource
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from index.es_cluster import ClusterState, LocalCluster
from tests.smtp_server import free_port
from yuqing.settings import PROJECT_ROOT, LocalElasticsearchSettings


def files_limited_to(size: int) -> Callable[[], None]:
    """A child's preexec: no file may grow beyond ``size`` bytes (the write fails instead of the process dying)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def test_a_cluster_state_file_that_cannot_be_written_keeps_the_previous_one(tmp_path: Path) -> None:
    cluster = LocalCluster(LocalElasticsearchSettings(cluster_home=tmp_path / "cluster"), prefix="t")
    cluster.home.mkdir()
    cluster._write_state(ClusterState(nodes=3, secure=True, formed=False))
    code = ("from pathlib import Path; from index.es_cluster import ClusterState, LocalCluster; "
            "from yuqing.settings import LocalElasticsearchSettings; "
            f"c = LocalCluster(LocalElasticsearchSettings(cluster_home=Path({str(cluster.home)!r})), prefix='t'); "
            "c._write_state(ClusterState(nodes=3, secure=True, formed=True))")
    child = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                           preexec_fn=files_limited_to(8), timeout=60)
    assert child.returncode != 0 and "File too large" in child.stderr  # the write did fail
    assert cluster.read_state() == ClusterState(nodes=3, secure=True, formed=False)  # no --wipe advised
    assert [p.name for p in cluster.home.iterdir()] == ["cluster.json"]


def test_the_demo_mail_sink_answers_a_full_disk_with_a_temporary_failure(tmp_path: Path) -> None:
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    port = free_port()
    env = {**os.environ, "YUQING_LOGGING__TO_FILE": "false", "YUQING_PATHS__DATA_DIR": str(tmp_path / "data")}
    sink = subprocess.Popen([sys.executable, "-m", "yuqing.mailsink", "--port", str(port), "--dir", str(mail_dir)],
                            cwd=PROJECT_ROOT, env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=files_limited_to(512))
    try:
        deadline = time.monotonic() + 60
        while True:  # until it listens
            try:
                client = smtplib.SMTP("127.0.0.1", port, timeout=10)
                break
            except ConnectionRefusedError:
                assert sink.poll() is None and time.monotonic() < deadline, "the mail sink did not start"
                time.sleep(0.1)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "yuqing@example.cn", "press@example.cn", "舆情预警"
        msg.set_content("市图书馆预约系统故障。" * 100)  # larger than the files it may write
        with client, pytest.raises(smtplib.SMTPDataError) as refused:
            client.send_message(msg)
        assert (refused.value.smtp_code, refused.value.smtp_error) == (452, b"4.3.1 Insufficient system storage")
    finally:
        sink.send_signal(signal.SIGTERM)
        _, err = sink.communicate(timeout=30)
    assert list(mail_dir.iterdir()) == []  # no partial .eml, no temporary file
    lines = [line for line in err.splitlines() if "cannot save a mail" in line]
    assert len(lines) == 1 and "press@example.cn" in lines[0] and "File too large" in lines[0], err
    assert "Traceback" not in err
