"""The engine's composition root (cli/engine.py) in process against a live server: log retention
after each cycle (2.12) and the quarantine's four-week limit (2.9)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from tests.cli.test_service import JOB, directory_with
from tests.conftest import PATCH_OP

from provisor.cli.engine import JobCannotRun, open_job, sync_once
from provisor.engine.model import ObjectKind
from provisor.engine.state import Escrow, JobStatus, LogQuery


def job_text(name: str, base: str, extra: str = "") -> str:
    """The service tests' job (scim-default, group Everyone assigned), plus ``extra`` settings."""
    return JOB.format(name=name, source=base, target=base) + extra


@pytest.fixture
def directory(live):
    return directory_with(live, 3)


def test_log_records_older_than_the_retention_are_pruned_after_a_cycle(live, tmp_path, directory):
    client, users, env = directory
    job = tmp_path / "ret.yaml"
    job.write_text(job_text("ret", live.base, "logs:\n  retention_days: 30\n"))
    loaded = open_job(job, env)
    try:
        t0 = datetime.now(UTC) - timedelta(days=60)
        report, _ = sync_once(loaded, clock=lambda: t0)
        assert report is not None and report.kind.value == "Initial"
        first = list(loaded.state.logs("ret", LogQuery()))
        assert len(first) == 4 and {r.time for r in first} == {t0}

        # 29 days on, a change: the first cycle's records are within the retention and stay
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "X"}]}
        assert client.patch(f"/Users/{users[0]['id']}", json=body).status_code == 200
        sync_once(loaded, clock=lambda: t0 + timedelta(days=29))
        records = list(loaded.state.logs("ret", LogQuery()))
        # the User's update, and its group, read again: the group shows the User's displayName
        # (members[].display), so its version moved too; nothing to export for it
        assert [(r.kind, r.action) for r in records[4:]] == [
            (ObjectKind.USER, "Update"),
            (ObjectKind.GROUP, "Skip"),
        ]

        # 31 days on: the first cycle's records are 31 days old and go; the second's (2 days) stay
        sync_once(loaded, clock=lambda: t0 + timedelta(days=31))
        left = list(loaded.state.logs("ret", LogQuery()))
        assert left == records[4:]
        assert len(loaded.state.cycles("ret")) == 3  # cycles are kept
    finally:
        loaded.close()


def test_retention_defaults_to_30_days_and_applies_when_the_job_cannot_run(live, tmp_path, directory):
    _, _, env = directory
    job = tmp_path / "def.yaml"
    job.write_text(job_text("def", live.base, ""))
    loaded = open_job(job, env)
    try:
        assert loaded.job.logs.retention_days == 30
        t0 = datetime.now(UTC) - timedelta(days=40)
        sync_once(loaded, clock=lambda: t0)
        assert len(list(loaded.state.logs("def", LogQuery()))) == 4
        loaded.state.save_job_state(replace(loaded.state.job_state("def"), status=JobStatus.PAUSED))
        with pytest.raises(JobCannotRun, match="paused"):
            sync_once(loaded, clock=lambda: t0 + timedelta(days=29, hours=23))
        assert len(list(loaded.state.logs("def", LogQuery()))) == 4
        with pytest.raises(JobCannotRun, match="paused"):
            sync_once(loaded, clock=lambda: t0 + timedelta(days=30, seconds=1))
        assert list(loaded.state.logs("def", LogQuery())) == []
    finally:
        loaded.close()


def test_a_job_quarantined_for_four_weeks_is_disabled(live, tmp_path, directory):
    _, _, env = directory
    job = tmp_path / "dis.yaml"
    job.write_text(job_text("dis", live.base, ""))
    loaded = open_job(job, {**env, "APP_TOKEN": "pvs_wrong"})
    try:
        now = datetime.now(UTC)
        with pytest.raises(JobCannotRun, match="quarantined"):
            sync_once(loaded, clock=lambda: now)
        q = loaded.state.job_state("dis").quarantine
        assert q is not None and q.series_count == 1 and q.next_attempt == now + timedelta(hours=6)

        # retries while the four weeks run keep the job in quarantine, on the schedule (12 h next)
        later = now + timedelta(hours=6)
        with pytest.raises(JobCannotRun, match="quarantined"):
            sync_once(loaded, clock=lambda: later)
        st = loaded.state.job_state("dis")
        assert st.status is JobStatus.QUARANTINE and st.quarantine is not None
        assert st.quarantine.series_count == 2 and st.quarantine.next_attempt == later + timedelta(hours=12)
        loaded.state.save_escrow("dis", Escrow(ObjectKind.USER, "u", 1, later, "E", "m"))

        # the retry due 28 days after the series began fails too: disabled, escrows dropped
        last = now + timedelta(days=28)
        st = loaded.state.job_state("dis")
        assert st.quarantine is not None
        loaded.state.save_job_state(replace(st, quarantine=replace(st.quarantine, next_attempt=last)))
        with pytest.raises(JobCannotRun, match="quarantined"):
            sync_once(loaded, clock=lambda: last)
        st = loaded.state.job_state("dis")
        assert st.status is JobStatus.PAUSED and st.quarantine is not None
        assert st.quarantine.series_began == now
        assert loaded.state.escrows("dis") == []
        with pytest.raises(JobCannotRun, match=r"paused \(disabled after 28 days in quarantine"):
            sync_once(loaded, clock=lambda: last + timedelta(days=1))
    finally:
        loaded.close()
